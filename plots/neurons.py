"""Figures for one MLP neuron (pure): its activation token by token on a prompt, and its direct logit effects."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from interp.token_display import visible
from plots.common import base_layout


def token_values_figure(tokens: Sequence[str], values: Sequence[float], title: str, y_title: str,
                        colour: str = "#ff8c00") -> go.Figure:
    """One value per token of a prompt as bars (tokens, whitespace visible, on x); click a bar to pick it."""
    v = np.asarray(values, float)
    labels = [f"{i}: {visible(t)}"[:18] for i, t in enumerate(tokens)]
    fig = go.Figure(go.Bar(x=list(range(len(v))), y=v, marker_color=np.where(v >= 0, colour, "#6a8fc7"),
                           customdata=list(range(len(v))), text=labels, textposition="none",
                           unselected=dict(marker=dict(opacity=1.0)),  # a clicked bar does not fade the rest
                           hovertemplate="%{text}<br>" + y_title + " %{y:.4g}<extra></extra>"))
    ticks = dict(tickmode="array", tickvals=list(range(len(v))), ticktext=labels) if len(v) <= 60 else {}
    return base_layout(fig, title, xaxis=dict(title="token", tickangle=-60, **ticks), yaxis=dict(title=y_title),
                       bargap=0.1, showlegend=False)


def logit_bars(promoted: Sequence[tuple[str, float]], suppressed: Sequence[tuple[str, float]], title: str, *,
               x_title: str = "logit change per unit of activation (centred)") -> go.Figure:
    """The tokens a direction (a neuron's or a latent's output weights) raises (green) and lowers (red) through the
    unembedding, horizontal bars."""
    items = list(suppressed)[::-1] + list(promoted)[::-1]
    labels = [repr(t) for t, _ in items]
    vals = [v for _, v in items]
    fig = go.Figure(go.Bar(x=vals, y=list(range(len(vals))), orientation="h",
                           marker_color=["#d62728" if v < 0 else "#2ca02c" for v in vals],
                           text=labels, textposition="outside", hovertemplate="%{text}: %{x:.3f}<extra></extra>"))
    return base_layout(fig, title, xaxis=dict(title=x_title), yaxis=dict(showticklabels=False),
                       height=max(300, 24 * len(vals) + 100))
