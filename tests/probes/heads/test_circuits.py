"""A head's QK and OV circuits: the factored matrices equal the explicit products, eigenvalues and positivity match
the Heads page's copying score, chunked scans equal a dense scan, an induction model's copying head copies."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.errors import InvalidInput
from probes.heads import circuits
from probes.heads.circuits import circuit_block, factored_circuits, head_circuits, positivity_all
from probes.heads.detectors import copying_scores


def test_factored_circuits_are_the_full_products(tiny_handle):
    w = tiny_handle.weights()
    ov, qk = factored_circuits(tiny_handle, 1, 2)
    full_ov = w.W_E @ w.W_V[1, 2] @ w.W_O[1, 2] @ w.W_U  # [vocab, vocab]
    full_qk = w.W_E @ w.W_Q[1, 2] @ w.W_K[1, 2].T @ w.W_E.T
    ids = torch.tensor([0, 5, 17, tiny_handle.info.d_vocab - 1])
    assert torch.allclose(ov.block(ids, ids), full_ov[ids][:, ids], atol=1e-5)
    assert torch.allclose(qk.block(ids, ids), full_qk[ids][:, ids], atol=1e-5)
    nonzero = torch.linalg.eigvals(full_ov.double())
    nonzero = nonzero[nonzero.abs() > 1e-6 * nonzero.abs().max()]
    got = ov.eigenvalues()
    assert np.allclose(np.sort_complex(got.numpy()), np.sort_complex(nonzero.numpy()), atol=1e-6)


def test_positivity_matches_the_copying_score_and_every_head(tiny_handle):
    c = head_circuits(tiny_handle, 1, 3)
    ov, qk = positivity_all(tiny_handle)
    assert ov.shape == (2, 4) and qk.shape == (2, 4)
    assert c.ov.positivity == pytest.approx(float(copying_scores(tiny_handle)[1, 3]), abs=1e-4)
    assert c.ov.positivity == pytest.approx(float(ov[1, 3]), abs=1e-4)
    assert c.qk.positivity == pytest.approx(float(qk[1, 3]), abs=1e-4)
    assert -1 <= c.ov.positivity <= 1 and -1 <= c.qk.positivity <= 1


def test_chunked_scan_equals_a_dense_scan(tiny_handle, monkeypatch):
    monkeypatch.setattr(circuits, "ROW_CHUNK", 37)  # many uneven chunks
    c = head_circuits(tiny_handle, 0, 1, k=15)
    w = tiny_handle.weights()
    full = (w.W_E @ w.W_V[0, 1] @ w.W_O[0, 1] @ w.W_U).float()
    top = full.flatten().topk(15)
    assert np.allclose(np.sort(c.ov.top_pairs["value"].to_numpy()), np.sort(top.values.numpy()), atol=1e-5)
    rows, cols = c.ov.top_pairs["row"].to_numpy(), c.ov.top_pairs["column"].to_numpy()
    assert np.allclose(full[rows, cols].numpy(), c.ov.top_pairs["value"].to_numpy(), atol=1e-5)
    diag = full.diagonal()
    ranks = (full > diag[:, None]).sum(-1) + 1
    assert np.array_equal(c.ov.diag_rank, ranks.numpy()) and c.ov.rows_scanned == tiny_handle.info.d_vocab
    assert c.ov.diag_top1 == pytest.approx(float((ranks == 1).float().mean()))


def test_row_limit_scans_only_the_first_rows(tiny_handle):
    c = head_circuits(tiny_handle, 0, 0, max_rows=50)
    assert c.ov.rows_scanned == 50 and len(c.qk.diag_rank) == 50 and c.ov.top_pairs["row"].max() < 50


def test_grouped_query_heads_share_their_key_and_value_weights():
    from interp import load_model
    from tests.fuzz.model_dirs import gqa_dir

    m = load_model(gqa_dir("llama"))  # 4 query heads, 2 KV heads
    ov0, qk0 = factored_circuits(m, 0, 0)
    ov1, qk1 = factored_circuits(m, 0, 1)
    assert torch.allclose(ov0.left, ov1.left)  # W_E W_V: one KV head serves query heads 0 and 1
    assert torch.allclose(qk0.right, qk1.right)  # (W_E W_K)^T likewise
    assert not torch.allclose(qk0.left, qk1.left)  # their queries differ
    c = head_circuits(m, 1, 3)
    assert np.isfinite(c.ov.positivity) and len(c.ov.eigenvalues) == m.info.d_head


def test_an_induction_models_copying_head_copies():
    from interp.loading import bundled_models

    if "attn-only-2l" not in bundled_models():
        pytest.skip("bundled attn-only-2l absent")
    from interp import load_model

    m = load_model("attn-only-2l")
    c = head_circuits(m, 1, 2)  # the induction head (README: score 0.93)
    assert c.ov.positivity > 0.9 and c.ov.diag_top1 > 0.5
    assert "copies the token it attends to" in c.ov.meaning()


def test_bad_heads_and_tokens_are_one_line_errors(tiny_handle):
    with pytest.raises(InvalidInput, match="does not exist"):
        head_circuits(tiny_handle, 0, 9)
    c = head_circuits(tiny_handle, 0, 0, max_rows=10)
    with pytest.raises(InvalidInput, match="outside the vocabulary"):
        circuit_block(c, "OV", [1, 10**6])
    with pytest.raises(InvalidInput, match="No tokens"):
        circuit_block(c, "QK", [])
    assert circuit_block(c, "QK", [3, 4, 5]).shape == (3, 3)
