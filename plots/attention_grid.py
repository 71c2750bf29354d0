"""Attention figures for any prompt length: one head with thinned token ticks (every token in the hover), a
layer's heads and every layer x head of the prompt as clickable small multiples (see plots/select.py)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.attention import downsample
from plots.common import base_layout
from plots.select import add_subplot_pickers
from plots.tokens import short_label, thinned_ticks


def head_pattern_figure(pattern: np.ndarray, tokens: Sequence[str], title: str) -> go.Figure:
    """A head's pattern [query, key]: at most 40 token ticks per axis, query and key tokens always in the hover."""
    pattern = np.asarray(pattern, dtype=np.float32)
    n = len(tokens)
    labels = [short_label(i, t, 14) for i, t in enumerate(tokens)]
    fig = go.Figure(go.Heatmap(
        z=pattern, x=list(range(n)), y=list(range(n)), colorscale="Blues", zmin=0, zmax=1,
        customdata=np.array(labels, dtype=object)[None, :].repeat(n, axis=0) if n <= 400 else None,
        hovertemplate=("query %{y} · key %{customdata}<br>weight %{z:.3f}<extra></extra>" if n <= 400
                       else "query %{y} · key %{x}<br>weight %{z:.3f}<extra></extra>"),
        colorbar=dict(title=dict(text="attention", side="right")),
    ))
    ticks = thinned_ticks(labels)
    base_layout(fig, title, xaxis=dict(title="key (attended to)", tickangle=-60, **ticks),
                yaxis=dict(title="query (attending)", autorange="reversed", **ticks),
                height=int(min(900, max(480, 16 * min(n, 40) + 260))))
    return fig


def _pooled_grid(patterns: Sequence[np.ndarray], titles: list[str], cols: int, max_size: int, row_px: int,
                 title: str) -> go.Figure:
    rows = int(np.ceil(len(patterns) / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.012,
                        vertical_spacing=min(0.08, 0.3 / max(1, rows)))
    size = 1
    for i, pat in enumerate(patterns):
        pooled, block = downsample(pat, max_size)
        size = pooled.shape[0]
        fig.add_trace(go.Heatmap(z=pooled, colorscale="Blues", zmin=0, zmax=1, showscale=False, hoverinfo="skip"),
                      row=i // cols + 1, col=i % cols + 1)
    add_subplot_pickers(fig, titles, cols, size)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, range=[-0.5, size - 0.5])
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, range=[size - 0.5, -0.5])
    fig.update_annotations(font=dict(size=11))
    base_layout(fig, title, height=row_px * rows + 90)
    return fig.update_layout(margin=dict(l=20, r=20, t=70, b=20))


def layer_heads_figure(patterns: np.ndarray, layer: int, max_size: int = 64) -> go.Figure:
    """All heads of one layer ([head, q, k]) side by side; click one to open it."""
    n_heads = patterns.shape[0]
    cols = min(n_heads, 6)
    return _pooled_grid([patterns[h] for h in range(n_heads)], [f"{layer}.{h}" for h in range(n_heads)], cols,
                        max_size, 190, f"All heads of layer {layer} (click one to open it above)")


def all_heads_figure(patterns: np.ndarray, max_size: int = 24) -> go.Figure:
    """Every layer x head ([layer, head, q, k]) of one prompt, one row per layer; click one to open it."""
    n_layers, n_heads = patterns.shape[:2]
    per_row_px = max(60, min(130, 1100 // max(1, n_heads)))
    pats = [patterns[layer, h].astype(np.float32) for layer in range(n_layers) for h in range(n_heads)]
    titles = [f"{layer}.{h}" for layer in range(n_layers) for h in range(n_heads)]
    return _pooled_grid(pats, titles, n_heads, max_size, per_row_px + 12,
                        f"Every head on this prompt: {n_layers} layers (rows) x {n_heads} heads (click one to open it)")
