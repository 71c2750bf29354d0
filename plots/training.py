"""Training-curve figures: the induction phase change (live Train page and the induction-phase-change run)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import plotly.graph_objects as go
from plotly.subplots import make_subplots


class InductionCurves(Protocol):
    """What these figures read of a training history (``training.induction.TrainHistory`` is one)."""

    steps: Sequence[int]
    tokens: Sequence[int]
    loss_first: Sequence[float]
    loss_second: Sequence[float]
    icl_score: Sequence[float]

    def max_induction(self) -> list[float]: ...


def curves_figure(h: InductionCurves, total_steps: int, title: str, *, phase: int | None,
                  threshold: float) -> go.Figure:
    """Best head's induction score and the two copies' losses by step; ``phase`` (the step the best score first
    reached ``threshold``, None if never) is marked."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=[
        "Best head's induction score", "Loss on the first vs the repeated copy (in-context learning)"])
    fig.add_scatter(x=h.steps, y=h.max_induction(), mode="lines+markers", name="max induction score",
                    row=1, col=1)
    fig.add_scatter(x=h.steps, y=h.loss_first, mode="lines+markers", name="loss, first copy (no context help)",
                    row=1, col=2)
    fig.add_scatter(x=h.steps, y=h.loss_second, mode="lines+markers", name="loss, repeated copy (ICL)",
                    row=1, col=2)
    fig.add_hline(y=threshold, line_dash="dot", line_color="#7f7f7f", row=1, col=1)
    if phase is not None:
        for col in (1, 2):
            fig.add_vline(x=phase, line_dash="dash", line_color="#d62728", row=1, col=col)
        fig.add_annotation(x=phase, y=1.0, xref="x", yref="y", text=f"phase change, step {phase}",
                           showarrow=False, xanchor="left", yanchor="top", font=dict(color="#d62728"))
    fig.update_xaxes(title_text="training step", range=[0, total_steps])
    fig.update_yaxes(title_text="induction score", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(title_text="loss (nats per token)", rangemode="tozero", row=1, col=2)
    return fig.update_layout(title=dict(text=title, x=0.02), template="plotly_white", height=430,
                             legend=dict(orientation="h", y=-0.22), margin=dict(l=60, r=30, t=80, b=60))


def phase_figure(runs: dict[int, InductionCurves], window: tuple[int, int] | None) -> go.Figure:
    """ICL score and max induction score vs tokens seen, 2-layer and 1-layer on one plot (two y axes)."""
    fig = go.Figure()
    for n_layers, h in runs.items():
        dash = "solid" if n_layers > 1 else "dot"
        fig.add_scatter(x=h.tokens, y=h.max_induction(), name=f"{n_layers}L max induction score",
                        line=dict(color="#d62728", dash=dash))
        fig.add_scatter(x=h.tokens, y=h.icl_score, name=f"{n_layers}L ICL score (nats)", yaxis="y2",
                        line=dict(color="#1f77b4", dash=dash))
    if window is not None and 2 in runs:
        h = runs[2]
        tok = dict(zip(h.steps, h.tokens))
        fig.add_vrect(x0=tok[window[0]], x1=tok[window[1]], fillcolor="grey", opacity=0.15, line_width=0,
                      annotation_text="phase change", annotation_position="top left")
    fig.update_layout(title="Induction heads form in a phase change that coincides with the ICL-loss drop",
                      xaxis=dict(title="tokens seen"), yaxis=dict(title="max induction score", range=[0, 1]),
                      yaxis2=dict(title="ICL score: loss(2nd copy) - loss(1st copy)", overlaying="y", side="right"),
                      legend=dict(orientation="h", y=-0.25), template="plotly_white", margin=dict(l=60, r=60, t=60))
    return fig
