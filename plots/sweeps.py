"""Figures of a sweep: a metric against the swept setting, each seed a dot, the mean over seeds with its 95% CI."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from plots.common import base_layout

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


def metric_vs_setting(points: Sequence[dict[str, Any]], x_title: str, metric: str, *,
                      title: str | None = None, numeric_x: bool = True) -> go.Figure:
    """``points``: one dict per group of cells, ``{"x", "series", "values", "mean", "ci"}`` (``values`` the
    per-seed numbers, ``ci`` the 95% half-width or None). One line of means with CI bars per series, seeds as
    dots; groups without any value are left out (their cells said nothing)."""
    fig = go.Figure()
    series = list(dict.fromkeys(p["series"] for p in points))
    for i, name in enumerate(series):
        pts = [p for p in points if p["series"] == name and p.get("mean") is not None]
        if numeric_x:
            pts.sort(key=lambda p: float(p["x"]))
        color = PALETTE[i % len(PALETTE)]
        xs = [float(p["x"]) if numeric_x else str(p["x"]) for p in pts]
        fig.add_trace(go.Scatter(
            x=xs, y=[p["mean"] for p in pts], mode="lines+markers", name=name or "mean over seeds",
            line=dict(color=color), marker=dict(size=9),
            error_y=dict(type="data", array=[p["ci"] or 0.0 for p in pts], visible=True),
            hovertemplate=f"{x_title}=%{{x}}<br>mean {metric}=%{{y:.4g}} ± %{{error_y.array:.3g}}<extra></extra>"))
        dots_x = [x for p, x in zip(pts, xs) for _ in p["values"]]
        dots_y = [v for p in pts for v in p["values"]]
        fig.add_trace(go.Scatter(x=dots_x, y=dots_y, mode="markers", showlegend=False,
                                 marker=dict(color=color, size=6, opacity=0.45, symbol="circle-open"),
                                 hovertemplate=f"{x_title}=%{{x}}<br>one seed: %{{y:.4g}}<extra></extra>"))
    base_layout(fig, title or f"{metric} against {x_title} (mean over seeds, 95% CI; dots: seeds)",
                xaxis_title=x_title, yaxis_title=metric)
    if not numeric_x:
        fig.update_xaxes(type="category")
    return fig


def onset_vs_share(onsets: dict[float, list[float | None]], budget: int, *, fit: tuple[list[float], list[float]]
                   | None = None, forecast: tuple[float, float] | None = None, held_out: float | None = None,
                   icl_onsets: dict[float, list[float | None]] | None = None,
                   title: str = "When the induction head forms, by share of structured data") -> go.Figure:
    """Every seed's onset step against the share of structured rows (a seed with no onset drawn as an open
    marker at the budget line), the seeds' means, the fitted curve and the held-out share's forecast; with
    ``icl_onsets``, also each seed's onset of in-context learning by behaviour (triangles)."""
    fig = go.Figure()
    if icl_onsets:
        pts = [(s, o) for s, os_ in icl_onsets.items() for o in os_ if o is not None]
        fig.add_trace(go.Scatter(x=[s for s, _ in pts], y=[o for _, o in pts], mode="markers",
                                 name="ICL by behaviour (ICL score <= -1 nat), one seed",
                                 marker=dict(color="#ff7f0e", size=8, symbol="triangle-up-open"),
                                 hovertemplate="share %{x}<br>ICL onset step %{y}<extra></extra>"))
    formed = [(s, o) for s, os_ in onsets.items() for o in os_ if o is not None]
    never = [s for s, os_ in onsets.items() for o in os_ if o is None]
    fig.add_trace(go.Scatter(x=[s for s, _ in formed], y=[o for _, o in formed], mode="markers", name="one seed",
                             marker=dict(color="#1f77b4", size=8, opacity=0.6),
                             hovertemplate="share %{x}<br>onset step %{y}<extra></extra>"))
    if never:
        fig.add_trace(go.Scatter(x=never, y=[budget] * len(never), mode="markers", name="no head within budget",
                                 marker=dict(color="#7f7f7f", size=10, symbol="x-open"),
                                 hovertemplate="share %{x}: none within the budget<extra></extra>"))
    means = sorted((s, sum(o) / len(o)) for s, os_ in onsets.items() if (o := [v for v in os_ if v is not None])
                   and len(o) == len(os_))
    if means:
        fig.add_trace(go.Scatter(x=[s for s, _ in means], y=[m for _, m in means], mode="lines+markers",
                                 name="mean over seeds (every seed formed)", line=dict(color="#1f77b4")))
    if fit is not None:
        fig.add_trace(go.Scatter(x=fit[0], y=fit[1], mode="lines", name="fit: onset = c * share^-k",
                                 line=dict(color="#2ca02c", dash="dash")))
    if forecast is not None:
        fig.add_trace(go.Scatter(x=[forecast[0]], y=[forecast[1]], mode="markers", name="forecast (held-out share)",
                                 marker=dict(color="#d62728", size=14, symbol="star")))
    fig.add_hline(y=budget, line_dash="dot", line_color="#7f7f7f", annotation_text="step budget",
                  annotation_position="top left")
    if held_out is not None:
        fig.add_vline(x=held_out, line_dash="dot", line_color="#d62728")
    base_layout(fig, title, xaxis_title="share of training rows holding a repeated span",
                yaxis_title="step where the induction score crosses 0.5")
    fig.update_yaxes(rangemode="tozero")
    return fig
