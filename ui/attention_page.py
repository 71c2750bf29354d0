"""Attention explorer: a prompt, layer/head pickers, one head's pattern, a layer's heads, token highlighting."""
from __future__ import annotations

import html

import numpy as np
import streamlit as st

from interp.attention import token_scores
from plots.attention import pattern_figure, small_multiples_figure

from . import common

DEFAULT_PROMPT = "The cat sat on the mat. The cat sat on the mat."


def highlighted_text(tokens: list[str], scores: np.ndarray, selected: int, rgb: str) -> str:
    """Tokens as HTML spans shaded by score (CircuitsVis style); the selected token is outlined."""
    spans = []
    for i, (tok, s) in enumerate(zip(tokens, scores)):
        border = "outline:2px solid #d62728;" if i == selected else ""
        spans.append(f'<span title="{i}: {float(s):.3f}" style="background:rgba({rgb},{float(s):.3f});'
                     f'{border}padding:1px 0;white-space:pre-wrap">{html.escape(tok)}</span>')
    return '<div style="font-family:monospace;line-height:1.9">' + "".join(spans) + "</div>"


def draw() -> None:
    st.header("Attention explorer")
    handle = common.current_model()
    if handle is None:  # the reason is already shown
        return
    name = common.current_model_name()  # not None once a model loaded
    info = handle.info
    prompt = st.text_area("Prompt", DEFAULT_PROMPT, key="attn_prompt", height=100,
                          help=f"Up to {info.n_ctx} tokens for {info.name}.")
    pa = common.guarded(common.cached_attention, name, prompt)
    if pa is None:
        return
    c1, c2 = st.columns(2)
    layer = c1.selectbox("Layer", range(info.n_layers), key="attn_layer",
                         index=common.int_query_param("layer", 0, info.n_layers))
    head = c2.selectbox("Head", range(info.n_heads), key="attn_head", format_func=lambda h: f"{layer}.{h}",
                        index=common.int_query_param("head", 0, info.n_heads))
    n = len(pa.tokens)
    st.caption(f"{n} tokens · model {info.name} · forward passes this session: {common.FORWARD_PASSES['count']}")
    pattern = pa.head(layer, head)  # [query_pos, key_pos]
    common.figure(pattern_figure(pattern, pa.tokens, f"Head {layer}.{head} attention pattern"), key="head-pattern")

    st.subheader("What a token attends to / is attended from")
    idx = st.slider("Token position", 0, n - 1, n - 1, key="attn_token")
    st.write(f"Selected token {idx}: `{pa.tokens[idx]!r}`")
    attends_to, attended_from = token_scores(pattern, idx)
    t1, t2 = st.tabs(["attends to", "attended from"])
    t1.markdown(highlighted_text(pa.tokens, attends_to, idx, "31,119,180"), unsafe_allow_html=True)
    t2.markdown(highlighted_text(pa.tokens, attended_from, idx, "255,127,14"), unsafe_allow_html=True)

    st.subheader(f"All heads of layer {layer}")
    common.figure(small_multiples_figure(pa.patterns[layer].astype(np.float32), layer,
                                         max_size=64 if n > 64 else n), key="layer-heads")
