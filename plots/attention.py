"""Attention-pattern figures: one head with tokens on both axes, or every head of a layer as small multiples."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.attention import downsample
from plots.common import attention_heatmap, base_layout

#: Above this many tokens a pattern is drawn as a plain heatmap without per-cell labels.
LABELLED_MAX_TOKENS = 120


def pattern_figure(pattern: np.ndarray, tokens: Sequence[str], title: str) -> go.Figure:
    """A head's pattern: labelled (hover query/key/weight) for short prompts, a plain heatmap for long ones."""
    if len(tokens) <= LABELLED_MAX_TOKENS:
        fig = attention_heatmap(pattern, tokens, title)
        return fig.update_layout(height=int(min(900, max(480, 16 * len(tokens) + 220))))
    fig = go.Figure(go.Heatmap(z=np.asarray(pattern, dtype=np.float32), colorscale="Blues", zmin=0, zmax=1,
                               hovertemplate="query %{y}<br>key %{x}<br>weight %{z:.3f}<extra></extra>",
                               colorbar=dict(title=dict(text="attention", side="right"))))
    return base_layout(fig, title, xaxis=dict(title="key position (attended to)"),
                   yaxis=dict(title="query position (attending)", autorange="reversed"), height=650)


def small_multiples_figure(patterns: np.ndarray, layer: int, max_size: int = 64) -> go.Figure:
    """All heads of one layer ([head, q, k]) side by side, each pooled to at most ``max_size`` cells a side."""
    n_heads = patterns.shape[0]
    cols = min(n_heads, 6)
    rows = int(np.ceil(n_heads / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"{layer}.{h}" for h in range(n_heads)],
                        horizontal_spacing=0.02, vertical_spacing=0.08)
    for h in range(n_heads):
        pooled, block = downsample(patterns[h], max_size)
        fig.add_trace(go.Heatmap(z=pooled, colorscale="Blues", zmin=0, zmax=1, showscale=False,
                                 hovertemplate=f"head {layer}.{h}<br>query ~%{{y}}<br>key ~%{{x}}"
                                               f"<br>weight %{{z:.2f}}<extra></extra>",
                                 x0=0, dx=block, y0=0, dy=block),
                      row=h // cols + 1, col=h % cols + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    return base_layout(fig, f"All heads of layer {layer} (pick one above to enlarge)", height=190 * rows + 70)
