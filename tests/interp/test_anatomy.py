"""Anatomy statistics against hand-computable cases."""
from __future__ import annotations

import math

import torch

from interp import load_model
from interp.anatomy import model_anatomy


def test_uniform_attention_has_maximal_entropy(tmp_path, tiny_tokenizer):
    """With W_Q = 0 every score is equal, so each row is uniform and its entropy is log(#keys)."""
    from interp.native_models import build_native_model, native_config, save_native

    cfg = native_config(n_layers=2, d_model=32, n_ctx=32, d_head=8, n_heads=4, d_vocab=len(tiny_tokenizer),
                        attn_only=True, normalization_type="LN", act_fn="gelu", positional_embedding_type="standard")
    model = build_native_model(cfg, seed=0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".attn.q." in name:
                p.zero_()
    save_native(model, cfg, tiny_tokenizer, tmp_path / "uniform")
    h = load_model(tmp_path / "uniform")
    a = model_anatomy(h, ["the cat sat on the mat"])
    n = len(h.tokenizer("the cat sat on the mat", add_special_tokens=False)["input_ids"]) + 1  # + BOS
    expected = sum(math.log(k) for k in range(2, n + 1)) / (n - 1)  # query rows 1..n-1 (BOS row excluded)
    torch.testing.assert_close(a.attn_entropy, torch.full((2, 4), expected), atol=1e-4, rtol=1e-4)
    assert abs(a.max_entropy - expected) < 1e-4
    assert a.n_tokens == n - 1


def test_resid_norms_match_direct_computation(tiny_handle):
    from interp import tokenize

    prompts = ["the cat sat", "def add(a, b):"]
    a = model_anatomy(tiny_handle, prompts)
    batch = tokenize(tiny_handle, prompts)
    cap = tiny_handle.run(batch, read=["blocks.1.hook_resid_pre"])
    mask = batch.attention_mask.bool()
    mask[:, 0] = False
    expected = cap["blocks.1.hook_resid_pre"].norm(dim=-1)[mask].mean()
    torch.testing.assert_close(a.resid_norm[1], expected)
    assert a.resid_norm.shape == (3,) and a.attn_entropy.shape == (2, 4)
