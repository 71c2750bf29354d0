"""Plotly builders for lens results (pure: arrays and labels in, Figure out); see probes/lens.py for the data."""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.errors import InvalidInput
from plots.common import FONT, base_layout
from probes.lens.logit import LensResult, TokenTrajectory

#: Above this many positions the grid drops the per-cell top-1 text (hover still has it).
MAX_TEXT_POSITIONS = 80


def token_label(token: str, max_len: int = 10) -> str:
    """A token as it can be read in a cell or tick: newlines/tabs shown, all-space tokens visible, HTML-safe."""
    s = token.replace("\n", "↵").replace("\t", "⇥").replace("\r", "␍")
    if s and not s.strip():
        s = s.replace(" ", "␣")
    if len(s) > max_len:
        s = s[: max_len - 1] + "…"
    return html.escape(s, quote=False)


def _fmt(value) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.3f}"
    if isinstance(value, str):
        return repr(value)[1:-1] if value else "''"
    return str(value)


def lens_grid(values: np.ndarray, cell_text: np.ndarray, x_tokens: Sequence[str], layer_labels: Sequence[str], *,
              title: str, colorbar: str, hover: Mapping[str, np.ndarray] | None = None,
              top_tokens: Sequence[str] | None = None, positions: Sequence[int] | None = None,
              zmin: float | None = None, zmax: float | None = None, colorscale: str = "Blues",
              max_text_positions: int = MAX_TEXT_POSITIONS) -> go.Figure:
    """nostalgebraist's picture: ``values`` [layers, pos] as colour, each cell's ``cell_text`` (top-1 token) written.

    Input tokens label the x axis (bottom), ``top_tokens`` (e.g. the target/next token) the top axis; layers run
    up the y axis (embedding at the bottom, final at the top). ``hover`` maps names to [layers, pos] arrays shown
    per cell.
    """
    values = np.asarray(values, dtype=float)
    n_layers, n_pos = values.shape
    positions = list(range(n_pos)) if positions is None else list(positions)
    x = list(range(n_pos))
    cell = np.vectorize(lambda v: html.escape(_fmt(v), quote=False), otypes=[object])
    lay = np.repeat(np.asarray(layer_labels, dtype=object)[:, None], n_pos, axis=1)  # [layers, pos]
    pos_lbl = np.array([f"{p}: " + html.escape(_fmt(t), quote=False) for p, t in zip(positions, x_tokens)],
                       dtype=object)
    custom = "layer " + lay + "<br>position " + np.repeat(pos_lbl[None, :], n_layers, axis=0)
    for name, arr in (hover or {}).items():
        custom = custom + "<br>" + name + ": " + cell(np.asarray(arr, dtype=object))
    show_text = n_pos <= max_text_positions
    chars = max(2, min(8, 1000 // (8 * max(1, n_pos))))  # cell text never wider than its cell (~8 px a character)
    text = np.vectorize(lambda t: token_label(str(t), chars), otypes=[object])(cell_text) if show_text else None
    if (zmin is None) != (zmax is None):
        zmin = float(np.nanmin(values)) if zmin is None else zmin
        zmax = float(np.nanmax(values)) if zmax is None else zmax
    fig = go.Figure(go.Heatmap(
        z=values, x=x, y=list(range(n_layers)), zmin=zmin, zmax=zmax, colorscale=colorscale, customdata=custom,
        text=text, texttemplate="%{text}" if show_text else None, textfont=dict(size=10),
        hovertemplate="%{customdata}<br>" + colorbar + ": %{z:.3f}<extra></extra>",
        colorbar=dict(title=dict(text=colorbar, side="right")), xgap=1, ygap=1,
    ))
    every = max(1, n_pos // 60)
    ticks = dict(tickmode="array", tickvals=x[::every],
                 ticktext=[token_label(t, 10) for t in list(x_tokens)[::every]], tickangle=-60)
    layout = dict(xaxis=dict(title="input token (position)", **ticks),
                  yaxis=dict(title="layer (lens read-out)", tickmode="array", tickvals=list(range(n_layers)),
                             ticktext=list(layer_labels), ticklabelstandoff=6),
                  height=48 * n_layers + (280 if top_tokens is not None else 220),
                  width=max(700, 200 + 44 * n_pos) if show_text else None)  # room for a token per cell
    if top_tokens is not None:
        fig.add_trace(go.Scatter(x=x, y=[None] * n_pos, xaxis="x2", showlegend=False, hoverinfo="skip"))
        layout["xaxis2"] = dict(title="target (next) token", overlaying="x", side="top", matches="x",
                                tickmode="array", tickvals=x[::every], tickangle=-60,
                                ticktext=[token_label(t, 10) for t in list(top_tokens)[::every]])
    base_layout(fig, title, **layout)
    fig.update_layout(margin=dict(l=110, r=30, t=150 if top_tokens is not None else 60, b=110),
                      title=dict(y=0.99, yanchor="top"))
    return fig


def token_trajectories(layer_labels: Sequence[str], series: Mapping[str, tuple[Sequence[float], Sequence[int]]],
                       title: str) -> go.Figure:
    """Probability (log scale) and rank (1 = top, log scale) of one token across layers, one line per lens."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("probability", "rank (1 = top-1)"), horizontal_spacing=0.12)
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    for i, (name, (prob, rank)) in enumerate(series.items()):
        c = colors[i % len(colors)]
        ranks1 = [int(r) + 1 for r in rank]
        fig.add_trace(go.Scatter(x=list(layer_labels), y=list(map(float, prob)), mode="lines+markers", name=name,
                                 line=dict(color=c), legendgroup=name,
                                 hovertemplate="%{x}<br>p = %{y:.3g}<extra>" + name + "</extra>"), row=1, col=1)
        fig.add_trace(go.Scatter(x=list(layer_labels), y=ranks1, mode="lines+markers", name=name, showlegend=False,
                                 line=dict(color=c), legendgroup=name,
                                 hovertemplate="%{x}<br>rank %{y}<extra>" + name + "</extra>"), row=1, col=2)
    fig.update_yaxes(type="log", title_text="probability", exponentformat="power", row=1, col=1)
    fig.update_yaxes(type="log", autorange="reversed", title_text="rank (log; up = better)", row=1, col=2)
    fig.update_xaxes(title_text="layer", tickangle=-30)
    base_layout(fig, title, legend=dict(orientation="h", y=-0.3), height=420)
    fig.update_annotations(font=FONT)
    return fig


def kl_by_layer(layer_labels: Sequence[str], series: Mapping[str, Sequence[float]], title: str, *,
                log_y: bool = True) -> go.Figure:
    """Mean KL(final || lens) per layer, one line per lens (zeros, e.g. the final layer, left off a log axis)."""
    fig = go.Figure()
    for name, kl in series.items():
        y = [None if log_y and float(v) <= 0 else float(v) for v in kl]
        fig.add_trace(go.Scatter(x=list(layer_labels), y=y, mode="lines+markers", name=name,
                                 hovertemplate="%{x}<br>KL %{y:.4f} nats<extra>" + name + "</extra>"))
    return base_layout(fig, title, xaxis=dict(title="layer (lens read-out)"),
                   yaxis=dict(title="mean KL(final ‖ lens), nats" + (" (log)" if log_y else ""),
                              type="log" if log_y else None),
                   legend=dict(orientation="h", y=-0.25))


#: What the grid can be coloured by: LensResult field -> (colour-bar title, colour scale, fixed range or None).
GRID_COLOURS = {
    "target_prob": ("target probability", "Blues", (0.0, 1.0)),
    "kl_to_final": ("KL(final ‖ layer), nats", "Reds", None),
    "entropy": ("entropy, nats", "Greens", None),
}


def grid_figure(result: LensResult, color: str = "target_prob", title: str | None = None):
    """The layer x position grid of ``result`` coloured by ``color`` with each cell's top-1 token written in it."""
    if color not in GRID_COLOURS:
        raise InvalidInput(f"Cannot colour the grid by {color!r}; choose one of {', '.join(GRID_COLOURS)}.")
    bar, scale, bounds = GRID_COLOURS[color]
    values = getattr(result, color).float().numpy()  # [layers, pos]
    zmin, zmax = bounds if bounds else (0.0, float(np.quantile(values, 0.98)) if values.size else 1.0)
    targets = [t + ("" if nxt else " (chosen)") for t, nxt in zip(result.target_tokens, result.target_is_next.tolist())]
    top1 = result.topk_tokens[..., 0] if result.topk_tokens.size else np.full(values.shape, "", dtype=object)
    hover = {"top-1": top1, "top-1 p": result.topk_probs[..., 0].numpy() if result.topk_probs.numel() else values * 0,
             "target": np.array([targets] * values.shape[0], dtype=object), "target p": result.target_prob.numpy(),
             "target rank (1 = top)": result.target_rank.numpy() + 1, "KL to final": result.kl_to_final.numpy(),
             "entropy": result.entropy.numpy()}
    name = f"{result.lens.capitalize()} lens"
    return lens_grid(values, top1, result.tokens, result.layer_labels, positions=result.positions,
                     title=title or f"{name}: top-1 token per layer, coloured by {bar}", colorbar=bar,
                     hover=hover, top_tokens=result.target_tokens, zmin=zmin, zmax=zmax or 1.0, colorscale=scale)


def trajectory_figure(trajectories: Sequence[TokenTrajectory], title: str | None = None):
    """Probability and rank of one token at one position across layers, one line per lens."""
    if not trajectories:
        raise InvalidInput("No token trajectory to draw.")
    t0 = trajectories[0]
    series = {f"{t.lens} lens": (t.prob.tolist(), t.rank.tolist()) for t in trajectories}
    return token_trajectories(t0.layer_labels, series,
                              title or f"{t0.token!r} at position {t0.position} across layers")


def kl_figure(labels: Sequence[str], series: dict[str, Sequence[float]], title: str = "Mean KL to the final "
              "distribution per layer"):
    """Mean KL(final || lens) per layer, e.g. ``{"logit lens": [...], "tuned lens": [...]}``."""
    return kl_by_layer(labels, series, title)
