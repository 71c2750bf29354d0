"""Plotly figure builders shared by experiments and the app (pure: data in, Figure out)."""
from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

FONT = dict(family="Inter, Helvetica, Arial, sans-serif", size=13)
#: Every figure's template. Set as plotly's default once: a template named per figure is copied and validated
#: again for each one (~0.1 s a figure), the default is applied at almost no cost, with the same look.
TEMPLATE = "plotly_white"
pio.templates.default = TEMPLATE
#: Titles are wrapped at this many characters so a figure in a half-width column never cuts its title off.
TITLE_CHARS = 56


def wrap_title(title: str, width: int = TITLE_CHARS) -> str:
    """``title`` broken into lines of at most ``width`` characters (plotly draws ``<br>`` as a line break)."""
    if "<br>" in title or len(title) <= width:
        return title
    return "<br>".join(textwrap.wrap(title, width, break_long_words=False, break_on_hyphens=False))


def base_layout(fig: go.Figure, title: str, **kw) -> go.Figure:
    """Title (wrapped, the top margin grown to fit its lines), font, template and margins every figure shares."""
    text = wrap_title(title)
    lines = text.count("<br>") + 1
    margin = dict(l=60, r=30, t=40 + 20 * lines, b=50)
    margin.update(kw.pop("margin", None) or {})
    fig.update_layout(title=dict(text=text, x=0.02), font=FONT, margin=margin, **kw)
    return fig


def layer_head_heatmap(values: np.ndarray, title: str, colorbar: str, *, zmin: float | None = None,
                       zmax: float | None = None, colorscale: str = "Viridis", annotate: bool = True) -> go.Figure:
    """``values`` [layer, head] as a heatmap; hover and cell text name heads ``L.H``."""
    values = np.asarray(values, dtype=float)
    n_layers, n_heads = values.shape
    labels = np.array([[f"{layer}.{h}" for h in range(n_heads)] for layer in range(n_layers)])
    text = np.vectorize(lambda v: f"{v:.2f}")(values) if annotate and values.size <= 400 else None
    if (zmin is None) != (zmax is None):  # plotly ignores a lone bound: fill the other from the data
        zmin = float(np.nanmin(values)) if zmin is None else zmin
        zmax = float(np.nanmax(values)) if zmax is None else zmax
    fig = go.Figure(go.Heatmap(
        z=values, x=list(range(n_heads)), y=list(range(n_layers)), zmin=zmin, zmax=zmax, colorscale=colorscale,
        customdata=labels, text=text, texttemplate="%{text}" if text is not None else None,
        hovertemplate="head %{customdata}<br>" + colorbar + ": %{z:.3f}<extra></extra>",
        colorbar=dict(title=dict(text=colorbar, side="right")),
    ))
    base_layout(fig, title, xaxis=dict(title="head", dtick=1), yaxis=dict(title="layer", dtick=1, autorange="reversed"))
    return fig


def lines_by_x(series: dict[str, Sequence[float]], x: Sequence, title: str, x_title: str, y_title: str,
               *, log_y: bool = False) -> go.Figure:
    """One line per named series over a shared x axis (layers, steps, tokens...)."""
    fig = go.Figure([go.Scatter(x=list(x), y=list(y), mode="lines+markers", name=name) for name, y in series.items()])
    return base_layout(fig, title, xaxis=dict(title=x_title), yaxis=dict(title=y_title, type="log" if log_y else None),
                   legend=dict(orientation="h", y=-0.2))


def attention_heatmap(pattern: np.ndarray, tokens: Sequence[str], title: str) -> go.Figure:
    """One head's pattern [query, key] with tokens on both axes; hover shows query, key and weight."""
    pattern = np.asarray(pattern, dtype=float)
    labels = [f"{i}: {t!r}"[:24] for i, t in enumerate(tokens)]
    q = np.array([[labels[i]] * len(labels) for i in range(len(labels))])
    k = np.array([labels] * len(labels))
    fig = go.Figure(go.Heatmap(
        z=pattern, x=list(range(len(tokens))), y=list(range(len(tokens))), colorscale="Blues", zmin=0, zmax=1,
        customdata=np.stack([q, k], axis=-1),
        hovertemplate="query %{customdata[0]}<br>key %{customdata[1]}<br>weight %{z:.3f}<extra></extra>",
        colorbar=dict(title=dict(text="attention", side="right")),
    ))
    ticks = dict(tickmode="array", tickvals=list(range(len(tokens))), ticktext=labels) if len(tokens) <= 60 else {}
    return base_layout(fig, title, xaxis=dict(title="key (attended to)", **ticks, tickangle=-60),
                   yaxis=dict(title="query (attending)", autorange="reversed", **ticks))
