"""Tokenisation guards and selective capture: only the named hooks, right shapes, padding-safe."""
from __future__ import annotations

import pytest
import torch

from interp import InvalidInput, hook_names, run_with_capture, tokenize
from interp.capture import forward_logits


def test_empty_and_over_long_prompts(tiny_handle):
    for empty in ["", "   \n"]:
        with pytest.raises(InvalidInput, match="empty"):
            tokenize(tiny_handle, empty)
    with pytest.raises(InvalidInput, match="Prompt 1 is empty"):
        tokenize(tiny_handle, ["hello", ""])
    with pytest.raises(InvalidInput, match="No prompts"):
        tokenize(tiny_handle, [])
    long = "the cat sat on the mat. " * 40
    with pytest.raises(InvalidInput, match=r"reads at most 64 tokens"):
        tokenize(tiny_handle, long)
    batch = tokenize(tiny_handle, long, truncate=True)
    assert batch.tokens.shape == (1, 64) and batch.truncated


def test_bos_is_prepended_once(tiny_handle):
    batch = tokenize(tiny_handle, "hello world")
    bos = tiny_handle.tokenizer.bos_token_id
    assert batch.tokens[0, 0].item() == bos and batch.tokens[0, 1].item() != bos
    assert tokenize(tiny_handle, "hello world", prepend_bos=False).tokens.shape[1] == batch.tokens.shape[1] - 1


def test_token_tensor_validation(tiny_handle):
    with pytest.raises(InvalidInput, match="Token ids"):
        tokenize(tiny_handle, torch.tensor([[0, 10_000]]))
    with pytest.raises(InvalidInput, match=r"\[batch, pos\]"):
        tokenize(tiny_handle, torch.zeros(1, 0, dtype=torch.long))


def test_capture_only_requested_hooks(tiny_handle):
    names = hook_names(tiny_handle, "pattern", layers=[1]) + ["blocks.0.hook_resid_post"]
    cap = run_with_capture(tiny_handle, "the cat sat", names)
    assert set(names) <= set(cap.cache.keys())
    assert not any("mlp" in k or "hook_q" in k for k in cap.cache.keys())
    n = cap.tokens.shape[1]
    assert cap["blocks.1.attn.hook_pattern"].shape == (1, 4, n, n)
    assert cap["blocks.0.hook_resid_post"].shape == (1, n, 32)
    torch.testing.assert_close(cap["blocks.1.attn.hook_pattern"].sum(-1), torch.ones(1, 4, n))


def test_unknown_hook_and_bad_indices(tiny_handle):
    with pytest.raises(InvalidInput, match="Did you mean"):
        run_with_capture(tiny_handle, "hi", ["blocks.0.attn.hook_patern"])
    with pytest.raises(InvalidInput, match="Layer 5 does not exist"):
        hook_names(tiny_handle, "pattern", layers=[5])
    with pytest.raises(InvalidInput, match="Head 1.4 does not exist"):
        tiny_handle.check_head(1, 4)
    with pytest.raises(InvalidInput):
        tiny_handle.check_head(-1, 0)
    with pytest.raises(InvalidInput, match="Unknown hook kind"):
        hook_names(tiny_handle, "mlp_neurons")


def test_padded_batch_matches_single_prompts(tiny_handle):
    prompts = ["the cat", "def add(a, b):\n    return a + b"]
    hooks = hook_names(tiny_handle, "resid_post")
    both = run_with_capture(tiny_handle, prompts, hooks)
    assert both.batch.padded
    for i, p in enumerate(prompts):
        one = run_with_capture(tiny_handle, p, hooks)
        n = one.tokens.shape[1]
        torch.testing.assert_close(both["blocks.1.hook_resid_post"][i, :n], one["blocks.1.hook_resid_post"][0],
                                   atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(both.logits[i, :n], one.logits[0], atol=1e-5, rtol=1e-5)


def test_capture_logits_equal_plain_forward(tiny_handle):
    batch, logits = forward_logits(tiny_handle, "Hello, world!")
    cap = run_with_capture(tiny_handle, batch, hook_names(tiny_handle, "pattern"))
    torch.testing.assert_close(cap.logits, logits)


def test_full_gpt2_shape_hooks_and_tokenizer(gpt2_shape_handle):
    h = gpt2_shape_handle
    assert (h.info.n_layers, h.info.n_heads, h.info.d_model, h.info.n_ctx, h.info.d_vocab) == (12, 12, 768, 1024, 50257)
    assert h.tokenizer("Hello, world!", add_special_tokens=False)["input_ids"] == [15496, 11, 995, 0]
    batch = tokenize(h, "Hello, world!")
    assert batch.tokens.tolist() == [[50256, 15496, 11, 995, 0]]
    names = hook_names(h, "pattern") + hook_names(h, "resid_pre") + hook_names(h, "z")
    cap = run_with_capture(h, batch, names)
    for i in range(12):
        assert cap[f"blocks.{i}.attn.hook_pattern"].shape == (1, 12, 5, 5)
        assert cap[f"blocks.{i}.hook_resid_pre"].shape == (1, 5, 768)
        assert cap[f"blocks.{i}.attn.hook_z"].shape == (1, 5, 12, 64)
    assert cap.logits.shape == (1, 5, 50257)
    with pytest.raises(InvalidInput, match="1024"):
        tokenize(h, " hello" * 1100)
