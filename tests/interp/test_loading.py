"""Model loading through every path, and every way it can fail (offline, pickle, corrupt, half-saved)."""
from __future__ import annotations

import json
import shutil
import time

import pytest
import torch

from interp import CheckpointRefused, InvalidInput, ModelUnavailable, load_model
from interp.backends.bridge import bridge_of
from interp.loading import bundled_models, weights_sha256


def test_local_hf_dir_loads_with_metadata(tiny_gpt2_dir):
    h = load_model(tiny_gpt2_dir)
    info = h.info
    assert (info.n_layers, info.n_heads, info.d_model, info.d_head, info.n_ctx) == (2, 4, 32, 8, 64)
    assert info.d_vocab == len(h.tokenizer)
    assert info.source == "local" and info.architecture == "GPT2LMHeadModel" and not info.attn_only
    assert info.sha256 == weights_sha256([tiny_gpt2_dir / "model.safetensors"])
    assert len(info.sha256) == 64
    json.dumps(info.to_dict())  # metadata is JSON-serialisable


def test_bridge_logits_match_hugging_face(tiny_gpt2_dir, tiny_handle):
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(str(tiny_gpt2_dir), attn_implementation="eager").eval()
    tokens = torch.tensor([[0, 5, 9, 13, 2, 7]])
    with torch.no_grad():
        ours = tiny_handle.logits(tokens)
        theirs = hf(tokens).logits
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_parameter_count_is_the_hugging_face_models_not_the_bridges_views(tiny_gpt2_dir, tiny_handle):
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(str(tiny_gpt2_dir))
    naive = sum(p.numel() for p in bridge_of(tiny_handle).parameters())  # fused qkv and its q/k/v views both counted
    assert tiny_handle.info.n_params == sum(p.numel() for p in hf.parameters()) < naive


def test_bundled_names_resolve(tmp_path, monkeypatch, tiny_gpt2_dir):
    import interp.loading as loading

    monkeypatch.setattr(loading, "BUNDLED_DIR", tmp_path)
    shutil.copytree(tiny_gpt2_dir, tmp_path / "toy")
    assert bundled_models() == ["toy"]
    h = load_model("toy")
    assert h.info.source == "bundled" and h.info.name == "toy"
    assert loading.default_model() == "toy"


def test_hub_name_offline_fails_fast_with_guidance(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(ModelUnavailable) as err:
        load_model("gpt2")
    assert time.perf_counter() - t0 < 10  # no retry loop (the libraries' own path takes ~30 s here)
    msg = str(err.value)
    assert "'gpt2'" in msg and "cannot be reached" in msg and "directory" in msg


def test_unreachable_hub_endpoint_is_detected(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises(ModelUnavailable, match="cannot be reached"):
        load_model("EleutherAI/pythia-70m")


def test_missing_directory_and_empty_name():
    with pytest.raises(ModelUnavailable, match="not a model directory"):
        load_model("./no/such/dir")
    with pytest.raises(InvalidInput):
        load_model("  ")


def test_pickle_checkpoint_is_refused(tmp_path, tiny_gpt2_dir):
    d = tmp_path / "pickled"
    d.mkdir()
    for f in tiny_gpt2_dir.iterdir():
        if f.suffix != ".safetensors":
            shutil.copy(f, d / f.name)
    torch.save({"w": torch.zeros(2)}, d / "pytorch_model.bin")
    with pytest.raises(CheckpointRefused, match="pickle"):
        load_model(d)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_safetensors_gives_clear_error(tmp_path, tiny_gpt2_dir, damage):
    d = tmp_path / damage
    shutil.copytree(tiny_gpt2_dir, d)
    w = d / "model.safetensors"
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00garbage" * 100)
    with pytest.raises(ModelUnavailable, match="corrupt"):
        load_model(d)


def test_directory_without_tokenizer_or_weights(tmp_path, tiny_gpt2_dir):
    no_tok = tmp_path / "no_tok"
    no_tok.mkdir()
    shutil.copy(tiny_gpt2_dir / "config.json", no_tok)
    shutil.copy(tiny_gpt2_dir / "model.safetensors", no_tok)
    with pytest.raises(ModelUnavailable, match="tokenizer"):
        load_model(no_tok)
    half = tmp_path / "half"
    half.mkdir()
    shutil.copy(tiny_gpt2_dir / "config.json", half)
    with pytest.raises(ModelUnavailable, match="no weights"):
        load_model(half)
    bad_json = tmp_path / "bad_json"
    shutil.copytree(tiny_gpt2_dir, bad_json)
    (bad_json / "config.json").write_text("{not json")
    with pytest.raises(ModelUnavailable, match="not valid JSON"):
        load_model(bad_json)


def test_native_attention_only_round_trip(tmp_path, tiny_tokenizer):
    from interp.native_models import build_native_model, native_config, save_native

    cfg = native_config(n_layers=2, d_model=32, n_ctx=32, d_head=8, n_heads=4, d_vocab=len(tiny_tokenizer),
                        attn_only=True, normalization_type="LN", act_fn="gelu", positional_embedding_type="standard")
    model = build_native_model(cfg, seed=3)
    save_native(model, cfg, tiny_tokenizer, tmp_path / "nat")
    h = load_model(tmp_path / "nat")
    assert h.info.attn_only and h.info.architecture == "TransformerLensNative"
    tokens = torch.tensor([[0, 4, 8, 15, 16, 23]])
    with torch.no_grad():
        torch.testing.assert_close(h.logits(tokens), model(tokens), atol=1e-5, rtol=1e-5)
    cap = h.run(tokens, read=h.sites("pattern"))
    assert cap["blocks.1.attn.hook_pattern"].shape == (1, 4, 6, 6)
    with pytest.raises(InvalidInput, match="attention-only"):
        h.sites("mlp_out")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_loads_and_runs(tiny_gpt2_dir, dtype):
    h = load_model(tiny_gpt2_dir, dtype=dtype)
    cap = h.run("hello world", read=h.sites("resid_post"))
    assert str(cap["blocks.0.hook_resid_post"].dtype) == f"torch.{dtype}"
    assert torch.isfinite(cap.logits.float()).all()


def test_bad_dtype_and_device(tiny_gpt2_dir):
    with pytest.raises(InvalidInput, match="dtype"):
        load_model(tiny_gpt2_dir, dtype="float8")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidInput, match="CUDA"):
            load_model(tiny_gpt2_dir, device="cuda")
