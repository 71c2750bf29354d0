"""Circuits page: one head's QK and OV circuits over the whole vocabulary (Elhage et al. 2021).

Every head's eigenvalue positivity as clickable layer x head heatmaps (click one to open it), then for the chosen
head: the eigenvalues on the complex plane with what their sign means, how each token ranks in its own row (does
the head copy / attend to the same token), the top token pairs of the full vocabulary, and the circuits between
tokens you type. The numbers come from ``probes.heads.circuits``; no forward pass is run.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
import torch

from interp.model import Model
from interp.prompt_check import example_prompts
from interp.sites import Site
from interp.types import Head
from plots.circuits import circuit_heatmap, diag_rank_figure, eigenvalue_figure, pairs_table_rows
from plots.common import layer_head_heatmap
from plots.select import add_head_picker
from probes.heads.circuits import HeadCircuits, circuit_block, head_circuits, positivity_all
from ui import explain, figures, messages, models, state

#: At most this many tokens in the typed-token block (a heatmap cell stays readable).
MAX_BLOCK_TOKENS = 40


@st.cache_resource(show_spinner="Eigenvalues of every head...", max_entries=8)
def cached_positivity(model_name: str, sha: str, fold: bool) -> tuple[np.ndarray, np.ndarray]:
    ov, qk = positivity_all(models.cached_model(model_name), fold_norms=fold)
    return ov.numpy(), qk.numpy()


@st.cache_resource(show_spinner="Scanning the head's circuits over the vocabulary...", max_entries=32)
def cached_circuits(model_name: str, sha: str, layer: int, head: int, fold: bool) -> HeadCircuits:
    """Once per (model, head, folding): a head switch back is instant."""
    return head_circuits(models.cached_model(model_name), layer, head, fold_norms=fold)


def _tokens(handle: Model, text: str) -> list[int]:
    ids = handle.tokenizer(text, add_special_tokens=False)["input_ids"]
    return list(dict.fromkeys(int(i) for i in ids))[:MAX_BLOCK_TOKENS]  # unique, in order


def _pickers(n_layers: int, n_heads: int) -> tuple[int, int]:
    layer, head = state.layer_head(n_layers, n_heads)
    st.session_state["circuits_layer"], st.session_state["circuits_head"] = layer, head

    def changed() -> None:
        state.select_head(Head(st.session_state["circuits_layer"], st.session_state["circuits_head"]))

    c1, c2 = st.columns(2)
    layer = c1.selectbox("Layer", range(n_layers), key="circuits_layer", on_change=changed)
    head = c2.selectbox("Head", range(n_heads), key="circuits_head", format_func=lambda h: f"{layer}.{h}",
                        on_change=changed)
    return int(layer), int(head)


def _positivity_maps(name: str, handle: Model, fold: bool) -> None:
    got = messages.guarded(cached_positivity, name, handle.info.sha256, fold)
    if got is None:
        return
    ov, qk = got
    cols = st.columns(2)
    for col, values, kind, what in ((cols[0], ov, "OV", "copying (+) / anti-copying (-)"),
                                    (cols[1], qk, "QK", "attends to the same token (+) / avoids it (-)")):
        with col:
            fig = layer_head_heatmap(values, f"{kind} eigenvalue positivity of every head: {what}; click a head",
                                     f"{kind} positivity", zmin=-1.0, zmax=1.0, colorscale="RdBu")
            figures.figure(add_head_picker(fig, f"{kind} positivity"), key=f"circuits-{kind.lower()}-all",
                           on_head=state.select_head)


def _circuit_section(c: HeadCircuits, kind: str, handle: Model, tokens: list[str]) -> None:
    circ = c.ov if kind == "OV" else c.qk
    formula = ("W_E W_V W_O W_U: source token → output logit" if kind == "OV" else
               "W_E W_Q W_Kᵀ W_Eᵀ: query token → key token")
    st.markdown(f"**{kind} circuit** ({formula}). {circ.meaning()} The token itself is the top entry of its own "
                f"row for **{circ.diag_top1:.1%}** "
                f"of tokens (top 10: {circ.diag_top10:.1%}; chance {1 / circ.d_vocab:.2%}).")
    figures.figure(eigenvalue_figure(circ.eigenvalues, f"Head {c.layer}.{c.head} {kind} eigenvalues "
                                                       f"(positivity {circ.positivity:+.2f})"),
                   key=f"circuits-eig-{kind.lower()}")
    rows = pd.DataFrame(pairs_table_rows(circ.top_pairs, tokens))
    rows = rows.rename(columns={"row token": "source" if kind == "OV" else "query",
                                "column token": "output" if kind == "OV" else "key"})
    st.caption(f"Largest {kind} entries over the {circ.rows_scanned:,} {'source' if kind == 'OV' else 'query'} "
               f"tokens scanned (of {circ.d_vocab:,}).")
    figures.table(rows, key=f"circuits-pairs-{kind.lower()}")


def draw() -> None:
    st.header("Circuits: a head's QK and OV over the vocabulary")
    explain.header("Circuits")
    handle = state.current_model()
    if handle is None:
        return
    name = state.current_model_name()
    info = handle.info
    if not handle.has(Site("pattern", 0)):
        st.info(f"{info.name} has no attention heads, so it has no QK or OV circuits.")
        return
    st.caption("The OV circuit says what attending to a token writes (which logits it raises); the QK circuit "
               "which tokens a token attends to, through the direct path from the embeddings (positions, earlier "
               "layers" + (" and rotary position angles" if info.positional == "rotary" else "") + " left out). "
               "Eigenvalue positivity sum(λ)/sum(|λ|): +1 maps every token to itself (copying; attending to the "
               "same token), -1 away from itself, 0 neither (Elhage et al. 2021)."
               + (f" Grouped-query attention: {info.n_heads} query heads share {info.kv_heads} key/value heads, so "
                  "heads of one group share W_K and W_V." if info.kv_heads != info.n_heads else ""))
    state.bind("circuits_fold", "fold", default=False, kind=bool)
    fold = st.checkbox("Fold the norms' gains into the weights", key="circuits_fold",
                       help="Off: weights as they are (the Heads page's copying score). On: multiply in the "
                            "attention norm's and the final norm's gains (their centring and per-token scale stay "
                            "out).")
    _positivity_maps(name, handle, fold)
    layer, head = _pickers(info.n_layers, info.n_heads)
    c = messages.guarded(cached_circuits, name, info.sha256, layer, head, fold)
    if c is None:
        return
    tokens = vocabulary(name)
    st.subheader(f"Head {layer}.{head}")
    cols = st.columns(2)
    for col, kind in zip(cols, ("OV", "QK")):
        with col:
            _circuit_section(c, kind, handle, tokens)
    figures.figure(diag_rank_figure(c.ov.diag_rank, c.qk.diag_rank, info.d_vocab,
                                    f"Head {layer}.{head}: where each token ranks in its own row"),
                   key="circuits-diag")

    st.subheader("Between tokens you choose")
    state.bind("circuits_tokens", "tokens", default=_default_tokens(handle))
    text = st.text_input("Tokens (text; its distinct tokens are used, at most 40)", key="circuits_tokens")
    ids = _tokens(handle, text) if text.strip() else []
    if not ids:
        st.info("Type some text: the circuits are shown between its distinct tokens.")
        return
    strs = [tokens[i] for i in ids]
    cols = st.columns(2)
    for col, kind in zip(cols, ("OV", "QK")):
        block = messages.guarded(circuit_block, c, kind, ids)
        if block is None:
            return
        with col:
            rows, cols_ = ("source token", "output token") if kind == "OV" else ("query token", "key token")
            figures.figure(circuit_heatmap(block, strs, strs, f"Head {layer}.{head} {kind} circuit between your "
                                                             "tokens", rows, cols_, kind),
                           key=f"circuits-block-{kind.lower()}")


def _default_tokens(handle: Model) -> str:
    return next(iter(example_prompts(handle).values()), "")


@st.cache_resource(max_entries=4)
def vocabulary(model_name: str) -> list[str]:
    """Every token of the model as text, decoded once per model."""
    handle = models.cached_model(model_name)
    return handle.to_str_tokens(torch.arange(handle.info.d_vocab))
