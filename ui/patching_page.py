"""Patching page: a clean and a corrupted prompt side by side, attribution patching (one click, fast) and exact
activation patching (progress and Stop) as layer x position and layer x head heatmaps, attribution vs exact,
direct logit attribution, one head's pattern on the clean prompt, and a dataset view of many pairs with CIs.
Every number comes from ``probes.patching`` (activation, attribution, dla, stats).
"""
from __future__ import annotations

from typing import get_args

import pandas as pd
import streamlit as st
import torch

from interp.errors import InvalidInput, WorkbenchError
from interp.model import Model
from interp.prompt_check import check_prompt
from interp.token_display import token_pieces, visible_tokens
from interp.types import Head
from plots.attention_grid import head_pattern_figure
from plots.patching import attribution_scatter, dla_bars, effect_bars_with_ci, head_effect_heatmap, layer_pos_heatmap
from plots.select import add_head_picker
from probes.patching.activation import PatchMetric, SweepStopped, run_sweeps
from probes.patching.attribution import attribute, compare
from probes.patching.dla import direct_logit_attribution
from probes.patching.scale import GapCheck, attribution_effects, check_gap, exact_effects, metric_scale, within_noise
from probes.patching.stats import dataset_effects
from probes.stats import significance_reachable
from tasks.copy_mix import stdlib_name_pairs
from tasks.pairs import PairBatch, PromptPair, encode_pairs, example_pair, pairs_from_csv
from ui import explain, figures, messages, models, state

METRICS: tuple[PatchMetric, ...] = get_args(PatchMetric)
STOP = "patch_stop_requested"
RESULTS = "patch_results"  # session: {"key": pair key, "attr": AttributionResult, "exact": {kind: SweepResult}}
RAN = "patch_ran"  # "attr", "exact" or "attr+exact": what was run on this pair (the link's ?run=)
RUN_CHOICES = ("attr", "exact", "attr+exact")
STATUS = "patch_exact_status"  # "running" while an exact sweep runs; left so after a Stop interrupted it
MAX_DATASET_PAIRS = 64
#: Exact sweeps run in this process (tests check a head click re-runs none).
SWEEPS = {"count": 0}


def _kinds(handle: Model) -> tuple[str, ...]:
    return ("head_out", "resid_pre", "attn_out") + (() if handle.info.attn_only else ("mlp_out",))


def _inputs(handle: Model, name: str) -> tuple[PromptPair, PatchMetric]:
    """The four prompt fields (an example for this model on first visit or after a model change) and the metric."""
    ss = st.session_state
    if ss.get("patch_model") != name:
        ex = example_pair(handle, avoid=stdlib_name_pairs())
        for k, v in (("patch_clean", ex.clean), ("patch_corrupted", ex.corrupted), ("patch_answer", ex.answer),
                     ("patch_wrong", ex.wrong or "")):
            state.keep(k, v)
        ss["patch_model"] = name
        ss.pop(RESULTS, None)
    for k, param in (("patch_clean", "clean"), ("patch_corrupted", "corrupted"), ("patch_answer", "answer"),
                     ("patch_wrong", "wrong")):
        state.bind(k, param)  # a shared link opens its own pair, not this model's example
    state.bind("patch_metric", "metric", default=METRICS[0], choices=METRICS)
    c1, c2 = st.columns(2)
    clean = c1.text_area("Clean prompt", key="patch_clean", height=110,
                         help="The prompt on which the model gives the answer.")
    corrupted = c2.text_area("Corrupted prompt", key="patch_corrupted", height=110,
                             help="Same number of tokens; change only what the behaviour depends on.")
    c1, c2, c3 = st.columns(3)
    answer = c1.text_input("Answer (clean)", key="patch_answer", help="One token; a leading space counts.")
    wrong = c2.text_input("Wrong answer", key="patch_wrong", help="One token; the metric is logit(answer) - "
                                                                  "logit(wrong) by default.")
    metric = c3.selectbox("Metric", METRICS, key="patch_metric",
                          help="logit_diff: answer minus wrong; prob / logprob: the answer's probability.")
    return PromptPair(clean, corrupted, answer, wrong or None), metric


def alignment_table(handle: Model, batch: PairBatch) -> pd.DataFrame:
    """Clean and corrupted tokens per position, whitespace drawn (a newline + indent token reads ``↵····``), as
    strings only: one column per position, so every column holds one type (pyarrow refuses mixed ones)."""
    n = int(batch.lengths[0])
    clean = visible_tokens(handle.tokenizer, batch.clean[0, :n].tolist())
    corrupted = visible_tokens(handle.tokenizer, batch.corrupted[0, :n].tolist())
    differs = ["≠" if int(a) != int(b) else "" for a, b in zip(batch.clean[0, :n], batch.corrupted[0, :n])]
    return pd.DataFrame([clean, corrupted, differs], index=["clean", "corrupted", "differs"],
                        columns=[str(p) for p in range(n)])


def _show_alignment(handle: Model, batch: PairBatch) -> None:
    diff = batch.diff_positions(0)
    st.caption(f"{int(batch.lengths[0])} tokens each; they differ at position(s) "
               f"{', '.join(map(str, diff)) or 'none'}. Answer {batch.answer_str[0]!r} = token {int(batch.answer[0])}"
               + (f", wrong {batch.wrong_str[0]!r} = token {int(batch.wrong[0])}." if batch.has_wrong else ".")
               + " Whitespace shows as · (space), → (tab), ↵ (newline).")
    st.dataframe(alignment_table(handle, batch), width="stretch")


def _input_warnings(handle: Model, pair: PromptPair, batch: PairBatch) -> None:
    """Say when the prompts hold words the vocabulary cannot express (they became its unknown token) or when the
    clean and corrupted prompts are the same tokens (patching then has nothing to bring back)."""
    for label, text in (("clean", pair.clean), ("corrupted", pair.corrupted)):
        check = messages.guarded(check_prompt, handle, text)
        if check is not None and check.vocab_warning:
            st.warning(f"The {label} prompt: {check.vocab_warning}")
    if not batch.diff_positions(0):
        st.warning("The clean and corrupted prompts are the same tokens, so there is no behaviour for patching to "
                   "bring back. Change the corrupted prompt where the answer depends on it.")


def _request_stop() -> None:
    st.session_state[STOP] = True


def _run_exact(handle: Model, batch: PairBatch, metric: PatchMetric) -> dict | None:
    st.session_state[STOP] = False
    st.session_state[STATUS] = "running"
    st.button("Stop", key="patch_stop", on_click=_request_stop)
    bar = st.progress(0.0, text="Exact patching...")
    try:
        out = run_sweeps(handle, batch, _kinds(handle), metric=metric,
                         progress=lambda f, m: bar.progress(min(1.0, f), text=f"Exact patching: {m}"),
                         should_stop=lambda: bool(st.session_state.get(STOP)))
    except SweepStopped as e:
        st.session_state[STATUS] = "done"
        st.warning(str(e))
        return None
    finally:  # a Stop click can also interrupt the script run here; STATUS then stays "running"
        bar.empty()
    st.session_state[STATUS] = "done"
    SWEEPS["count"] += 1
    return out


def _heatmaps(results: dict, tokens: list[str], label: str, key: str, check: GapCheck) -> None:
    """Layer x head and layer x position heatmaps of ``results`` (kind -> effects), normalised or raw per ``check``."""
    norm = check.ok
    bar = "normalised effect" if norm else f"raw effect ({check.metric})"
    if any(within_noise(torch.as_tensor(v), check) for v in results.values()):
        st.warning(f"Differences here are within noise: every effect is smaller than the floor of {check.floor:.3g} "
                   f"{check.metric} (see above), so the colours below show noise, not structure.")
    if "head_out" in results:
        fig = add_head_picker(head_effect_heatmap(results["head_out"], f"{label}: head outputs (all positions); "
                                                                       "click a head for its pattern", bar,
                                                  normalised=norm, floor=check.floor), "effect")
        figures.figure(fig, key=f"{key}-heads", on_head=state.select_head)
    cols = st.columns(2)
    for i, kind in enumerate(k for k in ("resid_pre", "attn_out", "mlp_out") if k in results):
        with cols[i % 2]:
            figures.figure(layer_pos_heatmap(results[kind], tokens, f"{label}: {kind} by layer x position", bar,
                                             normalised=norm, floor=check.floor), key=f"{key}-{kind}")


def _head_pattern(handle: Model, name: str, clean: str) -> None:
    info = handle.info
    layer, head = state.layer_head(info.n_layers, info.n_heads)
    att = messages.guarded(models.cached_attention, name, clean)
    if att is None:
        return
    fig = head_pattern_figure(att.head(layer, head), att.tokens, f"Head {Head(layer, head)} on the clean prompt")
    figures.figure(fig, key="patch-pattern")


def _dataset(handle: Model, metric: PatchMetric) -> None:
    st.subheader("Dataset of pairs")
    st.caption("CSV with columns clean, corrupted, answer, wrong (quote a cell to keep a leading space). Each "
               "head's mean effect over the pairs with a 95% bootstrap CI and a sign-flip permutation p-value.")
    up = st.file_uploader("CSV of pairs", type=["csv"], key="patch_csv_file")
    text = st.text_area("...or paste CSV", key="patch_csv_text", height=100)
    if not st.button("Run dataset (exact head outputs)", key="patch_dataset_run"):
        return
    raw = up.getvalue().decode("utf-8", errors="replace") if up is not None else text
    if not raw.strip():
        st.error("No CSV given: upload a file or paste rows with a header clean,corrupted,answer,wrong.")
        return
    try:
        pairs = pairs_from_csv(raw)
        if len(pairs) > MAX_DATASET_PAIRS:
            raise InvalidInput(f"{len(pairs)} pairs given; the page runs at most {MAX_DATASET_PAIRS}.",
                               "Use the induction-circuit or copy-circuit experiment for bigger datasets.")
        batch = encode_pairs(handle, pairs, need_wrong=metric == "logit_diff")
        bar = st.progress(0.0, text="Patching every head over the dataset...")
        res = run_sweeps(handle, batch, ("head_out",), metric=metric,
                         progress=lambda f, m: bar.progress(min(1.0, f), text=m))["head_out"]
        bar.empty()
        df = dataset_effects(res)
    except WorkbenchError as e:
        messages.show_error(e)
        return
    top = df.head(12)
    figures.figure(effect_bars_with_ci(top["component"], top["mean"], top["ci_low"], top["ci_high"],
                                      f"{len(batch)} pairs: head-output effect, 95% bootstrap CI"), key="patch-ds")
    figures.table(df, key="patching-dataset-effects")
    reachable, power = significance_reachable(len(batch))
    (st.caption if reachable else st.warning)(power[0].upper() + power[1:] + ".")


def draw() -> None:
    st.header("Activation patching")
    explain.header("Patching")
    handle = state.current_model()
    if handle is None:
        return
    name = state.current_model_name()
    st.caption(f"Model {handle.info.name}. Run the corrupted prompt with one clean activation copied in and see how "
               "much of the clean behaviour comes back: 0 = corrupted run, 1 = clean run.")
    pair, metric = _inputs(handle, name)
    try:
        batch = encode_pairs(handle, [pair], need_wrong=metric == "logit_diff")
    except WorkbenchError as e:
        messages.show_error(e)
        _dataset(handle, metric)
        return
    _show_alignment(handle, batch)
    _input_warnings(handle, pair, batch)
    key = (name, pair, metric)
    ss = st.session_state
    res = ss.get(RESULTS)
    if not res or res.get("key") != key:
        res = ss[RESULTS] = {"key": key}
    # which analyses were run is part of the link: a shared link re-runs them on the shared pair
    linked = state.bind(RAN, "run", choices=RUN_CHOICES)
    ran = str(ss.get(RAN) or "").split("+") if linked else []
    c1, c2 = st.columns(2)
    if c1.button("Attribution patching (fast)", key="patch_attr", type="primary",
                 help="2 forwards + 1 backward: a linear estimate of every cell at once.") or "attr" in ran:
        res["attr"] = messages.guarded(attribute, handle, batch, _kinds(handle), metric=metric)
    if c2.button("Exact sweep", key="patch_exact",
                 help="One patched run per cell (batched); shows progress.") or "exact" in ran:
        res["exact"] = messages.guarded(_run_exact, handle, batch, metric)
    elif ss.get(STATUS) == "running" and not res.get("exact"):
        st.warning("The exact sweep was stopped before it finished; run it again to see its result.")
        ss[STATUS] = "done"
    attr, exact = res.get("attr"), res.get("exact")
    state.keep(RAN, "+".join(k for k in ("attr", "exact") if res.get(k)) or None)
    state.sync_now()  # the link names what was run before the slower figures below are drawn
    tokens = [p.text for p in token_pieces(handle.tokenizer, batch.clean[0, : int(batch.lengths[0])].tolist())]
    base = attr if attr is not None else next(iter(exact.values()), None) if exact else None
    check = None
    if base is not None:
        if "scale" not in res:
            res["scale"] = messages.guarded(metric_scale, handle, batch, metric)
        if res["scale"] is None:
            return
        check = check_gap(metric, base.clean, base.corrupted, res["scale"])
        st.markdown(f"Clean metric **{check.clean:.3f}**, corrupted **{check.corrupted:.3f}** ({metric}); "
                    f"gap {check.gap:+.3f}.")
        (st.caption if check.ok else st.warning)(check.note())
    if exact and check is not None:
        try:
            _heatmaps({k: exact_effects(v, check).numpy() for k, v in exact.items()}, tokens, "Exact", "patch-exact",
                      check)
        except InvalidInput as e:
            messages.show_error(e)
    elif attr is not None and check is not None:
        try:
            _heatmaps({k: attribution_effects(attr, k, check).numpy() for k in attr.estimates}, tokens,
                      "Attribution", "patch-attr", check)
        except InvalidInput as e:
            messages.show_error(e)
    if attr is not None and exact and check is not None:
        st.subheader("Attribution vs exact" + ("" if check.ok else " (raw effects)"))
        cols = st.columns(2)
        for i, kind in enumerate(exact):
            c = messages.guarded(compare, exact[kind], attr)
            if c is None:
                break
            unit = 1.0 if check.ok else check.gap  # compare() normalises; raw effects are that times the gap
            with cols[i % 2]:
                figures.figure(attribution_scatter(c.exact * unit, c.estimate * unit, c.labels, kind, c.pearson),
                              key=f"patch-scatter-{kind}")
    if batch.has_wrong and (attr is not None or exact):
        st.subheader("Direct logit attribution (clean prompt)")
        dla = messages.guarded(direct_logit_attribution, handle, batch)
        if dla is not None:
            cols = st.columns(2)
            with cols[0]:
                figures.figure(dla_bars(dla.layers["component"], dla.layers["dla"], "by layer output"),
                              key="patch-dla-layers")
            with cols[1]:
                ht = dla.head_table().head(16)
                figures.figure(dla_bars(ht["head"], ht["dla"], "by head (largest 16)"), key="patch-dla-heads")
    if attr is not None or exact:
        st.subheader("One head on the clean prompt")
        _head_pattern(handle, name, pair.clean)
    _dataset(handle, metric)
