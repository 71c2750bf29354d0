"""Ablate & steer page: edit one head, MLP neuron or residual direction on your prompt (zero, mean or resample
ablation, or steering) and compare the next-token logits before and after, at any position (click a bar of the
KL chart to read another one). The edit is ``probes.interventions.edit``'s, through ``Model.run(edit=...)``."""
from __future__ import annotations

from typing import get_args

import streamlit as st
import torch

from interp.model import Model
from interp.prompt_check import kind_of
from interp.token_display import token_pieces
from interp.types import Head
from plots.interventions import before_after_figure, kl_bars
from probes.interventions.edit import EditMode, InterventionResult, Target, TargetKind, intervene, token_direction
from tasks.repeats import repeated_random_tokens
from training.sae_data import sample_tokens
from ui import explain, figures, messages, models, prompts, state

MODES: tuple[EditMode, ...] = get_args(EditMode)
TARGETS: tuple[TargetKind, ...] = get_args(TargetKind)
MODE_HELP = {"zero": "set to 0 (a direction: its component removed)",
             "mean": "replaced by its mean over a reference batch",
             "resample": "replaced by its value on one reference row (seeded), position by position",
             "steer": "head or neuron: multiplied by the scale; direction: scale x the unit direction added"}
#: Reference batch for mean and resample ablation: this many rows of held-out text (random tokens for models
#: trained on random tokens), as long as the prompt.
REFERENCE_ROWS = 16
POSITION = "ablate_position"


@st.cache_resource(show_spinner="Building the reference batch...", max_entries=8)
def reference_tokens(model_name: str, seq_len: int) -> torch.Tensor:
    """``[REFERENCE_ROWS, seq_len]`` tokens the model normally reads: corpus windows (Othello games for an
    Othello-GPT), or random tokens for a model of random ``t`` tokens."""
    handle = models.cached_model(model_name)
    if kind_of(handle) == "t-tokens":
        half = max(1, (seq_len + 1) // 2)
        rows = repeated_random_tokens(REFERENCE_ROWS, half, handle.info.d_vocab, seed=1, bos=None, low=1)
        return rows[:, :seq_len]
    tokens, _ = sample_tokens(handle, REFERENCE_ROWS, max(2, seq_len), seed=3)
    return tokens


@st.cache_resource(show_spinner="Running the plain and the edited model...", max_entries=32)
def cached_intervention(model_name: str, prompt: str, spec: tuple, mode: str, scale: float, seed: int,
                        _target: Target) -> InterventionResult:
    """Two or three forward passes per (model, prompt, target, mode, scale, seed); reading another position is
    free. ``spec`` keys the target (its tensor is not hashed)."""
    handle = models.cached_model(model_name)
    models.FORWARD_PASSES["count"] += 2
    ref = None
    if mode in ("mean", "resample"):
        n = int(handle.tokenize(prompt).lengths[0])
        ref = reference_tokens(model_name, min(n, handle.info.n_ctx))
    return intervene(handle, prompt, _target, mode, scale=scale, reference=ref, seed=seed)


def _pick_position(point: dict) -> None:
    if (i := figures.clicked_index(point)) is not None:
        state.keep(POSITION, i)


def _target(handle: Model) -> tuple[Target, tuple] | None:
    """The target chosen in the widgets, with a hashable spec; None after saying why it cannot be edited."""
    info = handle.info
    state.bind("ablate_target", "target", default=TARGETS[0], choices=TARGETS)
    kind = st.radio("Edit", TARGETS, horizontal=True, key="ablate_target",
                    format_func=lambda k: {"head": "a head", "neuron": "an MLP neuron",
                                           "direction": "a residual direction"}[k])
    if kind == "head":
        layer, head = state.layer_head(info.n_layers, info.n_heads)
        st.session_state["ablate_layer_h"], st.session_state["ablate_head"] = layer, head

        def changed() -> None:
            state.select_head(Head(st.session_state["ablate_layer_h"], st.session_state["ablate_head"]))

        c1, c2 = st.columns(2)
        layer = int(c1.selectbox("Layer", range(info.n_layers), key="ablate_layer_h", on_change=changed))
        head = int(c2.selectbox("Head", range(info.n_heads), key="ablate_head", on_change=changed,
                                format_func=lambda h: f"{layer}.{h}"))
        return Target("head", layer, head), ("head", layer, head)
    if kind == "neuron":
        if info.attn_only or not info.d_mlp:
            st.info(f"{info.name} is attention-only: it has no MLP neurons to edit. Choose a head or a direction.")
            return None
        state.bind("ablate_layer_n", "layer_mlp", default=0, kind=int, lo=0, hi=info.n_layers - 1,
                   label="neuron layer")
        state.bind("ablate_neuron", "neuron", default=0, kind=int, lo=0, hi=info.d_mlp - 1)
        c1, c2 = st.columns(2)
        layer = int(c1.number_input("Layer", 0, info.n_layers - 1, step=1, key="ablate_layer_n"))
        neuron = int(c2.number_input("Neuron", 0, info.d_mlp - 1, step=1, key="ablate_neuron"))
        return Target("neuron", layer, neuron), ("neuron", layer, neuron)
    state.bind("ablate_layer_d", "layer_resid", default=info.n_layers // 2, kind=int, lo=0, hi=info.n_layers - 1,
               label="direction layer")
    state.bind("ablate_plus", "plus", default=_default_token(handle))
    state.bind("ablate_minus", "minus")
    c1, c2, c3 = st.columns(3)
    layer = int(c1.number_input("Layer (its resid_pre)", 0, info.n_layers - 1, step=1, key="ablate_layer_d"))
    plus = c2.text_input("Towards token", key="ablate_plus", help="Its unembedding W_U[:, token] is the direction; "
                                                                  "one token, a leading space counts.")
    minus = c3.text_input("...minus token (optional)", key="ablate_minus",
                          help="W_U[:, plus] - W_U[:, minus]: the direction that raises one logit against the other.")
    got = messages.guarded(token_direction, handle, plus, minus)
    if got is None:
        return None
    vector, label = got
    return Target("direction", layer, vector=vector, label=label), ("direction", layer, plus, minus)


def _default_token(handle: Model) -> str:
    for text in (" the", " return", "t5", "C4", "1"):
        if len(handle.tokenizer(text, add_special_tokens=False)["input_ids"]) == 1:
            return text
    return handle.tokenizer.decode([min(5, handle.info.d_vocab - 1)])


def draw() -> None:
    st.header("Ablate & steer")
    explain.header("Ablate & steer")
    handle = state.current_model()
    if handle is None:
        return
    name = state.current_model_name()
    st.caption("Knock out or push one component on your own prompt and see what the model then predicts. Zero "
               "ablation removes the component; mean ablation replaces it by its average over held-out text (a "
               "gentler baseline); resample ablation by its value on another text; steering scales it (a head or "
               "neuron) or adds a direction to the residual stream.")
    got = prompts.prompt_section(handle, "ablate_prompt", height=90)
    if got is None:
        return
    prompt, _ = got
    picked = _target(handle)
    if picked is None:
        return
    target, spec = picked
    state.bind("ablate_mode", "mode", default=MODES[0], choices=MODES)
    c1, c2, c3 = st.columns([2, 1, 1])
    mode = c1.radio("Mode", MODES, horizontal=True, key="ablate_mode", help="; ".join(f"{k}: {v}" for k, v in
                                                                                      MODE_HELP.items()))
    state.bind("ablate_scale", "scale", default=5.0 if target.kind == "direction" else 2.0, kind=float,
               lo=-100.0, hi=100.0)
    scale = float(c2.number_input("Scale (steer)", -100.0, 100.0, step=0.5, key="ablate_scale",
                                  disabled=mode != "steer"))
    state.bind("ablate_seed", "seed", default=0, kind=int, lo=0, hi=2**31 - 1)
    seed = int(c3.number_input("Seed (resample)", 0, 2**31 - 1, step=1, key="ablate_seed",
                               disabled=mode != "resample"))
    st.caption(f"{mode}: {MODE_HELP[mode]}.")
    res = messages.guarded(cached_intervention, name, prompt, spec, mode, scale if mode == "steer" else 1.0,
                           seed if mode == "resample" else 0, target)
    if res is None:
        return
    tokens = [p.text for p in token_pieces(handle.tokenizer, res.token_ids)]
    n = len(tokens)
    state.bind(POSITION, "position", default=n - 1, kind=int, lo=0, hi=n - 1)
    if not 0 <= int(st.session_state[POSITION]) < n:
        state.keep(POSITION, n - 1)
    pos = int(st.number_input("Read the next-token distribution at position (or click a bar below)", 0, n - 1,
                              step=1, key=POSITION))
    st.markdown(f"**{res.target}**, {mode}{f' x {scale:g}' if mode == 'steer' else ''}: at position {pos} "
                f"({tokens[pos]!r}) KL(before ‖ after) = **{res.kl_at(pos):.4f} nats**.")
    table = res.top_table(handle, k=10, position=pos)
    cols = st.columns(2)
    with cols[0]:
        figures.figure(before_after_figure(table["token"].head(12), table["p before"].head(12),
                                           table["p after"].head(12),
                                           f"Next token at position {pos}: before and after editing {res.target}"),
                       key="ablate-before-after")
    with cols[1]:
        figures.figure(kl_bars(tokens, res.kl_by_position, pos, "How much the edit changes each position's "
                                                                 "next-token distribution"),
                       key="ablate-kl", on_point=_pick_position)
    figures.table(table, key="ablate-logits")
