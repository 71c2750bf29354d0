"""Inside the model: one token through every matrix product of the current model, recomputed by hand and checked,
and the Generate view (temperature, top-k, top-p; step token by token or n at once, seeded).

Click a token of the prompt to follow it; pick the block to open and the head to show (shared with the other
pages). The numbers come from ``probes.walkthrough.walk`` and ``probes.generation``; the figures from
``plots.walkthrough``.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from interp.types import Head
from plots.walkthrough import matrix_heatmap, probability_table_figure, token_bars, vector_strip
from probes import generation
from probes.walkthrough import BLOCK_STEPS, TOLERANCE, Step, Walkthrough, visible, walk
from ui import explain, messages, models, prompts, state

VIEWS = ("Forward pass", "Generate")
#: Tokens shown as clickable pills; longer prompts get a number box instead.
MAX_PILLS = 160
POS, VIEW = "wt_pos", "wt_view"
GEN_IDS, GEN_KEY = "wt_gen_ids", "wt_gen_key"
WALKS = {"count": 0}  # walkthroughs computed in this process (a test checks a rerun reuses the cached one)


@st.cache_resource(show_spinner="Recomputing the forward pass by hand...", max_entries=16)
def cached_walk(model_name: str, prompt: str, position: int, head: int, temperature: float) -> Walkthrough:
    WALKS["count"] += 1
    return walk(models.cached_model(model_name), prompt, position, head, temperature)


def _label(tokens: tuple[str, ...], i: int) -> str:
    return f"{i}: {visible(tokens[i])}"


def _check_line(step: Step) -> None:
    for c in step.checks:
        mark = "✓" if c.ok else "✗"
        text = (f"{mark} recomputed by hand from the weights: max |difference| to the model's own activation = "
                f"**{c.max_abs_diff:.1e}** ({c.label}: `{c.site}`, {c.over})")
        (st.caption if c.ok else st.warning)(text)


def _draw_step(step: Step, key: str) -> None:
    if step.absent:
        st.markdown(f"**{step.title}** — *absent in this model:* {step.absent}")
        return
    st.markdown(f"**{step.title}**")
    if step.formula:
        st.latex(step.formula)
    if step.shapes:
        st.caption("Shapes: " + step.shapes)
    if step.numbers:
        st.markdown(" · ".join(f"{k} = `{v:.5g}`" for k, v in step.numbers.items()))
    if step.note:
        st.info(step.note)
    for i, shown in enumerate(step.shown):
        if shown.values.ndim == 2:
            fig = matrix_heatmap(shown.values, shown.name, shown.row_labels)
        elif shown.col_labels:
            fig = token_bars(shown.values, shown.col_labels, shown.name)
        else:
            fig = vector_strip(shown.values, shown.name)
        st.plotly_chart(fig, width="stretch", key=f"{key}-{i}", config={"displayModeBar": False})
    _check_line(step)


def _step_table(steps: list[Step]) -> pd.DataFrame:
    rows = []
    for s in steps:
        if s.absent:
            rows.append({"step": s.title, "check": "absent", "max |difference|": None})
            continue
        for c in s.checks:
            rows.append({"step": s.title, "check": f"{c.label} ({c.site})", "max |difference|": c.max_abs_diff})
    return pd.DataFrame(rows)


def _pick_position(tokens: tuple[str, ...]) -> int:
    n = len(tokens)
    ss = st.session_state
    if not isinstance(ss.get(POS), int) or not 0 <= ss[POS] < n:
        ss[POS] = n - 1
    if n <= MAX_PILLS:
        chosen = st.pills("Click a token to follow it through the model", list(range(n)), key=POS,
                          format_func=lambda i: _label(tokens, i), selection_mode="single")
    else:
        chosen = st.number_input("Token position to follow", 0, n - 1, key=POS)
    return n - 1 if chosen is None else int(chosen)


def _pick_layer_head(n_layers: int, n_heads: int) -> tuple[int, int]:
    layer, head = state.layer_head(n_layers, n_heads)
    st.session_state["wt_layer"], st.session_state["wt_head"] = layer, head

    def changed() -> None:
        state.select_head(Head(st.session_state["wt_layer"], st.session_state["wt_head"]))

    c1, c2 = st.columns(2)
    layer = c1.selectbox("Block to open", range(n_layers), key="wt_layer", on_change=changed)
    head = c2.selectbox("Head to show", range(n_heads), key="wt_head", on_change=changed,
                        format_func=lambda h: f"head {h}")
    return int(layer), int(head)


def _forward(handle, name: str, prompt: str) -> None:
    info = handle.info
    tokens = tuple(handle.to_str_tokens(handle.tokenize(prompt).tokens[0]))
    position = _pick_position(tokens)
    layer, head = _pick_layer_head(info.n_layers, info.n_heads)
    temperature = st.slider("Temperature of the last softmax", 0.05, 5.0, 1.0, 0.05, key="wt_temp",
                            help="Divides the logits before the softmax: below 1 sharpens, above 1 flattens.")
    wk = messages.guarded(cached_walk, name, prompt, position, head, float(temperature))
    if wk is None:
        return
    n_checks = len(wk.checks)
    worst = wk.max_abs_diff
    text = (f"Following token {_label(tokens, position)!r} (id {wk.token_ids[position]}) through {info.name}: "
            f"{n_checks} hand recomputations from the weights, compared live with the model's own activations; "
            f"the largest max |difference| is {worst:.1e} (float32; tolerance {TOLERANCE:g}).")
    (st.success if worst <= TOLERANCE else st.warning)(text)

    before = [s for s in wk.steps if s.block is None and s.key in ("embed", "pos_embed", "resid_start")]
    after = [s for s in wk.steps if s.block is None and s.key in ("ln_final", "unembed", "probs")]
    st.subheader("1. From token id to vector")
    for s in before:
        _draw_step(s, f"wt-{s.key}")
    st.subheader(f"2. The {info.n_layers} blocks (block {layer} open, head {layer}.{head})")
    for b in range(info.n_layers):
        steps = [wk.step(k, b) for k in BLOCK_STEPS]
        diff = max(s.max_abs_diff for s in steps)
        with st.expander(f"Block {b}: norm, attention, residual add, MLP, residual add — max |difference| "
                         f"{diff:.1e}", expanded=b == layer):
            if b == layer:
                for s in steps:
                    _draw_step(s, f"wt-{b}-{s.key}")
            else:
                st.caption(f"Pick block {b} above to see its numbers; its checks:")
                st.dataframe(_step_table(steps), hide_index=True, width="stretch")
    st.subheader("3. From the last vector to the next token")
    for s in after:
        _draw_step(s, f"wt-{s.key}")
    st.dataframe(pd.DataFrame([{"token": t.token, "id": t.token_id, "logit": round(t.logit, 4),
                                "probability": round(t.probability, 4)} for t in wk.top]),
                 hide_index=True, width="stretch")


def _sampling_controls(d_vocab: int) -> generation.Sampling:
    c1, c2, c3, c4 = st.columns(4)
    t = c1.slider("Temperature", 0.0, 5.0, 1.0, 0.05, key="gen_temp",
                  help="0 = greedy (always the most likely token); below 1 sharpens, above 1 flattens.")
    k = c2.number_input("Top-k (0 = off)", 0, d_vocab, 0, 1, key="gen_topk",
                        help="Keep only the k most likely tokens.")
    p = c3.slider("Top-p (1 = off)", 0.01, 1.0, 1.0, 0.01, key="gen_topp",
                  help="Keep the fewest most likely tokens whose probabilities add up to at least p.")
    seed = c4.number_input("Seed", 0, 2**31 - 1, 0, 1, key="gen_seed",
                           help="The same settings and seed give the same text, token by token or all at once.")
    return generation.Sampling(float(t), int(k), float(p), int(seed))


def _generate(handle, name: str, prompt: str) -> None:
    sampling = _sampling_controls(handle.info.d_vocab)
    ss = st.session_state
    key = (name, prompt, sampling)
    if ss.get(GEN_KEY) != key:  # a new prompt, model or setting starts a new text
        ss[GEN_KEY], ss[GEN_IDS] = key, []
    ids: list[int] = ss[GEN_IDS]
    row = st.container(horizontal=True)
    n = row.number_input("Tokens", 1, generation.MAX_NEW_TOKENS, 20, 1, key="gen_n", label_visibility="collapsed")
    step_one = row.button("Next token", key="gen_step", type="primary")
    step_n = row.button(f"Generate {int(n)} tokens", key="gen_many")
    if row.button("Start over", key="gen_reset"):
        ids.clear()
    if step_one or step_n:
        out = messages.guarded(generation.generate, handle, prompt, 1 if step_one else int(n), sampling,
                               previous=ids)
        if out is not None:
            ids.extend(s.token_id for s in out.steps)
            if out.stopped:
                st.info(f"Stopped: {out.stopped}.")
    new_text = handle.tokenizer.decode(ids) if ids else ""
    st.markdown(f"**Text** ({len(ids)} generated token{'s' if len(ids) != 1 else ''}, seed {sampling.seed}):")
    st.code(prompt + new_text if ids else prompt, language=None, wrap_lines=True)
    dist = messages.guarded(generation.next_distribution, handle, prompt, sampling, ids)
    if dist is None:
        return
    rows = generation.table(handle, dist, 15)
    labels = [visible(r.token) for r in rows]
    st.plotly_chart(probability_table_figure(labels, [r.raw for r in rows], [r.tempered for r in rows],
                                             [r.final for r in rows], "The next token: its probability at each "
                                             "stage (the 15 most likely after temperature)"),
                    width="stretch", key="gen-table")
    st.caption(f"{int(dist.kept.sum())} of {handle.info.d_vocab} tokens survive top-k / top-p. Temperature divides "
               "the logits before the softmax; top-k keeps the k most likely; top-p keeps the fewest whose "
               "probabilities reach p; what is left is renormalised and one token is drawn from it.")
    st.dataframe(pd.DataFrame([{"token": lab, "id": r.token_id, "model (T=1)": round(r.raw, 5),
                                "after temperature": round(r.tempered, 5), "sampled from": round(r.final, 5),
                                "kept": r.kept} for lab, r in zip(labels, rows)]), hide_index=True, width="stretch")


def draw() -> None:
    st.header("Inside the model")
    explain.header("Inside the model")
    handle = state.current_model()
    if handle is None:
        return
    name = state.current_model_name()
    if st.session_state.get(VIEW) not in VIEWS:
        st.session_state[VIEW] = VIEWS[0]
    view = st.segmented_control("View", VIEWS, key=VIEW)
    got = prompts.prompt_section(handle, "wt_prompt", height=80)
    if got is None:
        return
    prompt, _ = got
    if view == "Generate":
        _generate(handle, name, prompt)
    else:
        _forward(handle, name, prompt)
