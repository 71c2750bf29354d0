"""Figures for one head's QK and OV circuits (pure: arrays in, Figure out); the numbers are probes.heads.circuits'."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from interp.token_display import visible
from plots.common import base_layout


def eigenvalue_figure(eigenvalues: np.ndarray, title: str) -> go.Figure:
    """A circuit's eigenvalues on the complex plane, with the positivity axis (real > 0: maps tokens to
    themselves) marked; marker size grows with |lambda|."""
    ev = np.asarray(eigenvalues)
    mag = np.abs(ev)
    size = 6 + 14 * mag / max(float(mag.max()), 1e-12)
    fig = go.Figure(go.Scatter(x=ev.real, y=ev.imag, mode="markers",
                               marker=dict(size=size, color=np.where(ev.real >= 0, "#2166ac", "#b2182b"),
                                           opacity=0.8),
                               hovertemplate="λ = %{x:.3g} %{y:+.3g}i<extra></extra>"))
    lim = float(mag.max()) * 1.1 if mag.size and mag.max() > 0 else 1.0
    fig.add_vline(x=0, line_color="#999", line_dash="dot")
    fig.add_hline(y=0, line_color="#999", line_dash="dot")
    return base_layout(fig, title, xaxis=dict(title="real part (> 0: token to itself)", range=[-lim, lim]),
                       yaxis=dict(title="imaginary part", range=[-lim, lim], scaleanchor="x"), height=420,
                       showlegend=False)


def circuit_heatmap(block: np.ndarray, row_tokens: Sequence[str], col_tokens: Sequence[str], title: str,
                    row_title: str, col_title: str, colorbar: str) -> go.Figure:
    """A block of a vocab x vocab circuit between chosen tokens, symmetric colour scale around 0."""
    v = np.asarray(block, float)
    lim = float(np.nanmax(np.abs(v))) if np.isfinite(v).any() and np.nanmax(np.abs(v)) > 0 else 1.0
    rows = [visible(t) for t in row_tokens]
    cols = [visible(t) for t in col_tokens]
    custom = np.array([[f"{r} → {c}" for c in cols] for r in rows], dtype=object)
    fig = go.Figure(go.Heatmap(z=v, x=list(range(len(cols))), y=list(range(len(rows))), zmin=-lim, zmax=lim,
                               colorscale="RdBu", customdata=custom,
                               hovertemplate="%{customdata}<br>" + colorbar + ": %{z:.3g}<extra></extra>",
                               colorbar=dict(title=dict(text=colorbar, side="right"))))
    ticks = dict(tickmode="array", tickvals=list(range(len(cols))), ticktext=cols)
    yticks = dict(tickmode="array", tickvals=list(range(len(rows))), ticktext=rows)
    n = max(len(rows), len(cols))
    return base_layout(fig, title, xaxis=dict(title=col_title, tickangle=-60, **ticks),
                       yaxis=dict(title=row_title, autorange="reversed", **yticks),
                       height=int(min(900, max(420, 22 * n + 220))))


def diag_rank_figure(ov_ranks: np.ndarray, qk_ranks: np.ndarray, d_vocab: int, title: str) -> go.Figure:
    """For every scanned token, where it ranks in its own row of each circuit (1 = the token itself is the top
    entry), as cumulative shares over a log rank axis."""
    fig = go.Figure()
    for name, r in (("OV: output = source", ov_ranks), ("QK: key = query", qk_ranks)):
        r = np.sort(np.asarray(r))
        share = np.arange(1, len(r) + 1) / max(1, len(r))
        fig.add_trace(go.Scatter(x=r, y=share, mode="lines", name=name,
                                 hovertemplate="rank ≤ %{x}: %{y:.1%} of tokens<extra>" + name + "</extra>"))
    chance = np.geomspace(1, max(2, d_vocab), 50)
    fig.add_trace(go.Scatter(x=chance, y=chance / d_vocab, mode="lines", name="chance",
                             line=dict(dash="dot", color="#999"), hoverinfo="skip"))
    return base_layout(fig, title, xaxis=dict(title="rank of the token itself in its row (1 = top)", type="log"),
                       yaxis=dict(title="share of tokens", range=[0, 1]), legend=dict(orientation="h", y=-0.25))


def pairs_table_rows(pairs, tokens: Sequence[str]) -> list[dict]:
    """Readable rows of a top-pairs frame (row id, column id, value) with both tokens decoded (``tokens[i]``)."""
    return [{"row token": visible(tokens[int(r)]), "column token": visible(tokens[int(c)]), "row id": int(r),
             "column id": int(c), "value": float(v)} for r, c, v in pairs[["row", "column", "value"]].itertuples(
                 index=False)]
