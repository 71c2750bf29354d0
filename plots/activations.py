"""Figures for the hook browser (pure): a site's activation as a position x feature heatmap."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from interp.token_display import visible
from plots.common import base_layout

#: Columns drawn at most (the rest are in the CSV).
MAX_DRAWN_COLUMNS = 512


def activation_heatmap(matrix: np.ndarray, row_tokens: Sequence[str], title: str, *, col_title: str = "feature",
                       col_tokens: Sequence[str] | None = None, probability: bool = False) -> go.Figure:
    """``matrix [rows, cols]`` with tokens on the rows: diverging around 0, or 0..1 for attention probabilities
    (their natural range); at most MAX_DRAWN_COLUMNS columns drawn."""
    m = np.asarray(matrix, float)[:, :MAX_DRAWN_COLUMNS]
    rows = [f"{i}: {visible(t)}"[:18] for i, t in enumerate(row_tokens)][: m.shape[0]]
    if probability:
        zmin, zmax, scale = 0.0, 1.0, "Blues"
    else:
        lim = float(np.nanmax(np.abs(m))) if m.size and np.isfinite(m).any() and np.nanmax(np.abs(m)) > 0 else 1.0
        zmin, zmax, scale = -lim, lim, "RdBu"
    cols = list(range(m.shape[1]))
    fig = go.Figure(go.Heatmap(z=m, x=cols, y=list(range(m.shape[0])), zmin=zmin, zmax=zmax, colorscale=scale,
                               hovertemplate="row %{y}<br>" + col_title + " %{x}<br>value %{z:.4g}<extra></extra>",
                               colorbar=dict(title=dict(text="value", side="right"))))
    ticks = dict(tickmode="array", tickvals=list(range(len(rows))), ticktext=rows) if len(rows) <= 60 else {}
    xticks = {}
    if col_tokens is not None and len(col_tokens) <= 60:
        xticks = dict(tickmode="array", tickvals=cols, ticktext=[f"{i}: {visible(t)}"[:18]
                                                               for i, t in enumerate(col_tokens)], tickangle=-60)
    return base_layout(fig, title, xaxis=dict(title=col_title, **xticks),
                       yaxis=dict(title="position", autorange="reversed", **ticks),
                       height=int(min(900, max(380, 18 * len(rows) + 220))))
