"""SAE module and metrics: TopK/ReLU activations, SAELens conversion, scale folding, metrics, splicing, AUCs."""
from __future__ import annotations

import pytest
import torch

from interp.errors import InvalidInput
from learned.sae import (
    SAEConfig,
    SparseAutoencoder,
    aux_k_loss,
    l0,
    latent_fractions,
    mmcs,
    sae_loss,
    variance_explained,
)
from probes.features.latents import auc_matrix
from probes.features.splice import splice_metrics


def _sae(arch="topk", d_in=8, d_sae=32, k=3, **kw):
    return SparseAutoencoder(SAEConfig(d_in=d_in, d_sae=d_sae, architecture=arch, k=k if arch == "topk" else 0, **kw))


def test_topk_keeps_exactly_k_latents_and_relu_is_nonnegative():
    x = torch.randn(50, 8)
    acts = _sae("topk").encode(x)
    assert ((acts > 0).sum(-1) <= 3).all() and ((acts != 0).sum(-1) <= 3).all()
    assert l0(_sae("topk").encode(x * 0 + 5)) <= 3
    assert (_sae("standard").encode(x) >= 0).all()


def test_saelens_round_trip_gives_the_same_function_and_names():
    sae = _sae("topk", hook_name="blocks.0.hook_resid_pre", model_name="m")
    with torch.no_grad():
        sae.b_enc.normal_()
        sae.b_dec.normal_()
    cfg, tensors = sae.to_saelens()
    assert tensors["W_enc"].shape == (8, 32) and tensors["W_dec"].shape == (32, 8)
    assert cfg["architecture"] == "topk" and cfg["k"] == 3 and cfg["activation_fn_kwargs"] == {"k": 3}
    assert cfg["hook_name"] == cfg["metadata"]["hook_name"] == "blocks.0.hook_resid_pre"
    back = SparseAutoencoder.from_saelens(cfg, tensors)
    x = torch.randn(20, 8)
    assert torch.equal(back(x), sae(x))
    old_style = {k: v for k, v in cfg.items() if k not in ("k", "metadata")} | {"architecture": "standard"}
    assert SparseAutoencoder.from_saelens(old_style, tensors).cfg.architecture == "topk"  # SAELens < 6 TopK
    bad = dict(tensors, W_enc=torch.zeros(8, 31))
    with pytest.raises(InvalidInput, match="W_enc"):
        SparseAutoencoder.from_saelens(cfg, bad)


def test_folding_the_input_scale_keeps_latents_and_unscales_the_output():
    sae = _sae("standard")
    x = torch.randn(10, 8)
    want_acts, want_out = sae.encode(x * 3.0), sae(x * 3.0) / 3.0
    sae.fold_input_scale(3.0)
    assert torch.allclose(sae.encode(x), want_acts, atol=1e-5)
    assert torch.allclose(sae(x), want_out, atol=1e-5)


def test_relu_penalty_is_weighted_by_decoder_norms():
    sae = _sae("standard")
    x = torch.randn(16, 8)
    base = sae_loss(sae, x, l1_coeff=1.0)
    with torch.no_grad():
        sae.W_dec.mul_(2.0)
        sae.W_enc.mul_(0.5)  # latents halve, decoder norms double: the weighted L1 is unchanged
    again = sae_loss(sae, x, l1_coeff=1.0)
    assert again.sparsity == pytest.approx(base.sparsity, rel=1e-4)


def test_aux_k_loss_is_zero_without_dead_latents_and_positive_with_them():
    sae = _sae("topk")
    x = torch.randn(16, 8)
    pre = sae.pre_acts(x)
    x_hat = sae(x)
    assert float(aux_k_loss(sae, x, x_hat, pre, torch.zeros(32, dtype=torch.bool))) == 0.0
    assert float(aux_k_loss(sae, x, x_hat, pre, torch.ones(32, dtype=torch.bool)).detach()) > 0.0


def test_metrics():
    x = torch.randn(100, 8)
    assert variance_explained(x, x) == pytest.approx(1.0)
    assert variance_explained(x, x.mean(0, keepdim=True).expand_as(x)) == pytest.approx(0.0, abs=1e-6)
    f = latent_fractions(torch.tensor([0, 5, 50, 0]), 100)
    assert f.dead == 0.5 and f.dense == 0.25
    true = torch.eye(6)
    assert mmcs(torch.cat([true, torch.randn(3, 6)]), true) == pytest.approx(1.0)
    assert mmcs(torch.ones(1, 6), true) < 0.5


def _identity_sae(d: int, hook: str) -> SparseAutoencoder:
    """ReLU SAE with latents [x, -x]: reconstructs any input exactly."""
    sae = SparseAutoencoder(SAEConfig(d_in=d, d_sae=2 * d, architecture="standard", hook_name=hook))
    eye = torch.eye(d)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], 1))
        sae.W_dec.copy_(torch.cat([eye, -eye], 0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae


def test_a_perfect_reconstruction_recovers_all_the_loss(tiny_handle):
    d = tiny_handle.info.d_model
    tokens = torch.randint(1, tiny_handle.info.d_vocab, (4, 12))
    m = splice_metrics(tiny_handle, _identity_sae(d, "blocks.1.hook_resid_pre"), tokens)
    assert m.ce_recovered == pytest.approx(1.0, abs=1e-4) and m.kl == pytest.approx(0.0, abs=1e-5)
    assert m.variance_explained == pytest.approx(1.0, abs=1e-5)  # (random weights: zero ablation may even help)
    broken = _identity_sae(d, "blocks.1.hook_resid_pre")
    with torch.no_grad():
        broken.W_dec.zero_()  # reconstruction 0 = zero ablation
    z = splice_metrics(tiny_handle, broken, tokens)
    assert z.ce_recovered == pytest.approx(0.0, abs=1e-4)
    with pytest.raises(InvalidInput, match="has no site"):
        splice_metrics(tiny_handle, _identity_sae(d, "blocks.9.hook_resid_pre"), tokens)


def test_auc_matrix_with_ties():
    scores = torch.tensor([[0.0, 0.0], [0.0, 1.0], [2.0, 0.0], [3.0, 1.0]], dtype=torch.float64)
    labels = torch.tensor([[0, 1], [0, 0], [1, 1], [1, 0]])
    auc = auc_matrix(scores, labels)
    assert auc[0, 0] == pytest.approx(1.0)  # latent 0 separates label 0 perfectly
    assert auc[0, 1] == pytest.approx(0.375)  # pairs: tie 0.5, 0, 1, 0 over 4
    assert auc[1, 0] == pytest.approx(0.5)  # ties count half
    assert auc[1, 1] == pytest.approx(0.0)
