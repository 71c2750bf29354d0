"""Reproductions page: every registered experiment, run its CI preset or full run, browse result folders."""
from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import streamlit as st

from experiments.core.context import Cancelled
from experiments.core.registry import all_experiments
from experiments.core.results import list_results
from experiments.core.runner import RESULTS_ROOT, run_experiment

from . import common


def _run(name: str, preset: str | None, model: str | None) -> None:
    """Run one experiment with a progress bar; a Stop button (next rerun) sets the cancel event."""
    cancel = threading.Event()
    st.session_state["cancel_event"] = cancel
    bar = st.progress(0.0, text=f"{name}: starting")
    try:
        kw = {"model": model} if model else {}
        outcome = run_experiment(name, preset=preset, progress=lambda f, m: bar.progress(f, text=f"{name}: {m}"),
                                 cancel_event=cancel, **kw)
    except Cancelled as e:
        st.warning(str(e))
        return
    except Exception as e:  # noqa: BLE001 - shown as a message, the page keeps working
        common.show_error(e)
        return
    bar.progress(1.0, text="done")
    st.success(outcome.message)


def draw() -> None:
    st.header("Reproductions")
    exps = all_experiments()
    rows = [{"experiment": n, "title": e.title, "finding": e.finding.claim if e.finding else "",
             "source": e.finding.source if e.finding else "", "published": e.finding.published if e.finding else "",
             "presets": ", ".join(e.presets)} for n, e in exps.items()]
    common.table(pd.DataFrame(rows), key="experiments")
    c1, c2, c3 = st.columns([2, 1, 1])
    name = c1.selectbox("Experiment", list(exps), key="repro_exp")
    presets = list(exps[name].presets) + ["full run (published setting)"]
    preset = c2.selectbox("Preset", presets, key="repro_preset")
    use_current = c3.checkbox("Use current model", value=False, key="repro_use_model",
                              help="Pass the model chosen on the Model page as the experiment's `model`.")
    if st.button("Run", type="primary", key="repro_run"):
        model = common.current_model_name() if use_current else None
        _run(name, None if preset.startswith("full") else preset, model)
    if st.button("Stop the running experiment", key="repro_stop") and st.session_state.get("cancel_event"):
        st.session_state["cancel_event"].set()
        st.info("Cancel requested; the run stops at its next progress point.")

    st.subheader("Results")
    root = Path(st.text_input("Results folder", str(RESULTS_ROOT), key="repro_root"))
    results = common.guarded(list_results, root) if root.is_dir() else []
    if not results:
        st.info(f"No results under {root} yet. Run one above or `python -m experiments run NAME --preset ci`.")
        return
    labels = {f"{r.metadata.get('experiment', r.path.parent.name)} · {r.path.name} · "
              f"{r.verdict.get('status', '?')}": r for r in results}
    chosen = labels[st.selectbox("Result", list(labels), key="repro_result")]
    verdict = chosen.verdict
    status = verdict.get("status", "?")
    box = {"reproduced": st.success, "not reproduced": st.error}.get(status, st.warning)
    box(f"Verdict: **{status}** — {verdict.get('reason', '')}")
    st.markdown(chosen.summary)
    pngs = chosen.figure_files("png")
    for fig_name, path in chosen.figure_files("html").items():
        st.markdown(f"**{fig_name}**")
        if fig_name in pngs:
            st.image(str(pngs[fig_name]), width="stretch")
        else:
            st.caption("No PNG was exported for this figure; download the HTML to view it.")
        c1, c2, _ = st.columns([1, 1, 4])
        c1.download_button("Download HTML", path.read_bytes(), file_name=path.name, mime="text/html",
                           key=f"rhtml-{fig_name}")
        if fig_name in pngs:
            c2.download_button("Download PNG", pngs[fig_name].read_bytes(), file_name=pngs[fig_name].name,
                               mime="image/png", key=f"rpng-{fig_name}")
