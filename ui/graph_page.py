"""Graph page: the circuit of one prompt, feature by feature (attribution graphs), or token by token and head by head
(information-flow routes).

Attribution graph: pick a transcoder set beside the model (``models/<model>/transcoders/``) or open a graph JSON
made elsewhere (Neuronpedia's schema, e.g. circuit-tracer on a GPU); the graph is computed once per (model,
transcoder, prompt, cap) and cached; the target logit and the node and edge thresholds only re-prune it. Click a
node for its card (top-activating contexts from the transcoder's dashboard, built once per transcoder and kept
on disk; the tokens it promotes and suppresses; its edges in and out) and to highlight its paths; pin nodes and
group them into supernodes; download the view as JSON (Neuronpedia's schema), HTML or PNG. Routes: Ferrando &
Voita's contribution graph from one forward pass, pruned at a threshold. The view lives in the URL.
"""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
import torch

from interp.errors import InvalidInput
from interp.files import atomic_write_bytes
from interp.model import Model
from learned.sidecars import SIDECAR_CACHE
from learned.transcoder import Transcoder
from learned.transcoder_files import list_transcoders, read_transcoder_dir
from plots.features import context_html
from plots.graph import attribution_figure, routes_figure
from probes.graph.attribution import AttributionGraph, GraphSettings, attribute
from probes.graph.dashboard import FeatureDashboard, build_dashboard, feature_logit_effects
from probes.graph.neuronpedia import from_neuronpedia, to_neuronpedia
from probes.graph.prune import Pruned, total_effects
from probes.graph.routes import DEFAULT_THRESHOLD, ContributionGraph, contribution_graph
from training.sae_data import sample_tokens
from ui import explain, figures, messages, models, prompts, state

MODES = {"graph": "Attribution graph", "routes": "Information-flow routes"}
IMPORT = "(open a graph JSON)"
NODE, PINNED, SUPERNODES = "graph_node", "graph_pinned", "graph_supernodes"
DASHBOARD_CACHE = SIDECAR_CACHE / "graph-dashboards"
REPLACEMENT_HELP = ("Of everything that reaches the logits along every path (each node's inputs counted as shares), "
                    "the part that starts at the prompt's tokens rather than at error nodes (what the transcoders "
                    "miss). 1: the transcoders explain the computation end to end.")
COMPLETENESS_HELP = ("The share of each node's inputs that come from features and tokens rather than error nodes, "
                     "averaged with each node's influence as its weight: how much of each step is explained.")


# ---------------------------------------------------------------- cached work


@st.cache_resource(show_spinner="Loading the transcoders...", max_entries=4)
def cached_transcoder(path: str, stamp: float) -> Transcoder:
    return read_transcoder_dir(path)


@st.cache_resource(show_spinner=False, max_entries=6)
def cached_graph(model_name: str, tc_path: str, stamp: float, prompt: str, max_nodes: int) -> AttributionGraph:
    handle = models.cached_model(model_name)
    tc = cached_transcoder(tc_path, stamp)
    bar = st.progress(0.0, text="Computing the attribution graph...")
    try:
        return attribute(handle, tc, prompt, GraphSettings(max_feature_nodes=max_nodes),
                         transcoder_name=Path(tc_path).name, progress=lambda f, m: bar.progress(f, text=m))
    finally:
        bar.empty()


@st.cache_resource(show_spinner="Reading the graph JSON...", max_entries=4)
def cached_import(digest: str, _raw: bytes) -> AttributionGraph:
    return from_neuronpedia(_raw)


@st.cache_resource(show_spinner=False, max_entries=32)
def cached_pruned(key: str, _g: AttributionGraph, node_th: float, edge_th: float, target: int) -> Pruned:
    return _g.pruned(node_th, edge_th, target)


@st.cache_resource(show_spinner=False, max_entries=32)
def cached_scores(key: str, _g: AttributionGraph, target: int) -> tuple[float, float]:
    return _g.scores(target)


@st.cache_resource(show_spinner="Building the transcoder's feature dashboard (once)...", max_entries=4)
def cached_dashboard(model_name: str, tc_path: str, stamp: float) -> FeatureDashboard:
    """Top contexts of every feature on a held-out sample, kept on disk per (model weights, transcoder files)."""
    handle = models.cached_model(model_name)
    key = hashlib.sha256(f"{handle.info.sha256}|{Path(tc_path).resolve()}|{stamp}".encode()).hexdigest()[:16]
    path = DASHBOARD_CACHE / f"{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                return FeatureDashboard.from_arrays(dict(z))
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)
    tokens, _ = sample_tokens(handle, 64, 64)
    dash = build_dashboard(handle, cached_transcoder(tc_path, stamp), tokens)
    buf = io.BytesIO()
    np.savez(buf, **dash.to_arrays())
    try:
        DASHBOARD_CACHE.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buf.getvalue())
    except OSError:
        pass  # a read-only checkout still shows the dashboard, it is rebuilt next time
    return dash


@st.cache_resource(show_spinner="Running the model...", max_entries=8)
def cached_routes(model_name: str, prompt: str) -> ContributionGraph:
    models.FORWARD_PASSES["count"] += 1
    return contribution_graph(models.cached_model(model_name), prompt)


# ---------------------------------------------------------------- attribution graph


def _source(handle: Model, name: str) -> tuple[str, Path | None]:
    """The chosen transcoder folder (or IMPORT)."""
    found = list_transcoders(handle.info.path or name) if handle.info.path else list_transcoders(name)
    options = [p.name for p in found] + [IMPORT]
    ss = st.session_state
    state.bind("graph_source", "tc", label="transcoders")
    if ss.get("graph_source") not in options:
        if ss.get("graph_source"):
            st.warning(f"No transcoder {messages.capped(ss['graph_source'], 60)!r} beside {handle.info.name}; "
                       "showing the first one.")
        ss["graph_source"] = options[0]
    choice = st.selectbox("Transcoders", options, key="graph_source",
                          help="Transcoder sets beside the model (models/<model>/transcoders/), or a graph JSON in "
                               "Neuronpedia's schema computed elsewhere.")
    if choice == IMPORT:
        return IMPORT, None
    return choice, next(p for p in found if p.name == choice)


def _graph(handle: Model, model_name: str, prompt: str) -> tuple[AttributionGraph, str, Path | None] | None:
    choice, path = _source(handle, model_name)
    if path is None:
        if not list_transcoders(handle.info.path or model_name):
            st.info(f"{handle.info.name} has no transcoders beside it. Train a set with `python -m experiments run "
                    f"train-transcoder --model {handle.info.name} --set out=<model dir>/transcoders/<name>`, or open "
                    "a graph JSON.")
        up = st.file_uploader("Graph JSON (Neuronpedia's schema)", type=["json"], key="graph_upload")
        if up is None:
            return None
        raw = up.getvalue()
        g = messages.guarded(cached_import, hashlib.sha256(raw).hexdigest(), raw)
        return (g, "import-" + hashlib.sha256(raw).hexdigest()[:12], None) if g is not None else None
    c1, _ = st.columns([1, 3])
    max_nodes = int(c1.number_input("Most features in the graph", 16, 8192, 1024, step=64, key="graph_max_nodes",
                                    help="Features are visited in order of their estimated influence on the "
                                         "logits; each costs a row of a batched backward pass."))
    stamp = (path / "cfg.json").stat().st_mtime if (path / "cfg.json").exists() else path.stat().st_mtime
    tc = messages.guarded(cached_transcoder, str(path), stamp)
    if tc is None:
        return None
    g = messages.guarded(cached_graph, model_name, str(path), stamp, prompt, max_nodes)
    if g is None:
        return None
    return g, f"{model_name}|{path}|{stamp}|{prompt}|{max_nodes}", path


def _scores(key: str, g: AttributionGraph, p: Pruned, target: int) -> None:
    full = cached_scores(key, g, target)
    pruned = g.scores(target, p)
    cols = st.columns(4)
    cols[0].metric("Replacement score", f"{full[0]:.3f}", help=REPLACEMENT_HELP)
    cols[1].metric("Completeness score", f"{full[1]:.3f}", help=COMPLETENESS_HELP)
    cols[2].metric("Replacement (pruned)", f"{pruned[0]:.3f}", help="The same, on the nodes and edges shown.")
    cols[3].metric("Completeness (pruned)", f"{pruned[1]:.3f}", help="The same, on the nodes and edges shown.")
    st.caption("**Replacement score**: " + REPLACEMENT_HELP + " **Completeness**: " + COMPLETENESS_HELP)


def _click(g: AttributionGraph):
    def on_point(point: dict) -> None:
        idx = figures.clicked_index(point)
        if idx is not None and 0 <= idx < g.n_nodes:
            state.keep(NODE, g.node_id(idx))
    return on_point


def _pins(g: AttributionGraph, keep: list[int]) -> tuple[list[str], list[list[str]]]:
    ss = st.session_state
    ids = {g.node_id(i): g.label(i) for i in keep}
    ss.setdefault(SUPERNODES, list(g.meta.get("supernodes", [])))
    if PINNED not in ss:
        ss[PINNED] = [n for n in g.meta.get("pinned", []) if n in ids]
    ss[PINNED] = [n for n in ss[PINNED] if n in ids]
    with st.expander("Pinned nodes and supernodes", expanded=bool(ss[PINNED] or ss[SUPERNODES])):
        st.multiselect("Pinned nodes", list(ids), key=PINNED, format_func=lambda n: ids.get(n, n),
                       help="Pinned nodes are outlined in the graph and saved in the JSON (qParams.pinnedIds).")
        c1, c2 = st.columns([2, 1])
        name = c1.text_input("Supernode name", key="graph_sn_name", placeholder="e.g. 'the answer name'")
        if c2.button("Group pinned nodes into a supernode", key="graph_sn_add", disabled=not ss[PINNED]):
            label = (name or f"supernode {len(ss[SUPERNODES]) + 1}").strip()[:60]
            ss[SUPERNODES] = ss[SUPERNODES] + [[label, *ss[PINNED]]]
        for k, sn in enumerate(ss[SUPERNODES]):
            row = st.container(horizontal=True)
            row.markdown(f"**{sn[0]}**: " + ", ".join(ids.get(n, n) for n in sn[1:]))
            if row.button("Ungroup", key=f"graph_sn_del_{k}"):
                ss[SUPERNODES] = ss[SUPERNODES][:k] + ss[SUPERNODES][k + 1:]
                st.rerun()
    return list(ss[PINNED]), [list(s) for s in ss[SUPERNODES]]


def _edges_table(g: AttributionGraph, p: Pruned, i: int, incoming: bool) -> pd.DataFrame:
    mask = p.edge_mask[i] if incoming else p.edge_mask[:, i]
    others = mask.nonzero().flatten().tolist()
    w = [float(g.adjacency[i, j] if incoming else g.adjacency[j, i]) for j in others]
    order = np.argsort(-np.abs(np.array(w)), kind="stable")[:12] if w else []
    return pd.DataFrame({"node": [g.label(others[k]) for k in order], "weight": [round(w[k], 4) for k in order]})


@st.cache_resource(show_spinner=False, max_entries=16)
def cached_effects(key: str, _g: AttributionGraph, target: int) -> np.ndarray:
    """Every node's total effect (all paths of the linearised graph) on the target logit node."""
    logit = _g.slice_of("logit").start + target
    return total_effects(_g.adjacency, torch.tensor(_g.activation, dtype=torch.float32), logit,
                         _g.count("feature")).numpy()


def _card(handle: Model, model_name: str, g: AttributionGraph, p: Pruned, i: int, path: Path | None,
          effect: float) -> None:
    kind = g.kind[i]
    st.subheader(f"Node: {g.label(i)}")
    cols = st.columns(5)
    cols[0].metric("kind", kind)
    cols[1].metric("activation" if kind == "feature" else "error norm" if kind == "error" else "value",
                   f"{g.activation[i]:.3g}")
    cols[2].metric("influence", f"{float(p.influence[i]):.3g}", help="Its share of the target logit's inputs, "
                                                                      "along every path.")
    cols[3].metric("kept at", f"{float(p.cumulative[i]):.0%}", help="The cumulative influence at which it entered.")
    cols[4].metric("effect on the target logit", f"{effect:+.3g}",
                   help="This node's contribution to the target's demeaned logit, summed over every path of the "
                        "linearised graph (removing the node changes the logit by minus this; features pass changes "
                        "on one for one, attention and norms frozen).")
    if kind == "feature" and path is not None:
        stamp = (path / "cfg.json").stat().st_mtime if (path / "cfg.json").exists() else path.stat().st_mtime
        tc = cached_transcoder(str(path), stamp)
        layer, feat = int(g.layer[i]), int(g.index[i])
        dash = messages.guarded(cached_dashboard, model_name, str(path), stamp)
        if dash is not None:
            st.markdown(f"**Top-activating contexts** (held-out sample; fires on {dash.density[layer, feat]:.2%} of "
                        "its tokens; peak outlined)")
            ctxs = dash.contexts(layer, feat, handle.tokenizer)
            if not ctxs:
                st.info("This feature never fires on the sample.")
            top = max((c.activation for c in ctxs), default=1.0)
            for c in ctxs:
                st.html(f"<div style='margin:2px 0'><b>{c.activation:.2f}</b> &nbsp;"
                        f"{context_html(c.tokens, c.acts, c.centre, top)}</div>")
        up, down = feature_logit_effects(handle, tc, layer, feat)
        c1, c2 = st.columns(2)
        c1.markdown("**Promotes** (decoder through the unembedding)")
        c1.dataframe(pd.DataFrame(up, columns=["token", "logit effect"]), hide_index=True, width="stretch")
        c2.markdown("**Suppresses**")
        c2.dataframe(pd.DataFrame(down, columns=["token", "logit effect"]), hide_index=True, width="stretch")
    elif kind == "feature":
        st.info("An imported graph: the feature's dashboard needs its transcoder, which this file does not carry.")
    c1, c2 = st.columns(2)
    c1.markdown("**Edges in** (strongest kept)")
    c1.dataframe(_edges_table(g, p, i, True), hide_index=True, width="stretch")
    c2.markdown("**Edges out**")
    c2.dataframe(_edges_table(g, p, i, False), hide_index=True, width="stretch")


def _attribution(handle: Model, model_name: str, prompt: str) -> None:
    got = _graph(handle, model_name, prompt)
    if got is None:
        return
    g, key, path = got
    ss = st.session_state
    state.bind("graph_target", "target", kind=int, lo=0, hi=len(g.logit_tokens) - 1, label="target logit")
    if ss.get("graph_target") not in range(len(g.logit_tokens)):
        ss["graph_target"] = 0
    c1, c2, c3 = st.columns(3)
    target = int(c1.selectbox("Target logit", range(len(g.logit_tokens)), key="graph_target",
                              format_func=lambda j: f"{g.logit_strs[j]!r} (p={g.logit_probabilities[j]:.3f})",
                              help="The graph is pruned for its influence on this next-token logit."))
    state.bind("graph_node_th", "node_th", kind=float, lo=0.05, hi=1.0, default=g.settings.node_threshold)
    state.bind("graph_edge_th", "edge_th", kind=float, lo=0.5, hi=1.0, default=g.settings.edge_threshold)
    node_th = float(c2.slider("Node threshold (cumulative influence kept)", 0.05, 1.0, step=0.01, key="graph_node_th"))
    edge_th = float(c3.slider("Edge threshold (cumulative influence kept)", 0.5, 1.0, step=0.005,
                              key="graph_edge_th"))
    p = messages.guarded(cached_pruned, key, g, node_th, edge_th, target)
    if p is None:
        return
    _scores(key, g, p, target)
    for note in g.notes:
        st.caption(note)
    keep = p.node_mask.nonzero().flatten().tolist()
    ids = {g.node_id(i): i for i in keep}
    state.bind(NODE, "node", label="node")
    if ss.get(NODE) and ss[NODE] not in ids:
        st.caption(f"The selected node {messages.capped(ss[NODE], 40)} is pruned at these thresholds.")
    selected = ids.get(ss.get(NODE) or "")
    pinned, supernodes = _pins(g, keep)
    fig = attribution_figure(g, p, selected=selected, pinned=pinned, supernodes=supernodes,
                             title=f"{g.model_name}: {len(keep)} of {g.n_nodes} nodes, "
                                   f"{int(p.edge_mask.sum())} edges (target {g.logit_strs[target]!r})")
    st.caption("Click a node for its card and to highlight its paths. Rows: layers (embeddings at the bottom, logits "
               "on top); columns: positions. Blue edges raise their target, red ones lower it.")
    figures.figure(fig, "graph", on_point=_click(g))
    data = to_neuronpedia(g, node_threshold=node_th, edge_threshold=edge_th, target=target, pinned=pinned,
                          supernodes=supernodes)
    st.download_button("Download graph JSON (Neuronpedia's schema)", json.dumps(data), file_name="graph.json",
                       mime="application/json", key="graph_json", on_click="ignore")
    if selected is not None:
        _card(handle, model_name, g, p, selected, path, float(cached_effects(key, g, target)[selected]))
    else:
        st.info("Click a node to open its card.")


# ---------------------------------------------------------------- routes


def _routes(handle: Model, model_name: str, prompt: str) -> None:
    cg = messages.guarded(cached_routes, model_name, prompt)
    if cg is None:
        return
    state.bind("graph_route_th", "route_th", kind=float, lo=0.01, hi=0.5, default=DEFAULT_THRESHOLD)
    c1, c2 = st.columns(2)
    th = float(c1.slider("Importance threshold", 0.01, 0.5, step=0.01, key="graph_route_th",
                         help="Keep an edge when its share of its target's sum is at least this (the paper: 0.04)."))
    n = len(cg.str_tokens)
    pos = int(c2.selectbox("Route into position", range(n), index=n - 1, key="graph_route_pos",
                           format_func=lambda i: f"{i}: {cg.str_tokens[i]!r}"))
    edges = cg.route(pos, th)
    figures.figure(routes_figure(cg, edges, title=f"{model_name}: routes into position {pos} (threshold {th:.2f})"),
                   "routes")
    attn = sorted((e for e in edges if e.kind == "attn"), key=lambda e: -e.weight)[:20]
    st.markdown("**Strongest attention edges** (and the head carrying most of each)")
    rows = [{"layer": e.target[1], "from": f"{e.source[2]}: {cg.str_tokens[e.source[2]]!r}",
             "to": f"{e.target[2]}: {cg.str_tokens[e.target[2]]!r}", "importance": round(e.weight, 3),
             "top head": f"{e.target[1]}.{int(np.argmax(e.heads))}"} for e in attn]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


# ---------------------------------------------------------------- the page


def draw() -> None:
    st.header("Graph: the circuit of one prompt")
    explain.header("Graph")
    st.caption("Attribution graphs (Ameisen et al. 2025, circuit-tracer): every MLP replaced by transcoder features "
               "plus error nodes, attention and norms frozen, so the prompt's computation is a graph of direct "
               "effects from token embeddings through features to the next-token logits. Information-flow routes "
               "(Ferrando & Voita 2024) need no transcoder: which tokens and heads each position's residual stream "
               "is built from.")
    handle = state.current_model()
    if handle is None:
        return
    model_name = state.current_model_name() or handle.info.name
    state.bind("graph_mode", "gmode", choices=tuple(MODES), label="mode")
    mode = st.radio("Mode", list(MODES), format_func=MODES.__getitem__, horizontal=True, key="graph_mode")
    got = prompts.prompt_section(handle, "graph_prompt", height=80)
    if got is None:
        return
    prompt = got[0]
    try:
        (_routes if mode == "routes" else _attribution)(handle, model_name, prompt)
    except InvalidInput as e:
        messages.show_error(e)
