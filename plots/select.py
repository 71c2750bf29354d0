"""Click-to-select a head on a figure: invisible point markers that carry ``"L.H"`` in their customdata.

Streamlit's selection events (``st.plotly_chart(on_select=...)``) report clicked points of scatter-like traces but
return nothing for heatmap cells (streamlit/streamlit#8760), so each heatmap cell, or each small multiple, gets a
transparent marker on top. The marker also carries the hover text, so the cell still tells what it holds.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

PICKER_NAME = "head-picker"


def add_head_picker(fig: go.Figure, label: str = "value") -> go.Figure:
    """Overlay the first heatmap of a layer x head figure (x = head, y = layer) with one clickable marker per cell."""
    heat = next((t for t in fig.data if t.type == "heatmap"), None)
    if heat is None:
        return fig
    z = np.asarray(heat.z, dtype=float)  # [layer, head]
    n_layers, n_heads = z.shape
    layers, heads = np.meshgrid(range(n_layers), range(n_heads), indexing="ij")
    heat.hoverinfo = "skip"
    heat.hovertemplate = None
    fig.add_trace(go.Scatter(
        x=heads.ravel().tolist(), y=layers.ravel().tolist(), mode="markers", name=PICKER_NAME, showlegend=False,
        marker=dict(size=28, symbol="square", opacity=0.0, color="#000"),
        customdata=[f"{a}.{b}" for a, b in zip(layers.ravel(), heads.ravel())],
        text=[f"{v:.3f}" for v in z.ravel()],
        hovertemplate="head %{customdata}<br>" + label + ": %{text}<br><i>click to select</i><extra></extra>",
    ))
    fig.update_layout(hoverdistance=60)
    fig.update_xaxes(range=[-0.5, n_heads - 0.5], autorange=False)  # the markers must not widen the axes
    fig.update_yaxes(range=[n_layers - 0.5, -0.5], autorange=False)  # layer 0 on top, as layer_head_heatmap
    return fig


def add_subplot_pickers(fig: go.Figure, heads: Sequence[str], n_cols: int, size: int) -> go.Figure:
    """One 4 x 4 grid of clickable markers over each subplot (``heads[i]`` is subplot i's ``"L.H"``, row-major);
    ``size`` is the subplot's data extent on both axes."""
    grid = (np.arange(4) + 0.5) * size / 4
    gx, gy = np.meshgrid(grid, grid)
    for i, h in enumerate(heads):
        fig.add_trace(go.Scatter(
            x=gx.ravel().tolist(), y=gy.ravel().tolist(), mode="markers", name=PICKER_NAME, showlegend=False,
            marker=dict(size=22, opacity=0.0, color="#000"), customdata=[h] * gx.size,
            hovertemplate=f"head {h}<br><i>click to open it above</i><extra></extra>",
        ), row=i // n_cols + 1, col=i % n_cols + 1)
    fig.update_layout(hoverdistance=80)
    return fig


def head_from_points(points: Sequence[dict]) -> str | None:
    """The ``"L.H"`` of the first clicked picker marker in a selection event's points (None when there is none)."""
    for p in points or []:
        cd = p.get("customdata") if isinstance(p, dict) else None
        if isinstance(cd, (list, tuple)):
            cd = cd[0] if cd else None
        if isinstance(cd, str) and "." in cd:
            return cd
    return None
