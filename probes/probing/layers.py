"""Residual-stream features at every layer for probe datasets: games of tokens (Othello) and labelled texts.

Probe layer ``L0`` is the embedding output (``blocks.0.hook_resid_pre``) and ``L{l}`` for l >= 1 is block
l-1's output, so a model with n blocks gives n + 1 probe layers, all captured together in one pass per batch.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from interp import validate
from interp.errors import InvalidInput
from interp.model import Model
from interp.sites import Site
from interp.streaming import Positions, stream_activations
from interp.tokens import TokenBatch
from interp.types import Progress
from probes.probing.linear import Split, r2_score, sweep_layers


def probe_site(layer: int) -> Site:
    """Probe layer 0 is the embedding output (resid_pre of block 0); layer l >= 1 is block l-1's output."""
    return Site("resid_pre", 0) if layer == 0 else Site("resid_post", layer - 1)


def probe_sites(n_layers: int) -> list[Site]:
    """The n_layers + 1 probe sites of a model with ``n_layers`` blocks, in order L0..L{n_layers}."""
    return [probe_site(i) for i in range(n_layers + 1)]


def capture_layers(handle: Model, tokens: torch.Tensor, rows: tuple[np.ndarray, np.ndarray],
                   out_dir: str | Path, progress: Progress | None = None) -> dict[str, np.ndarray]:
    """All layers' residual streams of equal-length token rows [n, pos], streamed through ``out_dir`` in one pass;
    returns {"L0".. : [len(rows), d_model]} at the (row, position) pairs ``rows`` = (row_idx, pos_idx)."""
    sites = probe_sites(handle.info.n_layers)
    store = stream_activations(handle, tokens, sites, out_dir, positions="all", batch_size=100, progress=progress)
    g, t = rows
    return {f"L{i}": np.asarray(store[s][g, t]) for i, s in enumerate(sites)}  # each [rows, d_model]


def read_spans(lengths: np.ndarray, position: Positions, texts: Sequence[str] | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per-row token span [start, end) read by a position rule, checked against each row's real length.

    ``position``: "last" (last real token), an index (negative counts from each row's end) or (start, end)
    (mean over the span). Indices count tokens as the model sees them, BOS (if any) at 0. [n] + [n].
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if position == "last":
        start = lengths - 1
        end = lengths
    elif isinstance(position, (int, np.integer)) and not isinstance(position, bool):
        start = lengths + position if position < 0 else np.full_like(lengths, position)
        end = start + 1
    elif isinstance(position, (tuple, list)) and len(position) == 2:
        a, b = (int(v) for v in position)
        if not 0 <= a < b:
            raise InvalidInput(f"Span {a}:{b} is empty or negative; use start:end with 0 <= start < end.")
        start, end = np.full_like(lengths, a), np.full_like(lengths, b)
    else:
        raise InvalidInput(f"Unknown position rule {position!r}; use 'last', a token index or (start, end).")
    bad = np.nonzero((start < 0) | (end > lengths))[0]
    if len(bad):
        i = int(bad[0])
        what = f"text {i + 1}" + (f" ({texts[i][:40]!r})" if texts is not None else "")
        raise InvalidInput(f"Position {position!r} is outside {what}: it has {int(lengths[i])} tokens "
                           f"(0..{int(lengths[i]) - 1}, BOS included); {len(bad)} row(s) are too short.",
                           "Use 'last', a smaller index, or a negative index counted from the end.")
    return start, end


@dataclass
class TextFeatures:
    """Every probe layer's activations at each text's read position, and the token read there."""

    features: dict[str, np.ndarray]  # "L0".. -> [n, d_model] float32
    token_ids: np.ndarray  # [n] token at the (last) read position: the control task's per-row input
    start: np.ndarray  # [n] read span [start, end) per row
    end: np.ndarray  # [n]


def capture_texts(handle: Model, texts: Sequence[str], position: Positions = "last", *,
                  batch_size: int = 32, progress: Progress | None = None) -> TextFeatures:
    """Capture every probe layer at ``position`` of each text (BOS prepended, batches right-padded, masked)."""
    batch_size = validate.count(batch_size, "batch_size", low=1, high=65_536)
    if isinstance(texts, str) or not texts:
        raise InvalidInput("No texts to probe." if not texts else "Give a list of texts, not one string.")
    try:
        full = handle.tokenize(list(texts))
    except InvalidInput as e:
        raise _name_long_text(handle, texts, e) from None
    lengths = full.lengths.cpu().numpy()
    start, end = read_spans(lengths, position, texts)
    sites = probe_sites(handle.info.n_layers)
    n = len(texts)
    out = {f"L{i}": np.empty((n, handle.info.d_model), np.float32) for i in range(len(sites))}
    for lo in range(0, n, batch_size):
        hi = min(n, lo + batch_size)
        batch = TokenBatch(full.tokens[lo:hi], full.lengths[lo:hi])
        width = batch.tokens.shape[1]
        cap = handle.run(batch, read=sites, stop_after=sites[-1])
        pos = torch.arange(width)
        s, e = torch.from_numpy(start[lo:hi]), torch.from_numpy(end[lo:hi])
        mask = ((pos[None] >= s[:, None]) & (pos[None] < e[:, None])).float()  # [rows, pos]
        mask = mask / mask.sum(1, keepdim=True)
        for i, site in enumerate(sites):
            act = cap[site].float().cpu()  # [rows, pos, d_model]
            out[f"L{i}"][lo:hi] = torch.einsum("rp,rpd->rd", mask, act).numpy()
        if progress is not None:
            progress(hi / n, f"captured {hi}/{n} texts")
    token_ids = full.tokens.cpu().numpy()[np.arange(n), end - 1]
    return TextFeatures(out, token_ids, start, end)


def _name_long_text(handle: Model, texts: Sequence[str], err: InvalidInput) -> InvalidInput:
    """Turn tokenize's 'prompt too long' into one that names the first offending text."""
    bos = 1 if handle.bos_token_id is not None else 0
    for i, text in enumerate(texts):
        if isinstance(text, str) and len(handle.tokenizer(text, add_special_tokens=False)["input_ids"]) + bos \
                > handle.info.n_ctx:
            return InvalidInput(f"Text {i + 1} ({text[:40]!r}...) is longer than the {handle.info.n_ctx} tokens "
                                f"{handle.info.name} reads.", "Shorten it or drop the row.")
    return err


def ridge_r2_by_layer(handle: Model, texts: Sequence[str], y: np.ndarray, split: Split, out_dir: str | Path
                      ) -> tuple[list[str], list[float], list[list[float]]]:
    """A ridge probe per probe layer from each text's last token to targets ``y`` [n, k] (streamed through
    ``out_dir``): ``(layer names, mean test R^2 per layer, per-target test R^2 per layer)``."""
    sites = probe_sites(handle.info.n_layers)
    store = stream_activations(handle, list(texts), sites, out_dir, positions="last", batch_size=64)
    feats = {f"L{ly}": np.asarray(store[s]) for ly, s in enumerate(sites)}
    sweep = sweep_layers(feats, y, split, kind="ridge")
    per_target = []
    for name, probe in zip(sweep.layers, sweep.probes):
        pred = probe.predict(feats[name][split.test])
        per_target.append([float(r2_score(y[split.test, j], pred[:, j])) for j in range(y.shape[1])])
    return sweep.layers, sweep.series("r2"), per_target
