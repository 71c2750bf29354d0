"""Logit lens page: what each layer would predict (nostalgebraist's grid), one token across layers, logit vs tuned lens.

One forward pass per (model, prompt) captures the residual stack; colouring, lens choice, position and token
choices only re-read it (``probes.lens.logit``), so they never re-run the model.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from interp.model import Model
from learned.tuned_lens import TunedLens, find_tuned_lens, load_tuned_lens
from plots.lens import GRID_COLOURS, grid_figure, kl_figure, trajectory_figure
from probes.lens.logit import LensResult, ResidStack, default_targets, lens_from_stack, residual_stack, token_trajectory
from ui import explain, figures, messages, models, prompts, state

DEFAULT_PROMPT = "import os\n\ndef add(a, b):\n    return a + b\n"
#: The grid shows this many positions at a time (a slider moves the window), so every cell's text fits its cell.
WINDOW = 20
COLOUR_NAMES = {"target_prob": "target probability", "kl_to_final": "KL to the final distribution",
                "entropy": "entropy"}


@st.cache_resource(show_spinner="Running the model...", max_entries=8)
def cached_stack(model_name: str, prompt: str) -> ResidStack:
    """One forward pass per (model, prompt); every other control re-reads this stack."""
    models.FORWARD_PASSES["count"] += 1
    return residual_stack(models.cached_model(model_name), prompt)


@st.cache_resource(show_spinner="Loading the tuned lens...", max_entries=4)
def cached_tuned_lens(model_name: str, lens_dir: str, stamp: float) -> TunedLens:
    """The model's tuned lens, reloaded when its files change (``stamp``: config mtime)."""
    return load_tuned_lens(models.cached_model(model_name), lens_dir)


@st.cache_resource(show_spinner="Decoding every layer...", max_entries=16)
def cached_lens(model_name: str, prompt: str, kind: str, lens_dir: str | None, stamp: float,
                window: tuple[int, int]) -> LensResult:
    """Lens metrics for a window of positions (no forward pass: reads the cached stack)."""
    handle = models.cached_model(model_name)
    lens = cached_tuned_lens(model_name, lens_dir, stamp) if kind == "tuned" and lens_dir else None
    return lens_from_stack(handle, cached_stack(model_name, prompt), positions=range(window[0], window[1] + 1),
                           lens=lens)


def tuned_lens_for(handle: Model, name: str) -> tuple[str | None, float]:
    """(lens directory, config mtime) if this model has a tuned lens that loads, else (None, 0) with a note."""
    path = find_tuned_lens(handle)
    if path is None:
        st.info(f"No tuned lens for **{handle.info.name}** yet, so only the logit lens is shown. Train one "
                f"(a few minutes on CPU for the bundled model; saved beside the model):\n\n"
                f"`python -m experiments run tuned-lens --model {handle.info.name}`")
        return None, 0.0
    stamp = (path / "config.json").stat().st_mtime
    if messages.guarded(cached_tuned_lens, name, str(path), stamp) is None:
        return None, 0.0
    return str(path), stamp


def draw() -> None:
    st.header("Logit lens")
    explain.header("Logit lens")
    st.caption("Each layer's residual stream read through the model's final norm and unembedding "
               "(nostalgebraist 2020); the tuned lens first applies a trained affine translator per layer "
               "(Belrose et al. 2023). Rows: layers (embedding at the bottom, final output at the top); "
               "columns: input tokens; each cell: that layer's top-1 prediction for the next token.")
    handle = state.current_model()
    if handle is None:  # the reason is already shown
        return
    name = state.current_model_name()  # not None once a model loaded
    got = prompts.prompt_section(handle, "lens_prompt", height=110)  # the same prompt as the Attention page
    if got is None:
        return
    prompt, _ = got
    stack = messages.guarded(cached_stack, name, prompt)
    if stack is None:
        return
    lens_dir, stamp = tuned_lens_for(handle, name)
    views = ["Logit lens"] + (["Tuned lens", "Both"] if lens_dir else [])
    state.bind("lens_view", "lens", default=views[0], choices=views)
    if st.session_state.get("lens_view") not in views:  # e.g. the tuned lens went away: back to the logit lens
        state.keep("lens_view", views[0])
    state.bind("lens_colour", "colour", default=list(GRID_COLOURS)[0], choices=list(GRID_COLOURS))
    c1, c2 = st.columns(2)
    view = c1.radio("Lens", views, horizontal=True, key="lens_view")
    colour = c2.radio("Colour cells by", list(GRID_COLOURS), format_func=COLOUR_NAMES.get, horizontal=True,
                      key="lens_colour")
    n = stack.n_pos
    window = (0, n - 1)
    if n > WINDOW:
        state.bind("lens_window", "first", default=n - WINDOW, kind=int, lo=0, hi=n - WINDOW, label="first position")
        if not 0 <= st.session_state["lens_window"] <= n - WINDOW:  # a shorter prompt than before
            state.keep("lens_window", n - WINDOW)
        start = st.slider("First position shown", 0, n - WINDOW, key="lens_window",
                          help=f"The prompt has {n} tokens; the grid shows {WINDOW} at a time.")
        window = (start, start + WINDOW - 1)
    kinds = {"Logit lens": ["logit"], "Tuned lens": ["tuned"], "Both": ["logit", "tuned"]}[view]
    results = {}
    for kind in kinds:
        res = messages.guarded(cached_lens, name, prompt, kind, lens_dir, stamp, window)
        if res is None:
            return
        results[kind] = res
    st.caption(f"{n} tokens · model {handle.info.name} · forward passes this session: "
               f"{models.FORWARD_PASSES['count']}")
    for kind, res in results.items():  # one above the other: the same token columns line up
        figures.figure(grid_figure(res, colour), key=f"lens-grid-{kind}")
    with st.expander("Numbers behind the grid"):
        figures.table(pd.concat([res.table() for res in results.values()], ignore_index=True), key="lens-table")

    st.subheader("One token across layers")
    targets, is_next = default_targets(stack, handle)  # decodes one row, no forward pass
    nexts = handle.to_str_tokens(targets)

    def position_label(p: int) -> str:  # the input token read there and the token predicted from it
        return f"{p}: {stack.tokens[p]!r} → {nexts[p]!r}" + ("" if is_next[p] else " (model's top-1)")

    state.bind("lens_position", "position", default=n - 2 if n > 1 else 0, kind=int, lo=0, hi=n - 1)
    state.bind("lens_token", "token")
    if not 0 <= int(st.session_state["lens_position"]) < n:  # a shorter prompt than before
        state.keep("lens_position", n - 2 if n > 1 else 0)
    c1, c2 = st.columns(2)
    position = c1.selectbox("Position (input token → the next token it predicts)", range(n), key="lens_position",
                            format_func=position_label)
    typed = c2.text_input("Token (empty: the actual next token)", key="lens_token",
                          help="Exactly one token; leading spaces count (e.g. ' self').")
    token: int | str = typed
    if not typed:
        token = int(targets[position])
        if not is_next[position]:
            st.caption("The last position has no next token: showing the model's own top-1 prediction.")
    trajs = []
    for kind in (["logit", "tuned"] if lens_dir else ["logit"]):
        lens = cached_tuned_lens(name, lens_dir, stamp) if kind == "tuned" else None
        traj = messages.guarded(token_trajectory, handle, stack, position, token, lens)
        if traj is None:  # e.g. the token box holds two tokens: say so, keep the charts below
            break
        trajs.append(traj)
    if len(trajs) == (2 if lens_dir else 1):
        t = trajs[0]
        title = f"{t.token!r} at position {position} (input {stack.tokens[position]!r}) across layers"
        figures.figure(trajectory_figure(trajs, title), key="lens-token")

    if lens_dir:
        st.subheader("Logit vs tuned lens on this prompt")
        labels = stack.labels
        series = {f"{k} lens": cached_lens(name, prompt, k, lens_dir, stamp, (0, n - 1)).mean_kl().tolist()
                  for k in ("logit", "tuned")}
        figures.figure(kl_figure(labels, series, "Mean KL(final ‖ lens) per layer on this prompt"), key="lens-kl")
