"""Reproductions page: every registered experiment, run a preset or the full run (Stop stays visible), browse
result folders with interactive figures (headline first). CI presets are smoke tests and are labelled so.

Stop works like the Train page's: a click starts a new script run, Streamlit stops the running one at its next
progress update, and the run's ``finally`` marks it stopped (the runner's staging folder is removed, so nothing
half-written is left); the Stop callback also sets the run's cancel event.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from experiments.core.context import Cancelled
from experiments.core.registry import all_experiments
from experiments.core.results import ResultFolder, check_results_root, list_results
from experiments.core.runner import RESULTS_ROOT, run_experiment
from interp.loading import BUNDLED_DIR
from interp.model import Model
from interp.prompt_check import KIND_READS, kind_of, kind_of_model_dir
from ui import explain, figures, messages, models, state

RUN_KEY = "repro_last_run"
FULL = "full run (published setting)"
SMOKE = {"ci"}  # presets that only check the code runs end to end
STOP_WAIT_S = 15.0


def preset_label(preset: str) -> str:
    if preset in SMOKE:
        return f"{preset} (smoke test: tiny settings, checks that it runs, not the finding)"
    return preset


def _app_words(text: str) -> str:
    """Runner messages speak CLI; on this page the same choices are widgets."""
    return (text.replace("Pass --force to run again.", "Tick Force to run it again.")
            .replace("Pass --force to replace it, or choose another --out.", "Tick Force to replace it.")
            .replace("--force", "Force"))


def _model_default(exp_cls) -> str | None:
    for f in dataclasses.fields(exp_cls.Config):
        if f.name == "model" and isinstance(f.default, str):
            return f.default
    return None


def fit_warning(exp_cls, handle: Model) -> str | None:
    """A sentence when the current model does not fit the experiment (its default model reads other tokens)."""
    default = _model_default(exp_cls)
    if default is None:
        return (f"{exp_cls.name} does not analyse a given model (it trains or builds its own), so 'Use current "
                "model' changes nothing.")
    if handle is None:
        return None
    want = kind_of_model_dir(BUNDLED_DIR / default) if (BUNDLED_DIR / default).is_dir() else None
    have = kind_of(handle)
    if want is None or want == have or {want, have} <= {"code", "text"}:
        return None
    return (f"{exp_cls.name} is written for {default}, which reads {KIND_READS[want]}; the current model "
            f"{handle.info.name} reads {KIND_READS[have]}, so its numbers would not mean anything. Untick 'Use "
            "current model', or choose a fitting model on the Model page.")


def _request_stop() -> None:
    run = st.session_state.get(RUN_KEY)
    if run and run.get("status") == "running":
        run["stop_requested"] = True
        run["cancel"].set()


def _run(name: str, preset: str | None, model: str | None, force: bool, bar_slot) -> None:
    """Run one experiment with a progress bar below the Run/Stop row; the state lives in the session."""
    cancel = threading.Event()
    run: dict[str, Any] = {"name": name, "preset": preset, "status": "running", "message": "starting",
                           "cancel": cancel, "stop_requested": False, "fraction": 0.0}
    st.session_state[RUN_KEY] = run
    bar = bar_slot.progress(0.0, text=f"{name}: starting")

    def progress(f: float, m: str) -> None:
        run["fraction"], run["message"] = f, m
        bar.progress(min(1.0, max(0.0, f)), text=f"{name}: {m}")

    try:
        kw: dict[str, Any] = {}
        if model:  # the current model, on the backend it was loaded on
            kw["model"], kw["backend"] = models.parse_ref(model)
        outcome = run_experiment(name, preset=preset, progress=progress, cancel_event=cancel, force=force, **kw)
    except Cancelled:
        run["status"] = "stopped"
    except Exception as e:  # noqa: BLE001 - shown as a message, the page keeps working
        run.update(status="failed", message=_app_words(messages.error_text(e)))
    else:
        run.update(status="done", message=_app_words(outcome.message), path=str(outcome.path),
                   skipped=outcome.skipped, verdict=str(outcome.verdict.get("status", "?")))
    finally:  # a click (Stop or any other) interrupts the script here too: the run counts as stopped
        if run["status"] == "running":
            run["status"] = "stopped"
    bar_slot.empty()


def _show_run(run: dict[str, Any]) -> None:
    if run["status"] == "running":  # this script run started before the interrupted one finished its step
        deadline = time.monotonic() + STOP_WAIT_S
        with st.spinner("Stopping the experiment at its next progress point..."):
            while run["status"] == "running" and time.monotonic() < deadline:
                time.sleep(0.05)
    what = f"{run['name']}" + (f" ({run['preset']})" if run.get("preset") else " (full run)")
    if run["status"] == "stopped":
        st.warning(f"Stopped: {what} at {run['fraction']:.0%} ({run['message']}). Nothing was written; an earlier "
                   "result of the same settings, if any, is unchanged.")
    elif run["status"] == "failed":
        st.error(f"{what} failed: {run['message']}")
    elif run["status"] == "done":
        verdict_box(run.get("verdict", ""))(run["message"])


def verdict_box(status: str):
    """The message box a verdict is shown in: green only for a passed run, red for a failed one, else yellow (a
    "not reproduced" is never inside a green success banner)."""
    return {"reproduced": st.success, "smoke test passed": st.success, "not reproduced": st.error,
            "smoke test failed": st.error}.get(status, st.warning)


def _sweep_counts(r: ResultFolder) -> str:
    """``4 cells: 3 done, 1 reused`` for a sweep folder (``python -m experiments sweep``)."""
    counts = r.metadata.get("counts") if isinstance(r.metadata.get("counts"), dict) else {}
    parts = [f"{counts[k]} {k}" for k in ("done", "reused", "failed") if isinstance(counts.get(k), int)]
    return f"{r.metadata.get('cells', '?')} cells" + (f": {', '.join(parts)}" if parts else "")


def _verdict_text(r: ResultFolder) -> str:
    if r.metadata.get("kind") == "sweep":
        return "sweep of " + _sweep_counts(r) + (", smoke test" if r.smoke_test else "")
    return str(r.verdict.get("status", "?"))


def _show_verdict(r: ResultFolder) -> None:
    if r.metadata.get("kind") == "sweep":
        st.info(f"A sweep ({_sweep_counts(r)}): every cell's verdict and headline numbers, the means over seeds with "
                "95% confidence intervals and the figures below. Each cell is an ordinary results folder under "
                f"`{r.path / 'cells'}` (point the results folder there to browse them).")
        return
    verdict = r.verdict
    status, reason = verdict.get("status", "?"), verdict.get("reason", "")
    if r.smoke_test:
        verdict_box(status)(f"Smoke test ({r.preset} preset): **{status}** — {reason}. A smoke test runs tiny "
                            "settings to show the code works end to end; only the full run's verdict speaks to the "
                            "finding.")
        return
    verdict_box(status)(f"Verdict: **{status}** — {reason}")


def _figure(r: ResultFolder, name: str, path: Path, pngs: dict[str, Path]) -> None:
    spec = r.figure_spec(name)
    fig = None
    if spec is not None:
        try:
            fig = go.Figure(spec)
        except Exception:  # noqa: BLE001 - a figure from another plotly version: fall back to its PNG
            fig = None
    if fig is not None:
        figures.figure(fig, key=f"repro-{name}")
    elif name in pngs:
        st.image(str(pngs[name]), width="stretch")
    else:
        st.caption(f"{name}: this figure could not be read back; its HTML file is in {path.parent}.")


def _exists(raw: str) -> bool:
    """Whether ``raw`` names something on disk; a name the OS refuses (too long, NUL) counts as not existing."""
    try:
        return bool(raw.strip()) and Path(raw).expanduser().exists()
    except (OSError, ValueError):
        return False


def _results() -> None:
    st.subheader("Results")
    state.bind("repro_root", "results", default=str(RESULTS_ROOT), label="results folder")
    raw = st.text_input("Results folder", key="repro_root",
                        help="The folder experiments write to, or one experiment's folder inside it.")
    if raw.strip() and len(raw) <= 1024 and not _exists(raw):
        st.info(f"No results under {raw} yet. Run one above.")
        return
    root = messages.guarded(check_results_root, raw)  # empty, too long, a file, / or ~: a message
    if root is None:
        return
    results = messages.guarded(list_results, root) or []
    if not results:
        st.info(f"No results under {root} yet. Run one above.")
        return
    labels = {f"{r.metadata.get('experiment', r.path.parent.name)} · {r.path.name} · {_verdict_text(r)}": r
              for r in results}
    just = st.session_state.pop("repro_select_path", None)
    if just is not None:  # the result that just finished
        st.session_state["repro_result"] = next((k for k, r in labels.items() if str(r.path) == just), None)
    state.bind("repro_result", "result", choices=list(labels))
    if st.session_state.get("repro_result") not in labels:
        state.forget("repro_result")
    chosen = labels[st.selectbox("Result", list(labels), key="repro_result")]
    _show_verdict(chosen)
    figs = chosen.figure_files("html")
    pngs = chosen.figure_files("png")
    names = list(figs)
    if names:  # the headline figure first, then the summary, then the rest
        _figure(chosen, names[0], figs[names[0]], pngs)
    st.markdown(chosen.summary)
    for name in names[1:]:
        _figure(chosen, name, figs[name], pngs)


def draw() -> None:
    st.header("Reproductions")
    explain.header("Reproductions")
    exps = all_experiments()
    rows = [{"experiment": n, "title": e.title, "finding": e.finding.claim if e.finding else "",
             "source": e.finding.source if e.finding else "", "published": e.finding.published if e.finding else "",
             "presets": ", ".join(preset_label(p) for p in e.presets)} for n, e in exps.items()]
    text = st.column_config.TextColumn
    figures.table(pd.DataFrame(rows), key="experiments", row_height=4 * 22,  # findings wrap instead of being cut
                  column_config={"finding": text(width="large"), "published": text(width="medium")})
    c1, c2, c3, c4 = st.columns([2, 2, 1.3, 0.7])
    state.bind("repro_exp", "experiment", choices=list(exps))
    name = c1.selectbox("Experiment", list(exps), key="repro_exp")
    presets = list(exps[name].presets) + [FULL]
    if st.session_state.get("repro_preset") not in presets:
        st.session_state.pop("repro_preset", None)
    state.bind("repro_preset", "preset", choices=presets)
    preset = c2.selectbox("Preset", presets, key="repro_preset", format_func=preset_label)
    use_current = c3.checkbox("Use current model", value=False, key="repro_use_model",
                              help="Run the experiment on the model chosen on the Model page.")
    force = c4.checkbox("Force", value=False, key="repro_force",
                        help="Run again even if a complete result of these settings exists (it is replaced).")
    if use_current:
        warning = fit_warning(exps[name], state.current_model())
        if warning:
            st.warning(warning)
    row = st.container(horizontal=True)
    start = row.button("Run", type="primary", key="repro_run")
    row.button("Stop the running experiment", key="repro_stop", on_click=_request_stop)
    bar_slot = st.empty()
    if start:
        model = state.current_model_name() if use_current else None
        _run(name, None if preset == FULL else preset, model, force, bar_slot)
        run = st.session_state[RUN_KEY]
        if run["status"] == "done":
            st.session_state["repro_select_path"] = run["path"]
    run = st.session_state.get(RUN_KEY)
    if run:
        _show_run(run)
    _results()
