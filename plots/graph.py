"""Attribution graphs and information-flow routes as plotly figures, laid out as Neuronpedia's viewer does: one row
per layer (embeddings at the bottom, logits on top), one column per prompt position; nodes sized by influence,
edges coloured by sign and as thick as their weight. Pure: data in, Figure out."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import plotly.graph_objects as go

from plots.common import base_layout
from probes.graph.attribution import AttributionGraph
from probes.graph.prune import Pruned
from probes.graph.routes import ContributionGraph, RouteEdge

KIND_COLOURS = {"feature": "#4c78a8", "error": "#9d9d9d", "embedding": "#54a24b", "logit": "#f58518"}
SUPERNODE_COLOURS = ["#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d", "#eeca3b"]
POSITIVE, NEGATIVE = "#1f77b4", "#d62728"
WIDTH_BINS = 5
NODE_SPACING = 0.3  # column width per node of the most crowded cell (1.0 = one position)


def node_positions(g: AttributionGraph, keep: Iterable[int]) -> tuple[dict[int, tuple[float, float]], list[float]]:
    """(x, y) of each kept node and each position's column centre. A column is as wide as its most crowded cell
    needs (Neuronpedia's viewer does the same), so nodes of one (layer, position) sit side by side; y = row
    (embeddings 0, layer l at l + 1, logits at n_layers + 1)."""
    cells: dict[tuple[int, int], list[int]] = {}
    for i in keep:
        row = 0 if g.kind[i] == "embedding" else g.n_layers + 1 if g.kind[i] == "logit" else int(g.layer[i]) + 1
        cells.setdefault((row, int(g.pos[i])), []).append(i)
    n = len(g.tokens)
    crowd = [max([len(v) for (r, p), v in cells.items() if p == pos] or [1]) for pos in range(n)]
    widths = [max(1.0, NODE_SPACING * k) for k in crowd]
    starts = np.concatenate([[0.0], np.cumsum(widths)[:-1]])
    out = {}
    for (row, pos), nodes in cells.items():
        nodes.sort(key=lambda i: (g.kind[i] != "feature", int(g.index[i])))
        k, lo, w = len(nodes), starts[pos], widths[pos]
        for j, i in enumerate(nodes):
            out[i] = (float(lo + w * (j + 0.5) / k), float(row))
    return out, [float(lo + w / 2) for lo, w in zip(starts, widths)]


def connected(edge_mask: np.ndarray, start: int) -> set[int]:
    """Nodes on a path through ``start``: its ancestors and descendants along kept edges (mask [target, source])."""
    out = {start}
    for direction in (0, 1):
        frontier = [start]
        while frontier:
            i = frontier.pop()
            nxt = np.nonzero(edge_mask[:, i] if direction == 0 else edge_mask[i, :])[0]
            for j in nxt.tolist():
                if j not in out:
                    out.add(j)
                    frontier.append(j)
    return out


def attribution_figure(g: AttributionGraph, p: Pruned, *, selected: int | None = None,
                       pinned: Iterable[str] = (), supernodes: Iterable[list[str]] = (), max_edges: int = 1500,
                       title: str = "") -> go.Figure:
    """The pruned graph: clickable nodes (``customdata`` = node index), edges by sign and weight; the selected
    node's paths highlighted, pinned nodes outlined, supernode members coloured by group."""
    keep = p.node_mask.nonzero().flatten().tolist()
    xy, centres = node_positions(g, keep)
    edge_mask = p.edge_mask.numpy()
    on_path = connected(edge_mask, selected) if selected is not None and selected in xy else None
    tgt, src = np.nonzero(edge_mask)
    w = g.adjacency.numpy()[tgt, src]
    if len(w) > max_edges:
        top = np.argsort(-np.abs(w), kind="stable")[:max_edges]
        tgt, src, w = tgt[top], src[top], w[top]
    fig = go.Figure()
    wmax = float(np.abs(w).max()) if len(w) else 1.0
    bins = np.minimum((np.abs(w) / max(wmax, 1e-12) * WIDTH_BINS).astype(int), WIDTH_BINS - 1)
    for lit in (False, True):
        for sign, colour in ((1, POSITIVE), (-1, NEGATIVE)):
            for b in range(WIDTH_BINS):
                sel = (bins == b) & ((w > 0) if sign > 0 else (w <= 0))
                if on_path is not None:
                    hit = np.array([int(t) in on_path and int(s) in on_path for t, s in zip(tgt, src)], dtype=bool)
                    sel &= hit if lit else ~hit
                elif lit:
                    continue
                if not sel.any():
                    continue
                xs, ys = [], []
                for t, s in zip(tgt[sel], src[sel]):
                    (x0, y0), (x1, y1) = xy[int(s)], xy[int(t)]
                    xs += [x0, x1, None]
                    ys += [y0, y1, None]
                fade = on_path is not None and not lit
                fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip", showlegend=False,
                                         line=dict(color=colour, width=0.6 + 1.2 * b + (1.0 if lit else 0.0)),
                                         opacity=0.07 if fade else 0.85 if lit else 0.4))
    pinned = set(pinned)
    group_of = {nid: k for k, sn in enumerate(supernodes) for nid in sn[1:]}
    infl = p.influence.numpy()
    top_infl = float(max((infl[i] for i in keep if g.kind[i] != "logit"), default=1.0)) or 1.0
    for kind in ("embedding", "error", "feature", "logit"):
        idx = [i for i in keep if g.kind[i] == kind]
        if not idx:
            continue
        ids = [g.node_id(i) for i in idx]
        size = [24.0 if kind == "logit" else 7 + 23 * float(np.sqrt(max(infl[i], 0) / top_infl)) for i in idx]
        colour = [SUPERNODE_COLOURS[group_of[n] % len(SUPERNODE_COLOURS)] if n in group_of else KIND_COLOURS[kind]
                  for n in ids]
        line_w = [4 if i == selected else 2.5 if n in pinned else 0.5 for i, n in zip(idx, ids)]
        line_c = ["#d62728" if i == selected else "#111111" if n in pinned else "#ffffff" for i, n in zip(idx, ids)]
        opacity = [1.0 if on_path is None or i in on_path else 0.25 for i in idx]
        hover = [f"{g.label(i)}<br>{kind}; activation {g.activation[i]:.3g}; influence {infl[i]:.3g}"
                 f"<br>id {n}" for i, n in zip(idx, ids)]
        fig.add_trace(go.Scatter(
            x=[xy[i][0] for i in idx], y=[xy[i][1] for i in idx], mode="markers", name=kind, customdata=idx,
            text=hover, hovertemplate="%{text}<extra></extra>",
            marker=dict(size=size, color=colour, opacity=opacity, line=dict(width=line_w, color=line_c),
                        symbol="square" if kind == "error" else "diamond" if kind == "logit" else "circle")))
    rows = ["emb"] + [f"L{la}" for la in range(g.n_layers)] + ["logits"]
    base_layout(fig, title or f"Attribution graph: {len(keep)} nodes, {int(edge_mask.sum())} edges",
                height=170 + 95 * len(rows), clickmode="event+select", dragmode="pan",
                xaxis=dict(tickvals=centres, ticktext=[f"{t!r}"[1:-1][:10] for t in g.str_tokens],
                           tickangle=-60, range=[-0.2, max([centres[-1]] + [x for x, _ in xy.values()]) + 0.6],
                           showgrid=False, zeroline=False),
                yaxis=dict(tickvals=list(range(len(rows))), ticktext=rows, range=[-0.6, len(rows) - 0.4],
                           showgrid=True, zeroline=False),
                legend=dict(orientation="h", y=1.06, x=0.5, xanchor="center"))
    return fig


def routes_figure(cg: ContributionGraph, edges: list[RouteEdge], title: str = "") -> go.Figure:
    """Information-flow routes: the residual stream at each (layer, position) as rows, attention edges blue,
    MLP edges orange, residual edges grey, widths by importance."""
    def xy(node: tuple[str, int, int]) -> tuple[float, float]:
        kind, layer, pos = node
        if kind == "resid":
            return float(pos), 2.0 * layer
        if kind == "mid":
            return float(pos), 2.0 * layer + 1
        return pos + 0.3, 2.0 * layer + 1.5

    fig = go.Figure()
    colours = {"attn": "#4c78a8", "residual": "#b0b0b0", "mlp": "#f58518"}
    for kind, colour in colours.items():
        for b in range(WIDTH_BINS):
            sel = [e for e in edges if e.kind == kind and min(int(e.weight * WIDTH_BINS), WIDTH_BINS - 1) == b]
            if not sel:
                continue
            xs, ys = [], []
            for e in sel:
                (x0, y0), (x1, y1) = xy(e.source), xy(e.target)
                xs += [x0, x1, None]
                ys += [y0, y1, None]
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip", showlegend=b == WIDTH_BINS - 1,
                                     name=f"{kind} edge", line=dict(color=colour, width=0.8 + 1.6 * b), opacity=0.7))
    nodes = sorted({e.source for e in edges} | {e.target for e in edges})
    if nodes:
        fig.add_trace(go.Scatter(
            x=[xy(n)[0] for n in nodes], y=[xy(n)[1] for n in nodes], mode="markers", showlegend=False,
            marker=dict(size=[9 if n[0] == "resid" else 6 for n in nodes],
                        color=["#333333" if n[0] == "resid" else "#4c78a8" if n[0] == "mid" else "#f58518"
                               for n in nodes]),
            text=[f"{k} layer {la} position {p} {cg.str_tokens[p]!r}" for k, la, p in nodes],
            hovertemplate="%{text}<extra></extra>"))
    n = len(cg.str_tokens)
    rows = [f"resid {la}" if r % 2 == 0 else f"attn {la}" for r in range(2 * cg.n_layers + 1) for la in [r // 2]]
    base_layout(fig, title or f"Information-flow routes: {len(edges)} edges", height=200 + 55 * len(rows),
                xaxis=dict(tickvals=list(range(n)), ticktext=[f"{t!r}"[1:-1][:10] for t in cg.str_tokens],
                           tickangle=-60, range=[-0.7, n - 0.3], showgrid=False, zeroline=False),
                yaxis=dict(tickvals=list(range(len(rows))), ticktext=rows, zeroline=False),
                legend=dict(orientation="h", y=1.04, x=0.5, xanchor="center"))
    return fig


def grouped_bars(categories: list[str], series: dict[str, list[float]], title: str, y_title: str = "") -> go.Figure:
    """One bar group per category, one bar per series (e.g. per-layer normalised MSE of two transcoder sets)."""
    fig = go.Figure([go.Bar(name=name, x=categories, y=values) for name, values in series.items()])
    return base_layout(fig, title, barmode="group", yaxis=dict(title=y_title),
                       legend=dict(orientation="h", y=1.08, x=0.5, xanchor="center"))
