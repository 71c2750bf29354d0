"""A model that is not what its files say never loads: truncated or empty weights, missing or unexpected keys,
configs that disagree with the weights or cannot fit in memory, NaN weights, FIFOs, pickle decoys, non-causal
models; and the safetensors file that is loaded is the one hashed."""
from __future__ import annotations

import json
import os
import signal
import time

import pytest
import torch

from interp import CheckpointRefused, InvalidInput, ModelUnavailable, load_model
from interp.loading import weights_sha256
from interp.loading.checks import estimate_parameters, read_config
from tests.fuzz import model_dirs as md


@pytest.fixture(scope="module")
def good():
    return md.gpt2_dir()


@pytest.fixture()
def broken(good, request):
    return md.copy_of(good, request.node.name.replace("[", "_").replace("]", ""))


class _Alarm:
    """Fail (instead of hanging the suite) if a block takes more than ``s`` seconds."""

    def __init__(self, s: int):
        self.s = s

    def __enter__(self):
        def fire(*_):
            raise TimeoutError(f"blocked for {self.s} s")
        self.old = signal.signal(signal.SIGALRM, fire)
        signal.alarm(self.s)

    def __exit__(self, *exc):
        signal.alarm(0)
        signal.signal(signal.SIGALRM, self.old)


def test_missing_keys_are_named_not_filled_with_random_init(broken):
    md.drop_keys(broken, "h.1.attn")
    with pytest.raises(ModelUnavailable, match=r"missing tensor\(s\): .*h\.1\.attn"):
        load_model(broken)


def test_unexpected_keys_and_layer_count_mismatch_are_refused(good, broken):
    md.add_key(broken, "transformer.h.7.mlp.c_fc.weight")
    with pytest.raises(ModelUnavailable, match=r"unexpected tensor\(s\): transformer\.h\.7"):
        load_model(broken)
    more = md.edit_config(md.copy_of(good, "n_layer_3"), n_layer=3)
    with pytest.raises(ModelUnavailable, match=r"missing tensor\(s\): .*h\.2\."):
        load_model(more)
    fewer = md.edit_config(md.copy_of(good, "n_layer_1"), n_layer=1)
    with pytest.raises(ModelUnavailable, match="unexpected"):
        load_model(fewer)


def test_truncated_and_empty_weights(broken):
    md.truncate(broken, 0.6)
    with pytest.raises(ModelUnavailable, match="truncated"):
        load_model(broken)
    (broken / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelUnavailable, match="empty"):
        load_model(broken)


@pytest.mark.parametrize("bad", [0, -1, "2", 2.5, True, None])
def test_config_sizes_must_be_whole_positive_numbers(broken, bad):
    md.edit_config(broken, n_layer=bad)
    with pytest.raises(ModelUnavailable, match="n_layer"):
        load_model(broken)


@pytest.mark.parametrize("data,match", [(b"null", "null"), (b"[1]", "list"), (bytes(range(256)), "binary"),
                                        (b"", "not valid JSON"), (b'{"n_layer": 2,', "not valid JSON")])
def test_config_must_be_a_json_object(broken, data, match):
    md.write_config_bytes(broken, data)
    with pytest.raises(ModelUnavailable, match=match):
        load_model(broken)


def test_nan_and_inf_weights_are_refused_at_load_naming_the_tensor(good):
    nan = md.poison(md.copy_of(good, "nan"), float("nan"), "attn.c_attn")
    with pytest.raises(ModelUnavailable, match=r"NaN or infinite .*attn\.c_attn"):
        load_model(nan)
    inf = md.poison(md.copy_of(good, "inf"), float("inf"), "wte")
    with pytest.raises(ModelUnavailable, match="wte"):
        load_model(inf)


def test_fifo_weights_or_config_never_block(good):
    fifo = md.fifo_weights(md.copy_of(good, "fifo"))
    with _Alarm(30), pytest.raises(ModelUnavailable, match="FIFO"):
        load_model(fifo)
    cfg = md.copy_of(good, "fifo_cfg")
    (cfg / "config.json").unlink()
    os.mkfifo(cfg / "config.json")
    with _Alarm(30), pytest.raises(ModelUnavailable, match="FIFO"):
        load_model(cfg)


def test_pickle_decoy_beside_safetensors_is_never_read_and_hash_is_the_loaded_file(good):
    d = md.pickle_decoy(md.copy_of(good, "decoy"))  # pytorch_model.bin with different (0.5) weights
    h = load_model(d)
    assert h.info.sha256 == weights_sha256([d / "model.safetensors"])
    ref = load_model(good)
    toks = torch.tensor([[0, 3, 7, 11]])
    with torch.no_grad():
        torch.testing.assert_close(h.logits(toks), ref.logits(toks))


def test_decoy_with_only_a_stray_safetensors_is_refused(good):
    d = md.pickle_decoy(md.copy_of(good, "decoy_only"), rename_safetensors="adapter.safetensors")
    with pytest.raises(CheckpointRefused, match="pickle"):
        load_model(d)


def test_oversized_config_is_refused_before_allocating(good):
    d = md.edit_config(md.copy_of(good, "llama7b"), architectures=["LlamaForCausalLM"], model_type="llama",
                       hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                       vocab_size=32000, max_position_embeddings=4096)
    assert estimate_parameters(read_config(d / "config.json")) > 6e9
    t0 = time.perf_counter()
    with _Alarm(60), pytest.raises(ModelUnavailable, match="parameters"):
        load_model(d)
    assert time.perf_counter() - t0 < 30  # refused from the config alone (allocating 7B would take minutes)


def test_parameter_estimate_matches_real_models(good):
    from safetensors import safe_open

    for d in (good, md.gqa_dir("llama")):
        with safe_open(str(d / "model.safetensors"), "pt") as f:
            n = sum(f.get_slice(k).get_shape().numel() if hasattr(f.get_slice(k).get_shape(), "numel")
                    else int(torch.Size(f.get_slice(k).get_shape()).numel()) for k in f.keys())
        est = estimate_parameters(json.loads((d / "config.json").read_text()))
        assert 0.8 * n <= est <= 1.25 * n, (d.name, est, n)


def test_non_causal_models_are_refused_at_load():
    with pytest.raises(ModelUnavailable, match="not a causal language model.*BertForMaskedLM"):
        load_model(md.bert_dir())
    with pytest.raises(ModelUnavailable, match="encoder-decoder"):
        load_model(md.t5_dir())


def test_models_without_attention_patterns_say_so():
    from probes.heads.detectors import scan_heads
    from probes.heads.report import head_report

    h = load_model(md.mamba_dir())
    with pytest.raises(InvalidInput, match="no attention-pattern hooks"):
        scan_heads(h, seq_len=4, n_batch=1)
    with pytest.raises(InvalidInput, match="no attention-pattern hooks"):
        head_report(h, seq_len=4, n_batch=1)


@pytest.mark.parametrize("name", ["/tmp/" + "a/" * 700, "/tmp/" + "b" * 300, "/tmp/x\x00y", None, 42])
def test_unusable_names_are_invalid_input(name):
    with pytest.raises(InvalidInput):
        load_model(name)


@pytest.mark.parametrize("device", ["tpu", "c p u", "cuda:7", 3.5, "mps"])
def test_unknown_devices_are_invalid_input(good, device):
    with pytest.raises(InvalidInput, match="[Dd]evice"):
        load_model(good, device=device)


def test_native_model_missing_key_is_named():
    from interp.loading import BUNDLED_DIR

    d = md.copy_of(BUNDLED_DIR / "attn-only-1l", "native_missing")
    from safetensors.torch import load_file

    last = sorted(load_file(str(d / "model.safetensors")))[-1]
    md.drop_keys(d, last)
    with pytest.raises(ModelUnavailable, match="missing tensor"):
        load_model(d)
