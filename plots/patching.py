"""Figures for activation/attribution patching and DLA (pure: plain arrays and lists in, plotly Figure out)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from interp.token_display import visible
from plots.common import base_layout, layer_head_heatmap

EFFECT = "normalised effect (0 = corrupted, 1 = clean)"
#: Normalised effects have a natural range: colour is fixed at -1..1 and cells beyond it are marked.
NORMALISED_LIM = 1.0
OUTLIER_NAME = "beyond the colour scale"


def colour_limit(values: np.ndarray, normalised: bool, floor: float = 0.0) -> float:
    """The symmetric colour limit: 1 for normalised effects (their natural range); else the largest magnitude, but
    never below ``floor`` (so differences smaller than the noise floor stay pale instead of filling the scale)."""
    if normalised:
        return NORMALISED_LIM
    v = np.asarray(values, dtype=float)
    m = float(np.nanmax(np.abs(v))) if np.isfinite(v).any() else 1.0
    return max(m, floor, 1e-6)


def mark_outliers(fig: go.Figure, values: np.ndarray, lim: float, x: Sequence | None = None,
                  labels: np.ndarray | None = None) -> go.Figure:
    """Mark cells of ``values`` [rows, cols] whose magnitude passes ``lim`` with a ✕ (their colour is clipped);
    ``labels`` [rows, cols] become the markers' customdata (e.g. ``"L.H"`` so a click still selects the head)."""
    v = np.asarray(values, dtype=float)
    rows, cols = np.nonzero(np.abs(np.nan_to_num(v)) > lim + 1e-9)
    if not len(rows):
        return fig
    xs = [x[c] for c in cols] if x is not None else cols.tolist()
    fig.add_trace(go.Scatter(
        x=xs, y=rows.tolist(), mode="markers", name=OUTLIER_NAME, showlegend=False,
        marker=dict(symbol="x-thin", size=14, line=dict(width=2, color="#111")),
        customdata=[labels[r, c] for r, c in zip(rows, cols)] if labels is not None else None,
        text=[f"{v[r, c]:+.3f}" for r, c in zip(rows, cols)],
        hovertemplate="%{text}: beyond the colour scale (±" + f"{lim:g}" + ")<extra></extra>"))
    return fig


def head_effect_heatmap(values: np.ndarray, title: str, colorbar: str = "effect", *, normalised: bool = True,
                        floor: float = 0.0) -> go.Figure:
    """Effects [layer, head] on a diverging scale centred at 0 (click a cell to pick the head): normalised ones on
    the fixed -1..1 with outliers marked, raw ones up to their largest magnitude but at least ``floor``."""
    values = np.asarray(values, dtype=float)
    m = colour_limit(values, normalised, floor)
    fig = layer_head_heatmap(values, title, colorbar, zmin=-m, zmax=m, colorscale="RdBu")
    n_layers, n_heads = values.shape
    labels = np.array([[f"{a}.{b}" for b in range(n_heads)] for a in range(n_layers)])
    return mark_outliers(fig, values, m, labels=labels)


def layer_pos_heatmap(values: np.ndarray, tokens: Sequence[str], title: str, colorbar: str = "effect", *,
                      normalised: bool = True, floor: float = 0.0) -> go.Figure:
    """Effects [layer, pos] with the prompt's tokens on x; hover shows layer, position, token, value. Colour as
    :func:`head_effect_heatmap`."""
    values = np.asarray(values, dtype=float)
    n_layers, n_pos = values.shape
    toks = list(tokens)[:n_pos] + [""] * max(0, n_pos - len(tokens))
    labels = [f"{i}: {visible(t)}"[:22] for i, t in enumerate(toks)]
    custom = np.array([labels] * n_layers)
    m = colour_limit(values, normalised, floor)
    fig = go.Figure(go.Heatmap(
        z=values, x=list(range(n_pos)), y=list(range(n_layers)), zmin=-m, zmax=m, colorscale="RdBu",
        customdata=custom, hovertemplate="layer %{y}<br>pos %{customdata}<br>" + colorbar + ": %{z:.3f}<extra></extra>",
        colorbar=dict(title=dict(text=colorbar, side="right")),
    ))
    ticks = dict(tickmode="array", tickvals=list(range(n_pos)), ticktext=labels) if n_pos <= 60 else {}
    base_layout(fig, title, xaxis=dict(title="position (clean token)", tickangle=-60, **ticks),
                yaxis=dict(title="layer", dtick=1, autorange="reversed"))
    return mark_outliers(fig, values, m)


def attribution_scatter(exact: Sequence[float], estimate: Sequence[float], labels: Sequence[str], title: str,
                        r: float | None = None) -> go.Figure:
    """Attribution estimate vs exact effect per component, with the y = x line and Pearson r in the title."""
    x, y = np.asarray(exact, dtype=float), np.asarray(estimate, dtype=float)
    lo = float(min(np.nanmin(x), np.nanmin(y), 0.0)) if x.size else 0.0
    hi = float(max(np.nanmax(x), np.nanmax(y), 0.0)) if x.size else 1.0
    fig = go.Figure([
        go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(dash="dash", color="grey"), name="y = x",
                   hoverinfo="skip"),
        go.Scatter(x=x, y=y, mode="markers", text=list(labels), name="component",
                   hovertemplate="%{text}<br>exact %{x:.3f}<br>attribution %{y:.3f}<extra></extra>"),
    ])
    full = title + (f" (r = {r:.3f})" if r is not None and np.isfinite(r) else "")
    return base_layout(fig, full, xaxis=dict(title="exact activation patching"),
                       yaxis=dict(title="attribution patching (estimate)"), showlegend=False)


def dla_bars(labels: Sequence[str], values: Sequence[float], title: str) -> go.Figure:
    """Direct logit attribution per component (layer outputs or heads), bars coloured by sign."""
    v = np.asarray(values, dtype=float)
    fig = go.Figure(go.Bar(x=list(labels), y=v, marker_color=np.where(v >= 0, "#2166ac", "#b2182b"),
                           hovertemplate="%{x}<br>DLA %{y:.3f}<extra></extra>"))
    return base_layout(fig, title, xaxis=dict(title="component"), yaxis=dict(title="logit(answer) - logit(wrong)"))


def effect_bars_with_ci(labels: Sequence[str], mean: Sequence[float], low: Sequence[float], high: Sequence[float],
                        title: str) -> go.Figure:
    """Mean effect per component over a dataset with its bootstrap interval as error bars."""
    m, lo, hi = (np.asarray(a, dtype=float) for a in (mean, low, high))
    fig = go.Figure(go.Bar(x=list(labels), y=m, error_y=dict(type="data", symmetric=False, array=hi - m,
                                                              arrayminus=m - lo),
                           hovertemplate="%{x}<br>mean %{y:.3f}<extra></extra>"))
    return base_layout(fig, title, xaxis=dict(title="component"), yaxis=dict(title=EFFECT))


def path_bars(values: dict[str, float], title: str) -> go.Figure:
    """Normalised effect of the path sender -> receiver through q, k and v (and any reference bars)."""
    fig = go.Figure(go.Bar(x=list(values), y=list(values.values()),
                           hovertemplate="%{x}<br>effect %{y:.3f}<extra></extra>"))
    return base_layout(fig, title, yaxis=dict(title=EFFECT))


def correlation_bars(by_kind: dict[str, float], title: str) -> go.Figure:
    """Pearson r between attribution and exact patching per component type."""
    fig = go.Figure(go.Bar(x=list(by_kind), y=list(by_kind.values()),
                           hovertemplate="%{x}<br>r %{y:.3f}<extra></extra>"))
    return base_layout(fig, title, yaxis=dict(title="Pearson r", range=[-1, 1]))
