"""Attention explorer: a prompt, layer/head pickers, one head's pattern, the prompt's tokens (hover one to see its
attention, click to lock), a layer's heads and every layer x head as clickable small multiples."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from interp.model import Model
from interp.token_display import token_pieces
from interp.types import Head
from plots.attention_grid import all_heads_figure, head_pattern_figure, layer_heads_figure
from plots.tokens import MAX_STRIP_TOKENS, attention_strip_html, strip_height
from probes.heads.strongest import strongest_head
from ui import explain, figures, messages, models, prompts, state

#: Kept for other modules that import it; the page's default prompt is an example fitting the current model.
DEFAULT_PROMPT = "The cat sat on the mat. The cat sat on the mat."


def _pick(layer_key: str, head_key: str, n_layers: int, n_heads: int) -> tuple[int, int]:
    """Layer and head pickers bound to the shared selection (click-to-select elsewhere moves them too)."""
    layer, head = state.layer_head(n_layers, n_heads)
    st.session_state[layer_key], st.session_state[head_key] = layer, head

    def changed() -> None:
        state.select_head(Head(st.session_state[layer_key], st.session_state[head_key]))

    c1, c2 = st.columns(2)
    layer = c1.selectbox("Layer", range(n_layers), key=layer_key, on_change=changed)
    head = c2.selectbox("Head", range(n_heads), key=head_key, format_func=lambda h: f"{layer}.{h}", on_change=changed)
    return int(layer), int(head)


@st.cache_resource(max_entries=16)
def _layer_heads(model_name: str, prompt: str, layer: int) -> go.Figure:
    """A layer's small multiples, built once per (model, prompt, layer): a head switch reuses them."""
    pa = models.cached_attention(model_name, prompt)
    return layer_heads_figure(pa.patterns[layer].astype(np.float32), layer, max_size=min(len(pa.tokens), 64))


@st.cache_resource(max_entries=8)
def _all_heads(model_name: str, prompt: str) -> go.Figure:
    """Every layer x head, built once per (model, prompt)."""
    pa = models.cached_attention(model_name, prompt)
    return all_heads_figure(pa.patterns, max_size=min(len(pa.tokens), 24))


@st.fragment
def _one_head(handle: Model, name: str, prompt: str, drawn_layer: int) -> None:
    """The pickers, the head's pattern and the token strip: a head switch reruns only this part of the page (no
    forward pass, the other figures untouched); a layer switch reruns the page for that layer's small multiples."""
    info = handle.info
    pa = models.cached_attention(name, prompt)
    layer, head = _pick("attn_layer", "attn_head", info.n_layers, info.n_heads)
    if layer != drawn_layer:
        st.rerun()
    n = len(pa.tokens)
    st.caption(f"{n} tokens · model {info.name} · forward passes this session: {models.FORWARD_PASSES['count']}")
    pattern = pa.head(layer, head)  # [query_pos, key_pos]
    pieces = token_pieces(handle.tokenizer, pa.token_ids)  # split characters as bytes, not "�"
    figures.figure(head_pattern_figure(pattern, [p.text for p in pieces], f"Head {layer}.{head} attention pattern"),
                  key="head-pattern")

    st.subheader("The prompt's tokens: hover one to see what it attends to, click to lock")
    st.iframe(attention_strip_html(pieces, pattern, f"{layer}.{head}"), height=strip_height(pieces[:MAX_STRIP_TOKENS]))
    st.caption("Spaces show as ·, tabs as →, newlines as ↵; ⟨c3⟩ marks bytes of a character split over tokens "
               "(hover for the whole character); dashed boxes are special tokens.")
    state.sync_url(str(st.session_state.get("page", "Attention")))  # a fragment run does not reach app.py's


def _strongest(pa, first_is_bos: bool) -> None:
    """Open on the prompt's strongest head when nothing is chosen yet; say why, and offer it when another is shown."""
    best = strongest_head(pa.patterns, skip_first=first_is_bos, first_token="the first token (BOS)" if first_is_bos
                          else "the first token")
    ss = st.session_state
    auto = not ss.get(state.CHOSEN)  # no link, click or picker yet
    if auto:
        state.select_head(best.head, chosen=False)
    shown = (ss.get(state.LAYER, 0), ss.get(state.HEAD, 0))
    if shown == tuple(best.head):
        st.info(("Opened on the strongest head for this prompt. " if auto else "") + best.why)
    else:
        st.button(f"Show the strongest head on this prompt: {best.head} ({best.score:.0%})", key="attn_strongest",
                  on_click=state.select_head, args=(best.head,), help=best.why)


def draw() -> None:
    st.header("Attention explorer")
    explain.header("Attention")
    handle = state.current_model()
    if handle is None:  # the reason is already shown
        return
    name = state.current_model_name()  # not None once a model loaded
    info = handle.info
    got = prompts.prompt_section(handle, "attn_prompt")
    if got is None:
        return
    prompt, _ = got
    pa = messages.guarded(models.cached_attention, name, prompt)
    if pa is None:
        return
    _strongest(pa, handle.bos_token_id is not None)
    layer, _ = state.layer_head(info.n_layers, info.n_heads)
    _one_head(handle, name, prompt, layer)

    st.subheader(f"All heads of layer {layer}")
    figures.figure(_layer_heads(name, prompt, layer), key="layer-heads", on_head=state.select_head)
    st.subheader("Every layer and head on this prompt")
    figures.figure(_all_heads(name, prompt), key="all-heads", on_head=state.select_head)
