"""Figures for an edit on one prompt (pure): next-token probabilities before and after, and KL per position."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from plots.common import base_layout


def before_after_figure(tokens: Sequence[str], p_before: Sequence[float], p_after: Sequence[float],
                        title: str) -> go.Figure:
    """Next-token probabilities of the plain and the edited run, side by side, on the fixed 0..1 scale."""
    labels = [repr(t) for t in tokens]
    fig = go.Figure([go.Bar(name="before", x=labels, y=list(p_before), marker_color="#9ecae1",
                            hovertemplate="%{x}<br>before %{y:.3f}<extra></extra>"),
                     go.Bar(name="after the edit", x=labels, y=list(p_after), marker_color="#e6550d",
                            hovertemplate="%{x}<br>after %{y:.3f}<extra></extra>")])
    return base_layout(fig, title, barmode="group", xaxis=dict(title="next token"),
                       yaxis=dict(title="probability", range=[0, 1]), legend=dict(orientation="h", y=-0.3))


def kl_bars(tokens: Sequence[str], kl: Sequence[float], chosen: int, title: str) -> go.Figure:
    """KL(before || after) of the next-token distribution at every position; the position read out is dark;
    click a bar to read another position."""
    v = np.asarray(kl, float)
    colours = ["#08519c" if i == chosen else "#9ecae1" for i in range(len(v))]
    labels = [f"{i}: {t!r}"[:18] for i, t in enumerate(tokens)]
    fig = go.Figure(go.Bar(x=list(range(len(v))), y=v, marker_color=colours, customdata=list(range(len(v))),
                           text=labels, textposition="none", unselected=dict(marker=dict(opacity=1.0)),
                           hovertemplate="%{text}<br>KL %{y:.4g} nats<br><i>click to read this "
                                                      "position</i><extra></extra>"))
    ticks = dict(tickmode="array", tickvals=list(range(len(v))), ticktext=labels) if len(v) <= 60 else {}
    return base_layout(fig, title, xaxis=dict(title="position (the next token predicted there)", tickangle=-60,
                                              **ticks),
                       yaxis=dict(title="KL(before ‖ after), nats", rangemode="tozero"), showlegend=False)
