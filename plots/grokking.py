"""Grokking figures (Nanda et al. 2023): curves with phase boundaries, Fourier spectra, progress measures.

Pure builders: plain lists / arrays in, plotly Figure out. ``phases`` is a dict of boundary epochs
(``memorised``, ``cleanup_start``, ``cleanup_end``; any may be None) shaded as memorisation / circuit formation /
cleanup bands.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from plots.common import base_layout

PHASE_COLOURS = {"memorisation": "rgba(99,110,250,0.08)", "circuit formation": "rgba(239,85,59,0.08)",
                 "cleanup": "rgba(0,204,150,0.10)"}


def phase_bands(phases: dict[str, int | None], last_epoch: int) -> list[tuple[str, int, int]]:
    """(name, start, end) of each phase that the boundaries define."""
    mem, cs, ce = phases.get("memorised"), phases.get("cleanup_start"), phases.get("cleanup_end")
    bands = []
    if mem is not None:
        bands.append(("memorisation", 0, mem))
        bands.append(("circuit formation", mem, cs if cs is not None else last_epoch))
    if cs is not None:
        bands.append(("cleanup", cs, ce if ce is not None else last_epoch))
    return bands


def _shade(fig: go.Figure, phases: dict[str, int | None] | None, last_epoch: int, **where) -> None:
    for name, x0, x1 in phase_bands(phases or {}, last_epoch):
        fig.add_vrect(x0=x0, x1=x1, fillcolor=PHASE_COLOURS[name], line_width=0, annotation_text=name,
                      annotation_position="top left", annotation_font_size=10, **where)


def curves_figure(epochs: Sequence[int], train_loss: Sequence[float], test_loss: Sequence[float],
                  train_acc: Sequence[float], test_acc: Sequence[float], phases: dict[str, int | None] | None = None,
                  title: str = "Grokking: train and test loss and accuracy") -> go.Figure:
    """Loss (log scale) and accuracy over epochs, train vs test, with the phases shaded."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss (log)", "accuracy"))
    x = list(epochs)
    for col, (tr, te) in enumerate(((train_loss, test_loss), (train_acc, test_acc)), start=1):
        fig.add_trace(go.Scatter(x=x, y=list(tr), name="train", line=dict(color="#636efa"), showlegend=col == 1,
                                 legendgroup="train"), row=1, col=col)
        fig.add_trace(go.Scatter(x=x, y=list(te), name="test", line=dict(color="#ef553b"), showlegend=col == 1,
                                 legendgroup="test"), row=1, col=col)
    last = x[-1] if x else 0
    for col in (1, 2):
        _shade(fig, phases, last, row=1, col=col)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_xaxes(title_text="epoch")
    return base_layout(fig, title, legend=dict(orientation="h", y=-0.2))


def spectrum_figure(norms: Sequence[float], key: Sequence[int] = (), title: str = "Embedding Fourier spectrum",
                    y_title: str = "squared norm (share)") -> go.Figure:
    """Per-frequency share of a spectrum (frequency 1..(p-1)/2) as bars; key frequencies highlighted and named."""
    v = np.asarray(norms, dtype=float)
    share = v / v.sum() if v.sum() > 0 else v
    freqs = np.arange(1, len(v) + 1)
    keys = set(int(k) for k in key)
    colours = ["#ef553b" if f in keys else "#9aa0b5" for f in freqs]
    fig = go.Figure(go.Bar(x=freqs.tolist(), y=share.tolist(), marker_color=colours,
                           hovertemplate="frequency %{x}<br>share %{y:.3f}<extra></extra>"))
    for k in sorted(keys):
        if 1 <= k <= len(v):
            fig.add_annotation(x=k, y=share[k - 1], text=str(k), showarrow=False, yshift=10, font=dict(size=11))
    return base_layout(fig, title + (f" (key: {', '.join(map(str, sorted(keys)))})" if keys else ""),
                       xaxis=dict(title="frequency k", dtick=max(1, len(v) // 14)), yaxis=dict(title=y_title),
                       showlegend=False)


def spectrum_over_time_figure(epochs: Sequence[int], norms: Sequence[Sequence[float]], key: Sequence[int] = (),
                              title: str = "Embedding spectrum over training") -> go.Figure:
    """Heatmap: per-frequency share of the embedding's squared Fourier norm at each snapshot."""
    m = np.asarray(norms, dtype=float)  # [snapshot, freq]
    m = m / np.clip(m.sum(1, keepdims=True), 1e-12, None)
    fig = go.Figure(go.Heatmap(z=m.T, x=list(epochs), y=np.arange(1, m.shape[1] + 1), colorscale="Viridis",
                               colorbar=dict(title=dict(text="share", side="right")),
                               hovertemplate="epoch %{x}<br>frequency %{y}<br>share %{z:.3f}<extra></extra>"))
    ticks = sorted(int(k) for k in key)
    return base_layout(fig, title, xaxis=dict(title="epoch"),
                       yaxis=dict(title="frequency", tickmode="array", tickvals=ticks) if ticks else
                       dict(title="frequency"))


def progress_figure(epochs: Sequence[int], series: dict[str, Sequence[float]],
                    phases: dict[str, int | None] | None = None,
                    title: str = "Progress measures: restricted and excluded loss") -> go.Figure:
    """Named loss curves over epochs on a log axis (e.g. test loss, restricted loss, excluded loss), phases shaded."""
    dash = {"excluded": "dash", "restricted": "dot"}
    fig = go.Figure([go.Scatter(x=list(epochs), y=list(y), name=name, mode="lines",
                                line=dict(dash=next((d for k, d in dash.items() if k in name), "solid")))
                     for name, y in series.items()])
    _shade(fig, phases, list(epochs)[-1] if len(epochs) else 0)
    return base_layout(fig, title, xaxis=dict(title="epoch"), yaxis=dict(title="loss (log)", type="log"),
                       legend=dict(orientation="h", y=-0.2))


def weight_norm_figure(epochs: Sequence[int], sum_sq: Sequence[float], phases: dict[str, int | None] | None = None,
                       title: str = "Total sum of squared weights") -> go.Figure:
    fig = go.Figure(go.Scatter(x=list(epochs), y=list(sum_sq), mode="lines", name="sum of squared weights"))
    _shade(fig, phases, list(epochs)[-1] if len(epochs) else 0)
    return base_layout(fig, title, xaxis=dict(title="epoch"), yaxis=dict(title="sum of squared weights"))


def neuron_clusters_figure(counts: dict[int, int], key: Sequence[int] = (), n_freq: int | None = None,
                           title: str = "MLP neurons clustered by frequency") -> go.Figure:
    """Neurons per dominant frequency (0 = no single frequency explains the neuron), key frequencies highlighted."""
    keys = set(int(k) for k in key)
    n_freq = n_freq or max([int(k) for k in counts] + [1])
    x = list(range(0, n_freq + 1))
    y = [int(counts.get(k, counts.get(str(k), 0))) for k in x]
    colours = ["#ef553b" if k in keys else ("#cccccc" if k == 0 else "#9aa0b5") for k in x]
    fig = go.Figure(go.Bar(x=x, y=y, marker_color=colours,
                           hovertemplate="frequency %{x}<br>%{y} neurons<extra></extra>"))
    return base_layout(fig, title, xaxis=dict(title="dominant frequency (0: none above threshold)"),
                       yaxis=dict(title="neurons"), showlegend=False)
