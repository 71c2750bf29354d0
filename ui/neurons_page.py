"""Neurons page: one MLP neuron's activation on your prompt token by token, the corpus contexts where it fires
most, and the logits its output weights raise and lower (``probes.neurons.neuron``). The neurons most active on
the prompt are listed; click one to open it. Attention-only models have none, and the page says so."""
from __future__ import annotations

import pandas as pd
import streamlit as st
import torch

from interp.model import Model
from interp.token_display import token_pieces, visible_tokens
from plots import features as fplots
from plots.neurons import logit_bars, token_values_figure
from probes.neurons.neuron import (
    activation_summary,
    layer_activations,
    neuron_logits,
    neuron_on_prompt,
    prompt_neurons,
    top_contexts,
)
from training.sae_data import sample_tokens
from ui import explain, figures, messages, models, prompts, state

SAMPLE_SEQS, SAMPLE_LEN = 64, 64
LAYER, NEURON = "neuron_layer", "neuron_index"


@st.cache_resource(show_spinner="Running the model on your prompt...", max_entries=16)
def cached_prompt_neurons(model_name: str, prompt: str) -> list[dict]:
    models.FORWARD_PASSES["count"] += 1
    return prompt_neurons(models.cached_model(model_name), prompt, k=20)


@st.cache_resource(show_spinner="Reading the layer on a corpus sample...", max_entries=8)
def cached_layer_sample(model_name: str, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(sample tokens [n_seq, pos], mlp_post activations [n_seq, pos, d_mlp]) once per (model, layer)."""
    handle = models.cached_model(model_name)
    tokens, _ = sample_tokens(handle, SAMPLE_SEQS, SAMPLE_LEN)
    return tokens, layer_activations(handle, tokens, layer)


def open_neuron(layer: int, neuron: int) -> None:
    state.keep(LAYER, int(layer))
    state.keep(NEURON, int(neuron))


def _contexts(handle: Model, name: str, layer: int, neuron: int) -> None:
    got = messages.guarded(cached_layer_sample, name, layer)
    if got is None:
        return
    tokens, acts = got
    s = activation_summary(acts, neuron)
    st.markdown(f"**Top-activating contexts** on {tokens.shape[0]} windows of {tokens.shape[1]} held-out corpus "
                f"tokens (peak outlined, context shaded): max {s['max']:.3f}, mean {s['mean']:.3f}, positive on "
                f"{s['positive_share']:.1%} of tokens.")
    for c in top_contexts(acts, tokens, neuron, n=8):
        pieces = [p.text for p in token_pieces(handle.tokenizer, c.token_ids)]
        st.html(f"<div style='margin:2px 0'><b>{c.activation:.2f}</b> &nbsp;"
                f"{fplots.context_html(pieces, c.acts, c.centre, max(s['max'], 1e-9))}</div>")


def draw() -> None:
    st.header("Neurons")
    explain.header("Neurons")
    handle = state.current_model()
    if handle is None:
        return
    name = state.current_model_name()
    info = handle.info
    if info.attn_only or not info.d_mlp:
        st.info(f"{info.name} is attention-only: it has no MLP neurons to look at.")
        return
    st.caption(f"An MLP neuron's activation is its value after the nonlinearity ({info.act_fn or 'the activation'}"
               f"{', gated' if info.gated_mlp else ''}), `blocks.L.mlp.hook_post`; {info.n_layers} layers x "
               f"{info.d_mlp} neurons. Its logit effect is its output weights read through the unembedding (the "
               "direct path only).")
    got = prompts.prompt_section(handle, "neurons_prompt", height=90)
    if got is None:
        return
    prompt, _ = got
    top = messages.guarded(cached_prompt_neurons, name, prompt)
    if top is None:
        return
    state.bind(LAYER, "layer_mlp", kind=int, lo=0, hi=info.n_layers - 1, label="neuron layer")
    state.bind(NEURON, "neuron", kind=int, lo=0, hi=info.d_mlp - 1)
    if LAYER not in st.session_state or NEURON not in st.session_state:
        open_neuron(top[0]["layer"], top[0]["neuron"])  # the most active neuron on this prompt
    with st.expander("The neurons most active on this prompt (click a row to open one)", expanded=True):
        df = pd.DataFrame(top)
        batch = handle.tokenize(prompt)
        shown = visible_tokens(handle.tokenizer, batch.tokens[0, : int(batch.lengths[0])].tolist())
        df["token"] = [shown[p] if p < len(shown) else "" for p in df["position"]]
        figures.table(df, key="neurons-top", on_row=lambda row: open_neuron(row["layer"], row["neuron"]))
    c1, c2 = st.columns(2)
    layer = int(c1.number_input("Layer", 0, info.n_layers - 1, step=1, key=LAYER))
    neuron = int(c2.number_input("Neuron", 0, info.d_mlp - 1, step=1, key=NEURON))
    st.subheader(f"Neuron {neuron} of layer {layer}")
    res = messages.guarded(neuron_on_prompt, handle, prompt, layer, neuron)
    if res is None:
        return
    pieces = [p.text for p in token_pieces(handle.tokenizer, res.token_ids)]
    peak = float(max(res.acts.max(), 1e-9))
    st.html(f"<div style='line-height:2'>{fplots.context_html(pieces, res.acts, res.peak, peak)}</div>")
    figures.figure(token_values_figure(pieces, res.acts, f"Neuron {layer}.{neuron} on your prompt, token by token",
                                       "activation"), key="neurons-prompt")
    cols = st.columns(2)
    with cols[0]:
        _contexts(handle, name, layer, neuron)
    with cols[1]:
        logits = messages.guarded(neuron_logits, handle, layer, neuron)
        if logits is not None:
            dec = handle.tokenizer.decode
            figures.figure(logit_bars([(dec([i]), v) for i, v in logits.promoted],
                                      [(dec([i]), v) for i, v in logits.suppressed],
                                      f"Neuron {layer}.{neuron}: logits its output raises and lowers (W_out · W_U)"),
                           key="neurons-logits")
