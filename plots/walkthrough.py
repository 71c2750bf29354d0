"""Figures of the learner's pages: a vector as a strip of coloured cells, a small matrix, values per token as bars,
and a next-token probability table before and after temperature and truncation (data in, Figure out)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from plots.common import base_layout

#: Vectors longer than this are drawn in rows of this many cells (d_mlp of a real model is thousands wide).
STRIP_WIDTH = 256


def _symmetric(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.abs(finite).max()) if finite.size and np.abs(finite).max() > 0 else 1.0


def vector_strip(values: np.ndarray, title: str) -> go.Figure:
    """A vector ``[n]`` as one row of cells (wrapped every STRIP_WIDTH), blue negative, red positive, white 0 on a
    scale symmetric around 0; hover gives the index and value."""
    v = np.asarray(values, dtype=float).reshape(-1)
    n = v.size
    width = min(n, STRIP_WIDTH)
    rows = -(-n // width)
    grid = np.full(rows * width, np.nan)
    grid[:n] = v
    idx = np.arange(rows * width).reshape(rows, width)
    bound = _symmetric(v)
    fig = go.Figure(go.Heatmap(
        z=grid.reshape(rows, width), customdata=idx, colorscale="RdBu", reversescale=True, zmin=-bound, zmax=bound,
        hovertemplate="index %{customdata}<br>value %{z:.4g}<extra></extra>", xgap=0, ygap=1,
        colorbar=dict(thickness=10, len=1.0),
    ))
    base_layout(fig, title, height=70 + 26 * rows,
                xaxis=dict(visible=False), yaxis=dict(visible=False, autorange="reversed"))
    fig.update_layout(margin=dict(l=10, r=10, t=32, b=8), title=dict(font=dict(size=12)))
    return fig


def matrix_heatmap(values: np.ndarray, title: str, row_labels: Sequence[str] = ()) -> go.Figure:
    """A small matrix ``[rows, cols]`` (e.g. K: one row per key token), symmetric colour scale around 0."""
    m = np.asarray(values, dtype=float)
    rows = list(row_labels) if len(row_labels) == m.shape[0] else [str(i) for i in range(m.shape[0])]
    bound = _symmetric(m)
    fig = go.Figure(go.Heatmap(
        z=m, y=rows, colorscale="RdBu", reversescale=True, zmin=-bound, zmax=bound,
        hovertemplate="%{y}<br>dim %{x}<br>value %{z:.4g}<extra></extra>", colorbar=dict(thickness=10),
    ))
    base_layout(fig, title, height=min(600, 80 + 18 * len(rows)),
                xaxis=dict(title=None), yaxis=dict(autorange="reversed", type="category"))
    fig.update_layout(margin=dict(l=10, r=10, t=32, b=8), title=dict(font=dict(size=12)))
    return fig


def token_bars(values: np.ndarray, labels: Sequence[str], title: str, *, y_title: str = "") -> go.Figure:
    """One bar per token (scores over keys, attention weights, probabilities); a −∞ (masked) value is drawn as an
    empty slot labelled "masked"."""
    v = np.asarray(values, dtype=float).reshape(-1)
    masked = np.isneginf(v)
    shown = np.where(masked, 0.0, v)
    text = ["masked (−∞)" if m else f"{x:.3g}" for m, x in zip(masked, v)]
    fig = go.Figure(go.Bar(x=list(range(v.size)), y=shown, text=text, textposition="outside", cliponaxis=False,
                           customdata=list(labels), marker_color=np.where(masked, "#cccccc", "#1f77b4").tolist(),
                           hovertemplate="%{customdata}<br>%{text}<extra></extra>"))
    base_layout(fig, title, height=260,
                xaxis=dict(tickmode="array", tickvals=list(range(v.size)), ticktext=list(labels), tickangle=-45),
                yaxis=dict(title=y_title))
    fig.update_layout(margin=dict(l=50, r=10, t=36, b=80), title=dict(font=dict(size=12)))
    return fig


def probability_table_figure(tokens: Sequence[str], raw: Sequence[float], tempered: Sequence[float],
                             final: Sequence[float], title: str) -> go.Figure:
    """The most likely next tokens' probabilities at each stage: the model's softmax, after temperature, and
    after top-k / top-p (what is sampled from)."""
    x = list(range(len(tokens)))
    fig = go.Figure([
        go.Bar(x=x, y=list(raw), name="model (T = 1)", marker_color="#9ecae1", customdata=list(tokens),
               hovertemplate="%{customdata}<br>model: %{y:.4f}<extra></extra>"),
        go.Bar(x=x, y=list(tempered), name="after temperature", marker_color="#3182bd", customdata=list(tokens),
               hovertemplate="%{customdata}<br>after temperature: %{y:.4f}<extra></extra>"),
        go.Bar(x=x, y=list(final), name="after top-k / top-p (sampled from)", marker_color="#e6550d",
               customdata=list(tokens), hovertemplate="%{customdata}<br>sampled from: %{y:.4f}<extra></extra>"),
    ])
    base_layout(fig, title, barmode="group", height=320,
                xaxis=dict(tickmode="array", tickvals=x, ticktext=list(tokens), tickangle=-45),
                yaxis=dict(title="probability", range=[0, 1.05]), legend=dict(orientation="h", y=1.12))
    fig.update_layout(margin=dict(l=50, r=10, t=40, b=80))
    return fig
