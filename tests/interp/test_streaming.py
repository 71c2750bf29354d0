"""Streaming capture: same numbers as in-memory capture, flat memory as the dataset grows, resume, reuse."""
from __future__ import annotations

import gc

import numpy as np
import psutil
import pytest
import torch

from interp import InvalidInput
from interp.streaming import stream_activations

HOOKS = ["blocks.0.hook_resid_post", "blocks.1.attn.hook_pattern"]


def _tokens(n: int, pos: int = 64, vocab: int = 300) -> torch.Tensor:
    return torch.randint(1, vocab, (n, pos), generator=torch.Generator().manual_seed(n))


def test_streamed_rows_equal_direct_capture(tiny_handle, tmp_path):
    toks = _tokens(10, 16)
    store = stream_activations(tiny_handle, toks, HOOKS, tmp_path / "s", batch_size=4)
    assert store.complete and store.n_rows == 10
    cap = tiny_handle.run(toks, read=HOOKS)
    for h in HOOKS:
        np.testing.assert_allclose(store[h], cap[h].numpy(), atol=1e-5)
    assert store["blocks.1.attn.hook_pattern"].shape == (10, 4, 16, 16)


def test_position_rules_on_text(tiny_handle, tmp_path):
    texts = ["the cat sat on the mat", "def add(a, b):", "hello"]
    last = stream_activations(tiny_handle, texts, ["blocks.1.hook_resid_post"], tmp_path / "last",
                              positions="last", batch_size=2)
    span = stream_activations(tiny_handle, texts, ["blocks.1.hook_resid_post"], tmp_path / "span",
                              positions=(0, 2), batch_size=2)
    for i, t in enumerate(texts):
        cap = tiny_handle.run(t, read=["blocks.1.hook_resid_post"])
        act = cap["blocks.1.hook_resid_post"][0]
        np.testing.assert_allclose(last["blocks.1.hook_resid_post"][i], act[-1].numpy(), atol=1e-5)
        np.testing.assert_allclose(span["blocks.1.hook_resid_post"][i], act[:2].mean(0).numpy(), atol=1e-5)
    with pytest.raises(InvalidInput, match="equal length"):
        stream_activations(tiny_handle, texts, HOOKS, tmp_path / "all", positions="all")
    with pytest.raises(InvalidInput, match="does not exist"):
        stream_activations(tiny_handle, texts, ["blocks.9.hook_resid_post"], tmp_path / "bad")


def test_interrupted_run_resumes_and_finished_run_is_reused(tiny_handle, tmp_path):
    toks = _tokens(20, 16)
    clean = stream_activations(tiny_handle, toks, HOOKS, tmp_path / "clean", batch_size=4)

    def die_after_two(fraction, message):
        if message.startswith("captured 8/"):
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C after 2 batches

    with pytest.raises(KeyboardInterrupt):
        stream_activations(tiny_handle, toks, HOOKS, tmp_path / "r", batch_size=4,
                           progress=die_after_two)
    seen = []
    store = stream_activations(tiny_handle, toks, HOOKS, tmp_path / "r", batch_size=4,
                               progress=lambda f, m: seen.append(round(f * 20)))
    assert seen == [12, 16, 20]  # resumed after the 8 rows already on disk
    for h in HOOKS:
        np.testing.assert_array_equal(store[h], clean[h])
    calls = []
    stream_activations(tiny_handle, toks, HOOKS, tmp_path / "r", batch_size=4,
                       progress=lambda f, m: calls.append(f))
    assert calls == []  # complete: reused, no forward pass
    other = stream_activations(tiny_handle, _tokens(20, 12), HOOKS, tmp_path / "r", batch_size=4)
    assert other["blocks.0.hook_resid_post"].shape == (20, 12, 32)  # new data: recaptured, not mixed


def _peak_growth(handle, n_rows: int, out) -> float:
    gc.collect()
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    stream_activations(handle, _tokens(n_rows), handle.sites("resid_post") + handle.sites("pattern"),
                       out, batch_size=32,
                       progress=lambda f, m: peak.append(proc.memory_info().rss))
    return (max(peak) - base) / 2**20


def test_peak_memory_does_not_grow_with_dataset(tiny_handle, tmp_path):
    """4x the rows (64 MiB more on disk) must not raise peak RSS: rows go to disk batch by batch."""
    _peak_growth(tiny_handle, 64, tmp_path / "warm")  # warm allocator and code paths
    small = _peak_growth(tiny_handle, 256, tmp_path / "small")
    large = _peak_growth(tiny_handle, 1024, tmp_path / "large")
    per_row_mib = (2 * 64 * 32 + 2 * 4 * 64 * 64) * 4 / 2**20
    assert per_row_mib * (1024 - 256) > 40  # holding the extra rows in memory would show clearly
    assert large - small < 12, f"peak RSS grew by {large:.1f} MiB (vs {small:.1f}) for 4x the rows"
