"""Activations page: a hook browser. Any site of the current model (``hook_embed``, ``blocks.L.hook_resid_pre``,
``blocks.L.attn.hook_z``, ``blocks.L.mlp.hook_post``, ...) on your prompt, as TransformerLens's
``run_with_cache`` would give it: its shape, a position x feature heatmap (one head at a time for per-head and
attention sites), each position's norm (click a bar to see that position's largest features) and the numbers as
CSV. The layout per site kind is ``probes.activations.browse``'s."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from interp.model import Model
from interp.sites import Site
from interp.token_display import token_pieces
from plots.activations import activation_heatmap
from plots.neurons import token_values_figure
from probes.activations.browse import SiteActivation, available_sites, site_activation
from ui import explain, figures, messages, models, prompts, state

SITE, HEAD, POSITION = "act_site", "act_head", "act_position"


@st.cache_resource(show_spinner="Running the model to that site...", max_entries=32)
def cached_site(model_name: str, prompt: str, site: str) -> SiteActivation:
    """One forward pass (stopped at the site) per (model, prompt, site)."""
    models.FORWARD_PASSES["count"] += 1
    return site_activation(models.cached_model(model_name), prompt, site)


@st.cache_resource(max_entries=4)
def cached_sites(model_name: str) -> list[str]:
    return [str(s) for s in available_sites(models.cached_model(model_name))]


def _default_site(handle: Model, names: list[str]) -> str:
    want = str(Site("resid_post", handle.info.n_layers // 2))
    return want if want in names else names[0]


def _pick_position(point: dict) -> None:
    if (i := figures.clicked_index(point)) is not None:
        state.keep(POSITION, i)


def _position_detail(act: SiteActivation, tokens: list[str], head: int) -> None:
    m = act.matrix(head)  # [rows, cols]
    n = m.shape[0]
    state.bind(POSITION, "position", kind=int, lo=0, hi=max(0, n - 1))
    if POSITION not in st.session_state or not 0 <= int(st.session_state[POSITION]) < n:
        state.keep(POSITION, n - 1)
    pos = int(st.number_input("Position (or click a bar above)", 0, n - 1, step=1, key=POSITION))
    row = m[pos]
    order = np.argsort(-np.abs(row), kind="stable")[:20]
    label = "key" if act.layout == "attention" else "feature"
    st.caption(f"Position {pos} ({tokens[pos]!r}): the {len(order)} {label}s of largest magnitude.")
    figures.table(pd.DataFrame({label: order, "value": row[order]}), key="activations-position")


def draw() -> None:
    st.header("Activations: any hook on your prompt")
    explain.header("Activations")
    handle = state.current_model()
    if handle is None:
        return
    name = state.current_model_name()
    got = prompts.prompt_section(handle, "act_prompt", height=90)
    if got is None:
        return
    prompt, _ = got
    names = messages.guarded(cached_sites, name)
    if not names:
        return
    state.bind(SITE, "site", default=_default_site(handle, names), choices=names, label="site")
    site = st.selectbox("Site (TransformerLens hook name)", names, key=SITE,
                        help=f"Every site {handle.info.name} exposes, model-level first, then block by block.")
    act = messages.guarded(cached_site, name, prompt, site)
    if act is None:
        return
    tokens = [p.text for p in token_pieces(handle.tokenizer, act.token_ids)]
    st.caption(f"`{site}`: shape {list(act.shape)} ({act.layout} layout) · {len(tokens)} tokens · forward passes "
               f"this session: {models.FORWARD_PASSES['count']}")
    if act.layout == "logits":
        st.caption("Logits are as wide as the vocabulary: each position's top next tokens instead of a heatmap.")
        figures.table(act.top_tokens(handle), key="activations-logits")
        return
    head = 0
    if act.n_heads:
        state.bind(HEAD, "head_index", default=0, kind=int, lo=0, hi=act.n_heads - 1, label="head")
        if not 0 <= int(st.session_state[HEAD]) < act.n_heads:
            state.keep(HEAD, 0)
        what = ("key/value heads (grouped-query)" if act.site.kind in ("k", "v", "rot_k")
                and act.n_heads != handle.info.n_heads else "heads")
        head = int(st.selectbox(f"Head ({act.n_heads} {what})", range(act.n_heads), key=HEAD))
    matrix = act.matrix(head)
    attention = act.layout == "attention"
    title = f"{site}" + (f", head {head}" if act.n_heads else "") + " on your prompt"
    figures.figure(activation_heatmap(matrix, tokens, title, col_title="key position" if attention else "feature",
                                      col_tokens=tokens if attention else None,
                                      probability=act.site.kind == "pattern"), key="activations-heatmap")
    norms = act.position_norms()
    figures.figure(token_values_figure(tokens, norms, f"{site}: " + ("entropy of each query's attention (nats)" if
                                                                      attention else "norm at each position"),
                                       "entropy" if attention else "L2 norm", colour="#4c78a8"),
                   key="activations-norms", on_point=_pick_position)
    _position_detail(act, tokens, head)
    with st.expander("All numbers of the drawn matrix"):
        figures.table(act.table(head, max_columns=matrix.shape[1]), key="activations-matrix")
