"""Attention-head detectors for every head of any model, from one capture of attention patterns.

Scores (all [n_layers, n_heads], higher = more of that behaviour):
- ``prev_token``: attention from each position to the one before it;
- ``duplicate``: attention from a token of the second copy to the same token in the first copy;
- ``induction``: attention to the token *after* the earlier occurrence (the ``seq_len - 1`` offset diagonal);
- ``prefix_matching``: the same behaviour on random tokens that recur at random gaps (Olsson et al.);
- ``copying``: OV-circuit eigenvalue positivity, sum(lambda) / sum(|lambda|) of W_E W_V W_O W_U (Olsson et al.).

BOS handling: sequences start with BOS at position 0; it is never a target, queries at positions 0 and 1
are excluded from ``prev_token`` (their previous token is BOS or nothing), and attention parked on BOS counts
as attention *not* on the target.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import torch

from interp import validate
from interp.errors import InvalidInput
from interp.model import Model
from interp.sites import Site
from interp.tokens import TokenBatch
from tasks.repeats import random_tokens_with_repeats, repeated_random_tokens

SCORE_NAMES = ("induction", "prev_token", "duplicate", "prefix_matching", "copying")


@dataclass
class HeadScores:
    """Per-head scores of one model; ``table()`` ranks heads for display and results."""

    model: str
    scores: dict[str, torch.Tensor]  # name -> [n_layers, n_heads]
    settings: dict = field(default_factory=dict)

    def table(self, sort_by: str = "induction") -> pd.DataFrame:
        """One row per head: ``head`` ("L.H"), every score (SCORE_NAMES order, then extras such as
        ``ablation_effect``), ``layer``, ``head_index``; sorted by ``sort_by``, highest first."""
        n_layers, n_heads = next(iter(self.scores.values())).shape
        names = [k for k in SCORE_NAMES if k in self.scores] + [k for k in self.scores if k not in SCORE_NAMES]
        rows = [{"head": f"{i}.{h}", **{k: float(self.scores[k][i, h]) for k in names}, "layer": i, "head_index": h}
                for i in range(n_layers) for h in range(n_heads)]
        df = pd.DataFrame(rows)
        return df.sort_values(sort_by, ascending=False, kind="stable").reset_index(drop=True) if sort_by in df else df

    def with_scores(self, **extra: torch.Tensor) -> HeadScores:
        """A copy with more [n_layers, n_heads] columns, e.g. ``ablation_effect=result.effect``."""
        return HeadScores(self.model, {**self.scores, **{k: v.cpu() for k, v in extra.items()}}, dict(self.settings))

    def top(self, name: str, k: int = 5) -> list[str]:
        """The ``k`` highest-scoring heads for ``name`` as ``L.H`` strings."""
        return self.table(name)["head"].head(k).tolist()


def capture_patterns(handle: Model, batch: TokenBatch) -> torch.Tensor:
    """[n_layers, batch, head, q, k] attention patterns from one no-grad forward pass that stops as soon as the
    last layer's pattern exists (skips the last block's output, MLP, final norm and unembedding)."""
    patterns = handle.sites("pattern")
    run = handle.run(batch, read=patterns, stop_after=patterns[-1])
    return run.stack("pattern", range(handle.info.n_layers)).float()


def repeated_sequence_scores(patterns: torch.Tensor, seq_len: int) -> dict[str, torch.Tensor]:
    """Scores on BOS + A + A batches. ``patterns``: [layer, batch, head, q, k] with q = k = 1 + 2*seq_len."""
    L = seq_len
    if patterns.shape[-1] != 1 + 2 * L:
        raise InvalidInput(f"Patterns of length {patterns.shape[-1]} do not match BOS + 2 x {L} tokens.")
    q2 = torch.arange(L + 1, 2 * L + 1)  # queries in the second copy
    q_prev = torch.arange(2, 2 * L + 1)
    return {
        "induction": patterns[..., q2, q2 - L + 1].mean(dim=(1, -1)),  # [layer, head]
        "duplicate": patterns[..., q2, q2 - L].mean(dim=(1, -1)),
        "prev_token": patterns[..., q_prev, q_prev - 1].mean(dim=(1, -1)),
    }


def detection_patterns(tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """TransformerLens's head_detector patterns, batched: [batch, q, k] 0/1 masks for each head type."""
    pos = tokens.shape[1]
    same = tokens[:, :, None] == tokens[:, None, :]  # [batch, q, k]
    earlier = torch.tril(torch.ones(pos, pos, dtype=torch.bool), diagonal=-1)
    duplicate = (same & earlier).float()
    induction = torch.zeros_like(duplicate)
    induction[:, :, 1:] = duplicate[:, :, :-1]  # the token after an earlier occurrence; key 0 (BOS) never
    induction = torch.tril(induction)
    prev = torch.zeros(pos, pos)
    prev[1:, :-1] = torch.eye(pos - 1)
    return {"prev_token": prev.expand_as(duplicate), "duplicate": duplicate, "induction": induction}


def mul_scores(patterns: torch.Tensor, detection: torch.Tensor, *, exclude_bos: bool = False,
               exclude_current: bool = False) -> torch.Tensor:
    """TransformerLens's ``"mul"`` measure, sum(P * D) / sum(P) per head, averaged over the batch.

    ``patterns``: [layer, batch, head, q, k]; ``detection``: [batch, q, k] -> [layer, head].
    """
    p = patterns
    if exclude_bos or exclude_current:
        p = p.clone()
        if exclude_bos:
            p[..., 0] = 0
        if exclude_current:
            p = p * (1 - torch.eye(p.shape[-1]))
    num = (p * detection[None, :, None]).sum(dim=(-1, -2))  # [layer, batch, head]
    return (num / p.sum(dim=(-1, -2))).mean(dim=1)


def prefix_matching_scores(patterns: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Attention on 'the token after an earlier occurrence of the current token', averaged over the
    queries that have such an occurrence. [layer, batch, head, q, k] + [batch, pos] -> [layer, head]."""
    target = detection_patterns(tokens)["induction"]  # [batch, q, k]
    has = target.sum(-1) > 0  # [batch, q]
    mass = (patterns * target[None, :, None]).sum(-1)  # [layer, batch, head, q]
    mass = mass * has[None, :, None]
    return mass.sum(dim=(1, 3)) / has.sum().clamp_min(1)


def _weights(handle: Model) -> dict[str, torch.Tensor]:
    """W_Q, W_K, W_V [layer, head, d_model, d_head] and W_O [layer, head, d_head, d_model] per query head, float32
    (grouped K/V heads expanded by the model interface); InvalidInput if they hold NaN/inf."""
    handle.require(Site("pattern", 0))
    w = handle.weights()
    w.check_finite(handle.info.name, "W_Q", "W_K", "W_V", "W_O")
    return {"W_Q": w.W_Q.float(), "W_K": w.W_K.float(), "W_V": w.W_V.float(), "W_O": w.W_O.float()}


def copying_scores(handle: Model) -> torch.Tensor:
    """[layer, head] sum(lambda)/sum(|lambda|) of each head's full OV circuit W_E W_V W_O W_U (LayerNorm
    ignored, as in Olsson et al.). Computed on the d_head x d_head matrix W_O (W_U W_E) W_V, which has the
    same nonzero eigenvalues as the vocab x vocab circuit."""
    with torch.no_grad():
        w = _weights(handle)
        full = handle.weights()
        ue = full.W_U.float() @ full.W_E.float()  # [d_model, d_vocab] @ [d_vocab, d_model] -> [d_model, d_model]
        if not bool(torch.isfinite(ue).all()):
            raise InvalidInput(f"{handle.info.name}'s embedding or unembedding holds NaN or infinite values.")
        m = w["W_O"] @ ue @ w["W_V"]  # [layer, head, d_head, d_head]
        if not bool(torch.isfinite(m).all()):
            raise InvalidInput(f"{handle.info.name}'s OV circuits overflow float32; its copying scores are undefined.")
        eig = torch.linalg.eigvals(m)  # [layer, head, d_head] complex
    return eig.real.sum(-1) / eig.abs().sum(-1).clamp_min(1e-12)


def _bos(handle: Model) -> int:
    return handle.bos_token_id if handle.bos_token_id is not None else 0


def repeated_batch(handle: Model, n_batch: int, seq_len: int, *, seed: int = 0) -> torch.Tensor:
    """[n_batch, 1 + 2 * seq_len] BOS + A + A rows for ``handle`` (A random, never containing BOS): the
    sequences ``scan_heads`` scores induction on, reusable for ablation and for showing a head's pattern."""
    bos, vocab = _bos(handle), handle.info.d_vocab
    low = 1 if bos == 0 else 0
    rep = repeated_random_tokens(n_batch, seq_len, vocab, seed=seed, bos=bos, low=low)
    if low == 0:  # keep BOS out of the segments when its id is not 0
        rep[:, 1:] = torch.where(rep[:, 1:] == bos, (bos + 1) % vocab, rep[:, 1:])
    return rep


def scan_heads(handle: Model, *, seq_len: int = 50, n_batch: int = 10, seed: int = 0,
               include_copying: bool = True) -> HeadScores:
    """Score every head from ONE forward pass that captures only the attention patterns.

    The batch holds ``n_batch`` rows of BOS + repeated random tokens (induction, duplicate, previous
    token) and ``n_batch`` rows of random tokens recurring at random gaps (prefix matching), of equal length.
    """
    handle.require(Site("pattern", 0))
    seq_len = validate.count(seq_len, "seq_len", low=2, high=max(2, (handle.info.n_ctx - 1) // 2))
    if 1 + 2 * seq_len > handle.info.n_ctx:
        raise InvalidInput(f"seq_len must be in 2..{(handle.info.n_ctx - 1) // 2} for {handle.info.name}.")
    n_batch = validate.count(n_batch, "n_batch", low=1, high=4096)
    seed = validate.count(seed, "seed", low=0, high=2**32 - 1)
    bos, vocab = _bos(handle), handle.info.d_vocab
    low = 1 if bos == 0 else 0
    rep = repeated_batch(handle, n_batch, seq_len, seed=seed)
    pool = max(4, seq_len // 3)
    gaps = random_tokens_with_repeats(n_batch, 2 * seq_len, pool, vocab, seed=seed + 1, bos=bos, low=max(low, 1))
    tokens = torch.cat([rep, gaps]).to(handle.device)  # [2 * n_batch, 1 + 2 * seq_len]
    pats = capture_patterns(handle, handle.tokenize(tokens))  # [layer, 2 * n_batch, head, q, k]
    scores = repeated_sequence_scores(pats[:, :n_batch], seq_len)
    scores["prefix_matching"] = prefix_matching_scores(pats[:, n_batch:], gaps)
    if include_copying:
        scores["copying"] = copying_scores(handle)
    return HeadScores(handle.info.name, {k: v.cpu() for k, v in scores.items()},
                      {"seq_len": seq_len, "n_batch": n_batch, "seed": seed})


def detector_scores(handle: Model, prompts: list[str] | torch.Tensor, *, exclude_bos: bool = False,
                    exclude_current: bool = False) -> dict[str, torch.Tensor]:
    """head_detector-compatible scores (TL's ``"mul"`` measure, averaged over prompts) from ONE batched capture.

    Prompts of different lengths are right-padded; padded queries and keys never count. Returns
    ``{"prev_token", "duplicate", "induction"}`` -> [n_layers, n_heads].
    """
    handle.require(Site("pattern", 0))
    batch = handle.tokenize(prompts)
    pats = capture_patterns(handle, batch).cpu()  # [layer, batch, head, q, k]
    pos = pats.shape[-1]
    real = (torch.arange(pos)[None, :] < batch.lengths.cpu()[:, None]).float()  # [batch, pos]
    pats = pats * (real[:, None, :, None] * real[:, None, None, :])[None]  # zero padded queries and keys
    if exclude_bos:
        pats[..., 0] = 0
    if exclude_current:
        pats = pats * (1 - torch.eye(pos))
    det = detection_patterns(batch.tokens.cpu())  # [batch, q, k] each
    den = pats.sum(dim=(-1, -2))  # [layer, batch, head]
    return {k: ((pats * d[None, :, None]).sum(dim=(-1, -2)) / den).mean(dim=1) for k, d in det.items()}


def k_composition_scores(handle: Model) -> torch.Tensor:
    """K-composition of every earlier head's OV circuit into every later head's QK circuit (Elhage et al. 2021):
    ||W_OV^a W_QK^b^T||_F / (||W_OV^a||_F ||W_QK^b||_F). [layer_a, head_a, layer_b, head_b]; 0 where a is not
    before b, or where either circuit is all zero. A previous-token head feeding an induction head's keys shows up
    as a high entry. Grouped-query models: each query head uses its shared K/V head."""
    with torch.no_grad():
        w = _weights(handle)  # grouped K/V heads expanded to one per query head
        ov = w["W_V"] @ w["W_O"]  # [layer, head, d_model, d_model]
        qk = w["W_Q"] @ w["W_K"].transpose(-1, -2)  # [layer, head, d_model, d_model]
        n_layers, n_heads = ov.shape[:2]
        out = torch.zeros(n_layers, n_heads, n_layers, n_heads)
        ov_norm = ov.flatten(-2).norm(dim=-1)  # [layer, head]
        qk_norm = qk.flatten(-2).norm(dim=-1)
        for la in range(n_layers - 1):
            prod = torch.einsum("aij,lbkj->albik", ov[la], qk[la + 1:])  # [head_a, later layers, head_b, i, k]
            norms = prod.flatten(-2).norm(dim=-1)  # [head_a, later, head_b]
            den = ov_norm[la][:, None, None] * qk_norm[la + 1:][None]  # [head_a, later, head_b]
            out[la, :, la + 1:] = torch.where(den > 0, norms / den.clamp_min(1e-30), torch.zeros_like(norms))
    return out  # 0 where either head's OV or QK weights are all zero (no composition, not NaN)
