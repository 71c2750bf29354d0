"""Figures of toy models of superposition, drawn as Elhage et al. 2022 draw them.

- :func:`columns_2d`: each feature's column W_i of a 2-D model as a line from the origin (the intro figure).
- :func:`norms_and_gram`: ||W_i|| bars coloured by interference beside the W^T W heatmap (blue-white-red).
- :func:`phase_diagram`: the n=2, m=1 phase diagram, trained models beside the analytic regions.
- :func:`dimensionality_plot`: dimensions per feature m/||W||_F^2 and every feature's D_i against 1/(1-S),
  with the published sticky fractions marked.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from plots.common import base_layout
from probes.features.superposition import PHASES, PUBLISHED_FRACTIONS, PhaseGrid, feature_norms, gram, interference

PHASE_COLORS = {"not represented": "#b8c2cc", "own dimension": "#2b6cb0", "superposition": "#d9534f"}


def _viridis(values: np.ndarray) -> list[str]:
    """Hex colours along Viridis for values in [0, 1] (importance: bright = important, as in the paper)."""
    return sample_colorscale("Viridis", [float(np.clip(v, 0, 1)) for v in values])


def columns_2d(Ws: Sequence[np.ndarray], titles: Sequence[str], importance: Sequence[np.ndarray] | None = None,
               title: str = "Columns of W in 2-D", limit: float = 1.5) -> go.Figure:
    """One panel per 2-D model ``W [2, n]``: feature i drawn from the origin to W_i, coloured by importance and
    labelled ``f<i>`` at its tip (features dropped by the model sit at the origin)."""
    k = len(Ws)
    fig = make_subplots(rows=1, cols=k, subplot_titles=list(titles), horizontal_spacing=0.03)
    for c, W in enumerate(Ws, start=1):
        W = np.asarray(W, dtype=float)
        n = W.shape[1]
        imp = np.asarray(importance[c - 1], dtype=float) if importance is not None else np.ones(n)
        colors = _viridis(imp / max(float(imp.max()), 1e-9))
        for i in range(n):
            tip = np.array([W[0, i], W[1, i]])
            away = tip / max(float(np.linalg.norm(tip)), 1e-9)  # the label sits just beyond the arrow's tip
            fig.add_trace(go.Scatter(
                x=[0, W[0, i]], y=[0, W[1, i]], mode="lines+markers+text", line=dict(color=colors[i], width=3),
                marker=dict(size=[0, 9], color=colors[i]), showlegend=False, text=["", f"f{i}"],
                textposition=("top " if away[1] >= 0 else "bottom ") + ("right" if away[0] >= 0 else "left"),
                textfont=dict(size=12, color="#333"),
                hovertemplate=f"feature {i}<br>importance {imp[i]:.3g}<br>W_i = (%{{x:.2f}}, %{{y:.2f}})"
                              "<extra></extra>"), row=1, col=c)
        axis = dict(range=[-limit, limit], zeroline=True, showgrid=False, showticklabels=False)
        fig.update_xaxes(**axis, row=1, col=c)
        fig.update_yaxes(**axis, scaleanchor=f"x{'' if c == 1 else c}", row=1, col=c)
    return base_layout(fig, title, height=320, width=max(420, 260 * k))


def norms_and_gram(Ws: Sequence[np.ndarray], titles: Sequence[str], title: str = "||W_i|| and W^T W") -> go.Figure:
    """Per model (a row): bars of ||W_i|| coloured by interference sum_{j!=i}(W_i_hat.W_j)^2 (dark: orthogonal
    to the rest, bright: shares its dimension), and the W^T W heatmap (red +, blue -)."""
    k = len(Ws)
    fig = make_subplots(rows=k, cols=2, column_widths=[0.55, 0.45], horizontal_spacing=0.08, vertical_spacing=0.04,
                        row_titles=list(titles))
    for r, W in enumerate(Ws, start=1):
        Wt = torch.as_tensor(np.asarray(W, dtype=np.float32))
        norms, inter, G = feature_norms(Wt).numpy(), interference(Wt).numpy(), gram(Wt).numpy()
        n = len(norms)
        fig.add_trace(go.Bar(x=list(range(n)), y=norms, marker=dict(color=inter, cmin=0, cmax=1,
                                                                     colorscale="Viridis"),
                             customdata=inter, showlegend=False,
                             hovertemplate="feature %{x}<br>||W_i|| %{y:.3f}<br>interference %{customdata:.3f}"
                                           "<extra></extra>"), row=r, col=1)
        fig.add_trace(go.Heatmap(z=G, zmin=-1, zmax=1, zmid=0, colorscale="RdBu", reversescale=True,
                                 showscale=r == 1, hovertemplate="in %{x}<br>out %{y}<br>%{z:.3f}<extra></extra>",
                                 colorbar=dict(title=dict(text="W^T W", side="right"), len=0.4, y=1, yanchor="top",
                                               x=1.12)),
                      row=r, col=2)
        fig.update_yaxes(autorange="reversed", showticklabels=False, row=r, col=2)
        fig.update_xaxes(showticklabels=False, row=r, col=2)
        fig.update_yaxes(range=[0, max(1.2, float(norms.max()) * 1.05)], row=r, col=1)
    fig.update_xaxes(title_text="feature (most important first)", row=k, col=1)
    return base_layout(fig, title, height=max(300, 170 * k), width=760)


def _boundaries(importances: Sequence[float]) -> list[tuple[list[float], list[float], str]]:
    """The analytic region boundaries of the n=2, m=1 model as (densities, importances, name) polylines."""
    lo, hi = min(importances), max(importances)
    r_lo = np.geomspace(lo, 1.0, 60)
    r_hi = np.geomspace(1.0, hi, 60)
    return [(list(4 * r_lo / (2 + 5 * r_lo)), list(r_lo), "superposition | not represented"),
            (list(4 / (5 + 2 * r_hi)), list(r_hi), "superposition | own dimension"),
            ([4 / 7, 1.0], [1.0, 1.0], "own dimension | not represented")]


def phase_diagram(grid: PhaseGrid, title: str = "n=2, m=1: what happens to the extra feature") -> go.Figure:
    """Trained phases (left) and the analytic lowest-loss configuration (right) over feature density 1-S (log,
    dense at left) and the extra feature's relative importance (log), with the analytic boundaries drawn on both."""
    code = {p: i for i, p in enumerate(PHASES)}
    scale = []
    for i, p in enumerate(PHASES):
        lo, hi = i / len(PHASES), (i + 1) / len(PHASES)
        scale += [[lo, PHASE_COLORS[p]], [hi, PHASE_COLORS[p]]]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                        subplot_titles=[f"trained (agrees with theory in {grid.agreement:.0%} of cells)",
                                        "theory: lowest-loss of W=[1,0], [0,1], [1,-1]"])
    # cells are drawn in log10 coordinates (a heatmap's bricks are even there) with ticks labelled in plain numbers
    lx, ly = np.log10(grid.densities), np.log10(grid.importances)
    inside = lambda v, vals: min(vals) * (1 - 1e-6) <= v <= max(vals) * (1 + 1e-6)  # noqa: E731
    xt = [v for v in (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001) if inside(v, grid.densities)]
    yt = [v for v in (0.1, 0.3, 1.0, 3.0, 10.0) if inside(v, grid.importances)]
    for c, labels in enumerate((grid.labels, grid.theory), start=1):
        z = np.array([[code[v] for v in row] for row in labels], dtype=float)
        text = np.array(labels, dtype=object)
        hover = np.array([[f"density {p:.3g}<br>relative importance {r:.3g}<br>{v}"
                           for p, v in zip(grid.densities, row)] for r, row in zip(grid.importances, labels)],
                         dtype=object)
        fig.add_trace(go.Heatmap(z=z, x=lx, y=ly, zmin=-0.5, zmax=len(PHASES) - 0.5, colorscale=scale,
                                 showscale=False, customdata=hover, text=text,
                                 hovertemplate="%{customdata}<extra></extra>"), row=1, col=c)
        for xs, ys, name in _boundaries(grid.importances):
            fig.add_trace(go.Scatter(x=np.log10(xs), y=np.log10(ys), mode="lines", name=name, showlegend=False,
                                     line=dict(color="black", width=1.5, dash="dot"), hoverinfo="name"), row=1, col=c)
        fig.update_xaxes(autorange="reversed", title_text="feature density 1-S", tickvals=list(np.log10(xt)),
                         ticktext=[f"{v:g}" for v in xt], row=1, col=c)
        fig.update_yaxes(title_text="relative importance of feature 2" if c == 1 else None,
                         tickvals=list(np.log10(yt)), ticktext=[f"{v:g}" for v in yt], row=1, col=c)
    for p in PHASES:  # a legend of the three phases
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", marker=dict(size=12, color=PHASE_COLORS[p],
                                                                                  symbol="square"), name=p))
    return base_layout(fig, title, height=460, width=980, legend=dict(orientation="h", y=-0.18))


def dimensionality_plot(densities: Sequence[float], dims_per_feature: Sequence[float],
                        feature_dims: Sequence[np.ndarray], title: str = "Dimensionality vs sparsity",
                        fractions: Sequence[tuple[str, float]] = PUBLISHED_FRACTIONS) -> go.Figure:
    """x = 1/(1-S) (log). Line: m/||W||_F^2 per model; dots: every feature's D_i (dropped features sit at 0);
    dotted lines at the published sticky fractions."""
    x = 1.0 / np.asarray(densities, dtype=float)
    fig = go.Figure()
    for name, v in fractions:
        fig.add_hline(y=v, line=dict(color="#7b61a8", width=1, dash="dot"), opacity=0.6,
                      annotation=dict(text=name, xanchor="left", font=dict(size=11)), annotation_position="right")
    rng = np.random.default_rng(0)  # fixed horizontal jitter so the dots of one model do not hide each other
    xs, ys = [], []
    for xi, d in zip(x, feature_dims):
        d = np.asarray(d, dtype=float)
        xs.append(xi * np.exp(rng.uniform(-0.03, 0.03, d.size)))
        ys.append(d)
    if xs:
        fig.add_trace(go.Scatter(x=np.concatenate(xs), y=np.concatenate(ys), mode="markers", name="feature D_i",
                                 marker=dict(size=3, color="black", opacity=0.35),
                                 hovertemplate="1/(1-S) %{x:.3g}<br>D_i %{y:.3f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=x, y=list(dims_per_feature), mode="lines+markers", name="m / ||W||_F^2",
                             line=dict(color="#2b6cb0", width=2)))
    return base_layout(fig, title, height=460, width=820, xaxis=dict(type="log", title="1/(1-S)"),
                       yaxis=dict(title="dimensions per feature", range=[-0.03, 1.1]),
                       legend=dict(orientation="h", y=-0.2))
