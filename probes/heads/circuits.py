"""One head's QK and OV circuits over the whole vocabulary (Elhage et al. 2021, "A Mathematical Framework").

- OV circuit ``W_E W_V W_O W_U`` ``[source token, output token]``: how much attending to a source token raises
  each output logit. A copying head has a large diagonal (attending to " cat" raises " cat").
- QK circuit ``W_E W_Q W_K^T W_E^T`` ``[query token, key token]``: how much a query token wants to attend to a
  key token through the direct path from the embeddings (positions and earlier layers left out).

Both are rank ``d_head`` products ``A @ B`` (``A [vocab, d_head]``, ``B [d_head, vocab]``); TransformerLens's
``FactoredMatrix`` keeps them factored for the same reason. We write the few operations needed by hand (chunked
row blocks for top pairs and diagonal ranks, eigenvalues of the small ``B @ A``) rather than build a FactoredMatrix,
so every number here comes through the model interface's :class:`~interp.model.Weights` (grouped-query K/V heads
are already expanded per query head). The nonzero eigenvalues of ``A @ B`` are those of ``B @ A``
``[d_head, d_head]``; their *positivity* ``sum(lambda) / sum(|lambda|)`` is +1 when the circuit maps every token
towards itself (OV: copying; QK: attending to the same token), -1 when it maps them away (anti-copying, avoiding
the same token), near 0 when it does neither. Norms are ignored by default, as Olsson et al. and the Heads page's
copying score; ``fold_norms`` multiplies their gains in (centring and the per-token scale stay out).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch

from interp import validate
from interp.errors import InvalidInput
from interp.model import Model
from interp.sites import Site

CircuitKind = Literal["OV", "QK"]
#: Rows (source / query tokens) scanned for top pairs and diagonal ranks; the whole vocabulary up to this size.
MAX_ROWS = 8192
#: Rows multiplied at once (a [ROW_CHUNK, d_vocab] block in memory).
ROW_CHUNK = 512


@dataclass(frozen=True)
class Factored:
    """A vocab x vocab matrix kept as ``left [rows, d_head] @ right [d_head, cols]``."""

    left: torch.Tensor  # [rows, d_head]
    right: torch.Tensor  # [d_head, cols]

    def block(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """``[len(rows), len(cols)]`` entries of the full matrix."""
        return self.left[rows] @ self.right[:, cols]

    def eigenvalues(self) -> torch.Tensor:
        """The nonzero eigenvalues of the full matrix, as those of ``right @ left`` ``[d_head]`` (complex)."""
        return torch.linalg.eigvals((self.right @ self.left).double())


@dataclass
class Circuit:
    """One circuit of one head: its eigenvalues, positivity, top token pairs and the rank of each token's diagonal
    entry in its row (1 = the token itself is the top entry: copies itself / attends to itself most)."""

    kind: CircuitKind
    eigenvalues: np.ndarray  # [d_head] complex
    positivity: float  # sum(lambda).real / sum(|lambda|), in -1..1
    top_pairs: pd.DataFrame  # row token, column token, value (largest entries over the scanned rows)
    diag_rank: np.ndarray  # [rows scanned] 1-based rank of the diagonal entry within its row
    rows_scanned: int
    d_vocab: int

    @property
    def diag_top1(self) -> float:
        """Share of scanned rows whose largest entry is on the diagonal."""
        return float((self.diag_rank == 1).mean()) if len(self.diag_rank) else float("nan")

    @property
    def diag_top10(self) -> float:
        return float((self.diag_rank <= 10).mean()) if len(self.diag_rank) else float("nan")

    def meaning(self) -> str:
        """What the positivity says, in a sentence."""
        what = ("copies the token it attends to (raises that token's logit)" if self.kind == "OV" else
                "attends from a token to earlier copies of the same token")
        away = ("suppresses the token it attends to (anti-copying)" if self.kind == "OV" else
                "avoids attending to copies of the same token")
        p = self.positivity
        if p > 0.5:
            return f"Positivity {p:+.2f}: mostly positive eigenvalues, so this head {what}."
        if p < -0.5:
            return f"Positivity {p:+.2f}: mostly negative eigenvalues, so this head {away}."
        return (f"Positivity {p:+.2f}: mixed eigenvalues, so this head neither clearly {what.split(' (')[0]} nor "
                "the opposite; its circuit maps tokens to other tokens.")


@dataclass
class HeadCircuits:
    layer: int
    head: int
    ov: Circuit
    qk: Circuit
    ov_matrix: Factored
    qk_matrix: Factored
    folded: bool


def factored_circuits(model: Model, layer: int, head: int, *, fold_norms: bool = False) -> tuple[Factored, Factored]:
    """The OV and QK circuits of head ``layer.head`` as factored matrices (float32)."""
    model.require(Site("pattern", 0))  # an attention model
    h = model.check_head(layer, head)
    w = model.weights()
    w.check_finite(model.info.name, "W_E", "W_U", "W_Q", "W_K", "W_V", "W_O")
    W_E, W_U = w.W_E.float(), w.W_U.float()  # [vocab, d_model], [d_model, vocab]
    W_Q, W_K = w.W_Q[h.layer, h.head].float(), w.W_K[h.layer, h.head].float()  # [d_model, d_head]
    W_V, W_O = w.W_V[h.layer, h.head].float(), w.W_O[h.layer, h.head].float()  # [d_model, d_head], [d_head, d_model]
    if fold_norms:
        if w.ln1_w is not None:
            g = w.ln1_w[h.layer].float()[:, None]  # [d_model, 1]
            W_Q, W_K, W_V = g * W_Q, g * W_K, g * W_V
        if w.ln_final_w is not None:
            W_U = w.ln_final_w.float()[:, None] * W_U
    ov = Factored(W_E @ W_V, W_O @ W_U)  # [vocab, d_head] @ [d_head, vocab]
    qk = Factored(W_E @ W_Q, (W_E @ W_K).T)  # [vocab, d_head] @ [d_head, vocab]
    return ov, qk


def positivity_all(model: Model, *, fold_norms: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ov, qk)`` eigenvalue positivity of every head, ``[layer, head]`` each: cheap, from the
    ``d_head`` x ``d_head`` products (``W_O W_U W_E W_V`` and ``W_K^T W_E^T W_E W_Q``)."""
    model.require(Site("pattern", 0))
    w = model.weights()
    w.check_finite(model.info.name, "W_E", "W_U", "W_Q", "W_K", "W_V", "W_O")
    with torch.no_grad():
        W_E, W_U = w.W_E.float(), w.W_U.float()
        W_Q, W_K, W_V, W_O = (x.float() for x in (w.W_Q, w.W_K, w.W_V, w.W_O))  # [layer, head, ...]
        if fold_norms and w.ln1_w is not None:
            g = w.ln1_w.float()[:, None, :, None]  # [layer, 1, d_model, 1]
            W_Q, W_K, W_V = g * W_Q, g * W_K, g * W_V
        if fold_norms and w.ln_final_w is not None:
            W_U = w.ln_final_w.float()[:, None] * W_U
        ue = W_U @ W_E  # [d_model, d_model]
        ee = W_E.T @ W_E  # [d_model, d_model]
        ov = torch.linalg.eigvals((W_O @ ue @ W_V).double())  # [layer, head, d_head]
        qk = torch.linalg.eigvals((W_K.transpose(-1, -2) @ ee @ W_Q).double())
    return tuple(e.real.sum(-1).div(e.abs().sum(-1).clamp_min(1e-12)).float() for e in (ov, qk))  # type: ignore


def _scan(m: Factored, rows: int, k: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Top ``k`` entries over the first ``rows`` rows, and the 1-based rank of each row's diagonal entry."""
    best_v = torch.full((0,), float("-inf"))
    best_i = torch.zeros((0,), dtype=torch.long)
    ranks = []
    cols = m.right.shape[1]
    for start in range(0, rows, ROW_CHUNK):
        idx = torch.arange(start, min(rows, start + ROW_CHUNK))
        block = m.left[idx] @ m.right  # [chunk, vocab]
        diag = block[torch.arange(len(idx)), idx]  # [chunk]
        ranks.append((block > diag[:, None]).sum(-1) + 1)
        v, i = block.flatten().topk(min(k, block.numel()))
        best_v = torch.cat([best_v, v])
        best_i = torch.cat([best_i, i + start * cols])
        keep = best_v.topk(min(k, len(best_v)))
        best_v, best_i = keep.values, best_i[keep.indices]
    pairs = pd.DataFrame({"row": (best_i // cols).numpy(), "column": (best_i % cols).numpy(),
                          "value": best_v.numpy()})
    return pairs, torch.cat(ranks).numpy()


def _circuit(kind: CircuitKind, m: Factored, rows: int, k: int) -> Circuit:
    eig = m.eigenvalues()
    positivity = float(eig.real.sum() / eig.abs().sum().clamp_min(1e-12))
    pairs, ranks = _scan(m, rows, k)
    return Circuit(kind, eig.numpy(), positivity, pairs, ranks, rows, m.right.shape[1])


def head_circuits(model: Model, layer: int, head: int, *, k: int = 20, max_rows: int = MAX_ROWS,
                  fold_norms: bool = False) -> HeadCircuits:
    """Both circuits of head ``layer.head``: eigenvalues and positivity (exact, from the ``d_head`` x ``d_head``
    product), the ``k`` largest entries and every token's diagonal rank over the first ``max_rows`` rows of the
    full vocabulary (all of it when the vocabulary is no larger; the first ids of a BPE vocabulary are its
    commonest pieces)."""
    k = validate.count(k, "k", low=1)
    max_rows = validate.count(max_rows, "max_rows", low=1)
    ov, qk = factored_circuits(model, layer, head, fold_norms=fold_norms)
    rows = min(model.info.d_vocab, max_rows)
    with torch.no_grad():
        circuits = _circuit("OV", ov, rows, k), _circuit("QK", qk, rows, k)
    for c in circuits:
        if not np.isfinite(c.positivity):
            raise InvalidInput(f"{model.info.name}'s head {layer}.{head} has an all-zero {c.kind} circuit; its "
                               "eigenvalues say nothing.")
    return HeadCircuits(int(layer), int(head), circuits[0], circuits[1], ov, qk, fold_norms)


def circuit_block(circuits: HeadCircuits, kind: CircuitKind, token_ids: list[int]) -> np.ndarray:
    """``[n, n]`` entries of one circuit between the given tokens (rows: source / query, columns: output / key)."""
    if not token_ids:
        raise InvalidInput("No tokens to show the circuit between.")
    m = circuits.ov_matrix if kind == "OV" else circuits.qk_matrix
    ids = torch.as_tensor(token_ids, dtype=torch.long)
    if int(ids.min()) < 0 or int(ids.max()) >= m.right.shape[1]:
        raise InvalidInput(f"A token id is outside the vocabulary (0..{m.right.shape[1] - 1}).")
    with torch.no_grad():
        return m.block(ids, ids).numpy()
