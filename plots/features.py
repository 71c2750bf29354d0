"""Figures for sparse-autoencoder features: MMCS curves, latent tables, histograms, logit effects, boards, steering.

Pure builders: plain numbers in (from learned.sae / probes.features.latents), a plotly Figure or an HTML string out.
"""
from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from plots.common import base_layout
from plots.neurons import logit_bars


def mmcs_curve(sizes: Sequence[int], series: dict[str, Sequence[float]], n_true: int,
               target: float = 0.99) -> go.Figure:
    """MMCS of learned dictionaries to the true features against dictionary size, one line per SAE kind."""
    fig = go.Figure([go.Scatter(x=list(sizes), y=list(v), mode="lines+markers", name=k) for k, v in series.items()])
    fig.add_vline(x=n_true, line_dash="dot", line_color="grey", annotation_text=f"{n_true} true features")
    fig.add_hline(y=target, line_dash="dash", line_color="green", annotation_text=f"MMCS {target}")
    return base_layout(fig, "Recovering known features: MMCS vs dictionary size",
                       xaxis=dict(title="dictionary size (latents)", type="log", tickvals=list(sizes)),
                       yaxis=dict(title="mean max cosine similarity", range=[0, 1.02]),
                       legend=dict(orientation="h", y=-0.2))


def latent_scatter(density: np.ndarray, max_act: np.ndarray, selected: int | None = None) -> go.Figure:
    """Every latent as a point: firing density (log) against max activation; the selected one highlighted."""
    d = np.asarray(density, float)
    x = np.log10(np.clip(d, 1e-7, None))
    fig = go.Figure(go.Scatter(x=x, y=max_act, mode="markers", marker=dict(size=5, opacity=0.6),
                                 customdata=np.arange(len(d)),
                                 hovertemplate="latent %{customdata}<br>log10 density %{x:.2f}<br>"
                                               "max %{y:.2f}<br><i>click to open</i><extra></extra>", name="latents"))
    if selected is not None and 0 <= selected < len(d):
        fig.add_trace(go.Scatter(x=[x[selected]], y=[max_act[selected]], mode="markers", name=f"latent {selected}",
                                 marker=dict(size=12, color="crimson", symbol="x"), customdata=[selected],
                                 hovertemplate=f"latent {selected} (open)<extra></extra>"))
    return base_layout(fig, "Latents: density and max activation (click a point to open that latent)",
                       xaxis=dict(title="log10 firing density"),
                       yaxis=dict(title="max activation"), showlegend=False)


def prompt_activation_figure(tokens: Sequence[str], acts: Sequence[float], latent: int) -> go.Figure:
    """One latent's activation at each token of a prompt (tokens with visible whitespace on x)."""
    a = np.asarray(acts, float)
    labels = [f"{i}: {t}"[:18] for i, t in enumerate(tokens)]
    fig = go.Figure(go.Bar(x=list(range(len(a))), y=a, marker_color="#ff8c00", customdata=labels,
                           hovertemplate="%{customdata}<br>activation %{y:.3f}<extra></extra>"))
    ticks = dict(tickmode="array", tickvals=list(range(len(a))), ticktext=labels) if len(a) <= 60 else {}
    return base_layout(fig, f"Latent {latent} on the prompt, token by token", xaxis=dict(title="token", tickangle=-60,
                                                                                          **ticks),
                       yaxis=dict(title="activation"), bargap=0.1)


def activation_histogram(values: np.ndarray, latent: int, bins: int = 40) -> go.Figure:
    """Histogram of a latent's non-zero activations."""
    fig = go.Figure(go.Histogram(x=np.asarray(values, float), nbinsx=bins, marker_color="#4c78a8"))
    return base_layout(fig, f"Latent {latent}: activations where it fires ({len(values)} tokens)",
                       xaxis=dict(title="activation"), yaxis=dict(title="tokens"), bargap=0.05)


def logit_effects_figure(promoted: Sequence[tuple[str, float]], suppressed: Sequence[tuple[str, float]],
                         latent: int) -> go.Figure:
    """Bars of the tokens a latent's decoder direction promotes (right) and suppresses (left) through W_U."""
    return logit_bars(promoted, suppressed, f"Latent {latent}: logit effects (decoder direction through W_U)",
                      x_title="logit change per unit of the direction (centred)")


def board_heatmap(values: np.ndarray, title: str, colorbar: str = "correlation") -> go.Figure:
    """A value per Othello square [64] (row A..H, column 1..8) as an 8x8 heatmap, diverging around 0."""
    v = np.asarray(values, float).reshape(8, 8)
    lim = float(np.nanmax(np.abs(v))) if np.isfinite(v).any() else 1.0
    fig = go.Figure(go.Heatmap(z=v, x=[str(c) for c in range(1, 9)], y=list("ABCDEFGH"), zmin=-lim, zmax=lim,
                               colorscale="RdBu", reversescale=True, text=np.vectorize(lambda t: f"{t:.2f}")(v),
                               texttemplate="%{text}", colorbar=dict(title=dict(text=colorbar, side="right")),
                               hovertemplate="%{y}%{x}: %{z:.3f}<extra></extra>"))
    return base_layout(fig, title, yaxis=dict(autorange="reversed", scaleanchor="x"), width=520, height=500)


def steering_figure(tokens: Sequence[str], p_before: np.ndarray, p_after: np.ndarray, latent: int,
                    scale: float) -> go.Figure:
    """Next-token probabilities without and with the latent's direction added, side by side."""
    labels = [repr(t) for t in tokens]
    fig = go.Figure([go.Bar(name="plain", x=labels, y=list(p_before), marker_color="#9ecae1"),
                     go.Bar(name=f"+ {scale:g} x latent {latent}", x=labels, y=list(p_after), marker_color="#e6550d")])
    return base_layout(fig, f"Steering with latent {latent}: next-token probabilities", barmode="group",
                       xaxis=dict(title="token"), yaxis=dict(title="probability", range=[0, 1]),
                       legend=dict(orientation="h", y=-0.3))


def training_curve(steps: Sequence[int], variance: Sequence[float], dead: Sequence[float]) -> go.Figure:
    fig = go.Figure([go.Scatter(x=list(steps), y=list(variance), name="variance explained", mode="lines"),
                     go.Scatter(x=list(steps), y=list(dead), name="dead fraction", mode="lines")])
    return base_layout(fig, "SAE training", xaxis=dict(title="step"), yaxis=dict(title="", range=[0, 1]),
                       legend=dict(orientation="h", y=-0.2))


def context_html(tokens: Sequence[str], acts: Sequence[float], centre: int, max_act: float) -> str:
    """One context as inline HTML: each token shaded by the latent's activation, the peak token outlined."""
    top = max(float(max_act), 1e-9)
    spans = []
    for i, (t, a) in enumerate(zip(tokens, acts)):
        alpha = max(0.0, min(1.0, float(a) / top))
        text = html.escape(t).replace("\n", "↵").replace(" ", "&nbsp;") or "&nbsp;"
        border = "outline:2px solid #d62728;" if i == centre else ""
        spans.append(f'<span title="{float(a):.3f}" style="background:rgba(255,140,0,{alpha:.2f});{border}'
                     f'padding:1px 2px;border-radius:3px;font-family:monospace">{text}</span>')
    return "".join(spans)
