"""Transcoders: the hand-built exact transcoder of a ReLU MLP equals the MLP; per-layer vs cross-layer decoding;
scales fold in; files round-trip in circuit-tracer's layouts and damaged folders are clear errors."""
from __future__ import annotations

import json

import pytest
import torch

from interp import InvalidInput, Site, load_model
from learned.transcoder import Transcoder, TranscoderConfig, normalized_mse, transcoder_from_mlp
from learned.transcoder_files import list_transcoders, read_transcoder_dir, write_transcoder_dir


@pytest.fixture(scope="module")
def relu_handle(relu_gpt2_dir):
    return load_model(relu_gpt2_dir)


def _random(kind: str, activation: str = "topk", seed: int = 0) -> Transcoder:
    tc = Transcoder(TranscoderConfig(kind, 3, 8, 12, activation=activation, k=4 if activation == "topk" else 0),
                    seed=seed)
    with torch.no_grad():
        tc.b_enc.normal_(0, 0.5)
        tc.b_dec.normal_()
        tc.threshold.uniform_(0, 0.5)
    return tc


def test_exact_transcoder_forward_equals_the_mlp(relu_handle):
    tc = transcoder_from_mlp(relu_handle.weights(), relu_handle.info)
    L = relu_handle.info.n_layers
    r = relu_handle.run(["the cat sat on the mat", "def add(a, b):"],
                        read=[Site(k, la) for la in range(L) for k in ("ln2_normalized", "mlp_out")])
    x = torch.stack([r[Site("ln2_normalized", la)] for la in range(L)], dim=2)  # [batch, pos, L, d]
    y = torch.stack([r[Site("mlp_out", la)] for la in range(L)], dim=2)
    acts = tc.encode(x)
    assert float((acts > 0).float().mean()) > 0.2  # neurons really fire: not a trivially zero MLP
    torch.testing.assert_close(tc(x), y, atol=1e-4, rtol=1e-4)
    assert float(normalized_mse(y.flatten(0, 1), tc(x).detach().flatten(0, 1)).max()) < 1e-6


def test_exact_transcoder_refuses_a_gelu_mlp(tiny_handle):
    with pytest.raises(InvalidInput, match="only ReLU MLPs"):
        transcoder_from_mlp(tiny_handle.weights(), tiny_handle.info)


def test_cross_layer_features_write_only_their_layer_and_later():
    tc = _random("cross_layer")
    acts = torch.zeros(1, 3, 12)
    base = tc.decode(acts)
    acts[0, 1, 5] = 2.0  # one feature of layer 1
    delta = tc.decode(acts) - base  # [1, L, d]
    assert float(delta[0, 0].abs().max()) == 0.0  # layer 0 is before it
    for out, j in ((1, 0), (2, 1)):
        torch.testing.assert_close(delta[0, out], 2.0 * tc.W_dec[1][5, j])
    plt = _random("per_layer")
    acts = torch.zeros(1, 3, 12)
    acts[0, 1, 5] = 2.0
    delta = plt.decode(acts) - plt.decode(torch.zeros_like(acts))
    assert float(delta[0, 2].abs().max()) == 0.0 and float(delta[0, 1].abs().max()) > 0


def test_topk_keeps_exactly_k_per_layer():
    tc = _random("per_layer")
    acts = tc.encode(torch.randn(50, 3, 8) * 3 + 2)
    assert int((acts > 0).sum(-1).max()) <= 4


@pytest.mark.parametrize("kind", ["per_layer", "cross_layer"])
def test_fold_scales_gives_the_same_features_on_raw_inputs(kind):
    tc = _random(kind)
    x = torch.randn(20, 3, 8)
    s_in, s_out = torch.tensor([2.0, 0.5, 3.0]), torch.tensor([0.25, 4.0, 1.5])
    scaled_acts = tc.encode(x * s_in[:, None])
    scaled_out = tc.decode(scaled_acts)
    tc.fold_scales(s_in, s_out)
    torch.testing.assert_close(tc.encode(x), scaled_acts, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(tc(x), scaled_out / s_out[:, None], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind,activation", [("per_layer", "topk"), ("cross_layer", "topk"),
                                             ("per_layer", "jumprelu"), ("cross_layer", "jumprelu"),
                                             ("per_layer", "relu")])
def test_files_round_trip(tmp_path, kind, activation):
    tc = _random(kind, activation)
    tc.cfg.extra = {"note": "x"}
    write_transcoder_dir(tmp_path / "tc", tc, card="# card\n")
    back = read_transcoder_dir(tmp_path / "tc")
    assert back.cfg.kind == kind and back.cfg.activation == activation and back.cfg.extra == {"note": "x"}
    x = torch.randn(7, 3, 8) * 2
    torch.testing.assert_close(back(x), tc(x))
    assert (tmp_path / "tc" / "README.md").read_text() == "# card\n"
    files = {p.name for p in (tmp_path / "tc").iterdir()}
    if kind == "per_layer":
        assert {"layer_0.safetensors", "layer_2.safetensors"} <= files
    else:
        assert {"W_enc_0.safetensors", "W_dec_2.safetensors"} <= files
    assert "feature_input_hook: ln2.hook_normalized" in (tmp_path / "tc" / "config.yaml").read_text()


def test_a_circuit_tracer_folder_without_our_cfg_opens(tmp_path):
    """Files written by other tools: no cfg.json; JumpReLU from the thresholds; W_enc stored [d_tc, d_model]."""
    from safetensors.torch import load_file, save_file

    tc = _random("per_layer", "jumprelu")
    d = write_transcoder_dir(tmp_path / "tc", tc)
    (d / "cfg.json").unlink()
    for layer in range(3):
        t = load_file(str(d / f"layer_{layer}.safetensors"))
        t["W_enc"] = t["W_enc"].t().contiguous()
        save_file(t, str(d / f"layer_{layer}.safetensors"))
    back = read_transcoder_dir(d)
    assert back.cfg.activation == "jumprelu" and back.cfg.n_layers == 3
    x = torch.randn(5, 3, 8)
    torch.testing.assert_close(back(x), tc(x))
    clt = write_transcoder_dir(tmp_path / "clt", _random("cross_layer", "jumprelu"))
    (clt / "cfg.json").unlink()
    assert read_transcoder_dir(clt).cfg.kind == "cross_layer"


@pytest.mark.parametrize("damage,match", [
    (lambda d: (d / "layer_1.safetensors").write_bytes(b"garbage"), "damaged"),
    (lambda d: (d / "layer_1.safetensors").unlink(), "missing"),
    (lambda d: (d / "cfg.json").write_text("{not json"), "not readable JSON"),
    (lambda d: (d / "cfg.json").write_text(json.dumps({"kind": "sideways"})), "unknown transcoder kind"),
    (lambda d: (d / "cfg.json").write_text(json.dumps({"kind": "per_layer", "n_layers": 3, "activation": "gelu"})),
     "activation"),
    (lambda d: (d / "cfg.json").write_text(json.dumps({"kind": "per_layer", "n_layers": 3, "activation": "topk",
                                                        "k": 99})), "k"),
])
def test_damaged_folders_are_clear_errors(tmp_path, damage, match):
    d = write_transcoder_dir(tmp_path / "tc", _random("per_layer"))
    damage(d)
    with pytest.raises(InvalidInput, match=match):
        read_transcoder_dir(d)


def test_nan_weights_and_wrong_shapes_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    d = write_transcoder_dir(tmp_path / "tc", _random("cross_layer"))
    t = load_file(str(d / "W_dec_1.safetensors"))
    t["W_dec_1"][0, 0, 0] = float("nan")
    save_file(t, str(d / "W_dec_1.safetensors"))
    with pytest.raises(InvalidInput, match="NaN"):
        read_transcoder_dir(d)
    t["W_dec_1"] = torch.zeros(12, 3, 8)  # a CLT's layer 1 writes 2 layers, not 3
    save_file(t, str(d / "W_dec_1.safetensors"))
    with pytest.raises(InvalidInput, match="W_dec_1"):
        read_transcoder_dir(d)
    with pytest.raises(InvalidInput, match="not a folder"):
        read_transcoder_dir(tmp_path / "nope")


def test_list_transcoders_finds_folders_beside_a_model(tmp_path):
    (tmp_path / "m").mkdir()
    write_transcoder_dir(tmp_path / "m" / "transcoders" / "b", _random("per_layer"))
    write_transcoder_dir(tmp_path / "m" / "transcoders" / "a", _random("cross_layer"))
    (tmp_path / "m" / "transcoders" / "junk").mkdir()
    assert [p.name for p in list_transcoders(tmp_path / "m")] == ["a", "b"]
    assert list_transcoders(tmp_path / "nothing-here") == []


@pytest.mark.parametrize("kind", ["per_layer", "cross_layer"])
def test_sparse_decode_equals_dense_decode_with_gradients(kind):
    tc = _random(kind)
    x = torch.randn(30, 3, 8) * 2
    values, indices = tc.topk(tc.pre_acts(x))
    sparse = tc.decode_sparse(values, indices)
    dense = tc.decode(tc.encode(x))
    torch.testing.assert_close(sparse, dense, atol=1e-5, rtol=1e-5)
    g_sparse = torch.autograd.grad(sparse.pow(2).sum(), list(tc.W_dec) + [tc.W_enc])
    g_dense = torch.autograd.grad(dense.pow(2).sum(), list(tc.W_dec) + [tc.W_enc])
    for a, b in zip(g_sparse, g_dense):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
