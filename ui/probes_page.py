"""Probes page: a linear probe per layer, on Othello board state or an uploaded (text, label) CSV, drawn against
the majority class, Hewitt & Liang's control task and selectivity. The work is in probes/."""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import Any

import streamlit as st
import torch

from interp.errors import WorkbenchError
from interp.eta import Eta, format_seconds, scaled_estimate
from interp.loading import bundled_models
from interp.prompt_check import check_texts
from plots.probes import accuracy_figure
from probes.probing.layers import capture_layers, capture_texts
from probes.probing.report import ProbeReport, probe_by_layer, probe_verdict
from probes.stats import SMALL_TEST_SET, wilson_interval
from tasks.labelled import LabelledTexts, bracket_example_csv, parse_labelled_csv
from tasks.othello import TRAIN_OTHELLO_COMMAND, is_othello_model, othello_probe_set
from ui import explain, figures, messages, models, state

OTHELLO, UPLOAD, PASTE = "Othello board state (built-in)", "Upload a CSV", "Paste a CSV"
OTHELLO_MODEL = "othello-gpt"
RESULT_KEY = "probe_result"
#: Pasted by default: is a bracket still open at the last token (a code LM should know; its embeddings cannot).
EXAMPLE_CSV = bracket_example_csv()
#: Measured Othello sweep: 287 s for the defaults (200 games, control task on, 60 iterations) on a 2-core CPU.
OTHELLO_MEASURED_S, OTHELLO_MEASURED_GAMES = 287.0, 200


def othello_estimate_s(n_games: int, control: bool, max_iter: int) -> float:
    """Rough seconds for an Othello sweep, scaled from the measured default run (linear in games; the control
    task roughly doubles the fitting, which is ~70% of the time and grows with the iterations)."""
    fit_share = 0.7 * (max_iter / 60) * (1.0 if control else 0.5)
    return scaled_estimate(OTHELLO_MEASURED_S, OTHELLO_MEASURED_GAMES, n_games) * (0.3 + fit_share)


def _othello_handle():
    """(model name, handle) of an Othello-GPT: the current model if it is one, else the bundled one; None after
    a message saying how to get it."""
    name = state.current_model_name()
    handle = state.current_model()
    if handle is not None and is_othello_model(handle):
        return name, handle
    current = f"The current model ({handle.info.name})" if handle is not None else "The current model"
    if OTHELLO_MODEL in bundled_models():
        st.info(f"{current} is not an Othello-GPT; probing the bundled `{OTHELLO_MODEL}` instead.")
        other = messages.guarded(models.cached_model, OTHELLO_MODEL)
        return (OTHELLO_MODEL, other) if other is not None else None
    st.error(f"{current} is not an Othello-GPT (61 move tokens), and `models/{OTHELLO_MODEL}` is not present "
             f"(it may still be training). Get it with:\n\n`{TRAIN_OTHELLO_COMMAND}`\n\nthen choose it on the Model "
             "page, or probe your own data with a CSV.")
    return None


def _fit_settings(prefix: str) -> dict[str, Any]:
    state.bind(f"{prefix}_seed", "seed", default=0, kind=int, lo=0, hi=2**31 - 1)
    state.bind(f"{prefix}_iter", "iterations", default=60, kind=int, lo=5, hi=500)
    state.bind(f"{prefix}_control", "control", default=True, kind=bool)
    c1, c2, c3 = st.columns(3)
    seed = c1.number_input("Seed (split and control task)", 0, 2**31 - 1, key=f"{prefix}_seed")
    max_iter = c2.number_input("L-BFGS iterations per fit", 5, 500, key=f"{prefix}_iter")
    control = c3.checkbox("Control task at every layer (2x time)", key=f"{prefix}_control",
                          help="Hewitt & Liang 2019: the same probe on labels that depend only on the input token.")
    return {"seed": int(seed), "max_iter": int(max_iter), "control": bool(control)}


def _run(title: str, short: str, work: Callable[[Callable[[float, str], None]], ProbeReport],
         eta: bool = False, label: str = "the label") -> None:
    """Run ``work(progress)`` with a progress bar (and the time left when ``eta``); keep the report in the
    session, or show why it failed."""
    bar = st.progress(0.0, text="starting")
    clock = Eta()

    def progress(f: float, m: str) -> None:
        f = min(1.0, max(0.0, f))
        bar.progress(f, text=f"{m} · {clock.label(f)}" if eta else m)

    try:
        report = work(progress)
    except Exception as e:  # noqa: BLE001 - every failure is a message; the page keeps working
        messages.show_error(e)
        return
    finally:
        bar.empty()
    st.session_state[RESULT_KEY] = {"title": title, "short": short, "report": report, "label": label}


def _othello_section() -> None:
    got = _othello_handle()
    if got is None:
        return
    name, handle = got
    state.bind("probe_games", "games", default=200, kind=int, lo=10, hi=2000)
    state.bind("probe_encoding", "encoding", default="relative", choices=("relative", "absolute"))
    c1, c2 = st.columns(2)
    n_games = c1.number_input("Random games", 10, 2000, key="probe_games",
                              help="Every position of these fresh games is a row (~58 per game); split by game.")
    encoding = c2.radio("Board encoding", ["relative", "absolute"], key="probe_encoding", horizontal=True,
                        format_func=lambda e: {"relative": "relative (empty / mine / theirs)",
                                               "absolute": "absolute (empty / black / white)"}[e])
    fit = _fit_settings("probe_othello")
    est = othello_estimate_s(int(n_games), fit["control"], fit["max_iter"])
    st.caption(f"Estimated time: about {format_seconds(est)} (scaled from a measured {OTHELLO_MEASURED_S:.0f} s "
               f"for {OTHELLO_MEASURED_GAMES} games with the control task on a 2-core CPU; the bar shows the time "
               "left while it runs).")
    if not st.button("Run probe sweep", type="primary", key="probe_run_othello"):
        return

    def work(progress: Callable[[float, str], None]) -> ProbeReport:
        progress(0.0, f"generating {n_games} games")
        data = othello_probe_set(int(n_games), seed=fit["seed"])
        with tempfile.TemporaryDirectory(prefix="probe-acts-") as tmp:
            feats = capture_layers(handle, torch.from_numpy(data.tokens), (data.game, data.move), tmp,
                                   progress=lambda f, m: progress(0.3 * f, m.replace("rows", "games")))
        return probe_by_layer(feats, data.labels(encoding), data.move_tokens, seed=fit["seed"], groups=data.game,
                              n_classes=3, control=fit["control"], max_iter=fit["max_iter"], l2_grid=(1e-3,),
                              progress=lambda f, m: progress(0.3 + 0.7 * f, m))

    _run(f"{handle.info.name}: board state ({encoding}, 64 squares x 3 classes) from {n_games} random games",
         f"Othello board ({encoding})", work, eta=True, label=f"the board state ({encoding})")


def _csv_bytes(source: str) -> tuple[bytes | str | None, str]:
    if source == UPLOAD:
        up = st.file_uploader("CSV with a text column and a label column (UTF-8)", type=["csv"], key="probe_upload")
        return (up.getvalue(), up.name) if up is not None else (None, "")
    state.bind("probe_csv_text", "csv", default=EXAMPLE_CSV)
    text = st.text_area("CSV (header row first)", height=160, key="probe_csv_text")
    return text, "the pasted CSV"


def _csv_section(source: str) -> None:
    handle = state.current_model()
    if handle is None:
        return
    data, label = _csv_bytes(source)
    state.bind("probe_text_col", "text_column", default="text")
    state.bind("probe_label_col", "label_column", default="label")
    state.bind("probe_position", "read", default="last")
    c1, c2, c3 = st.columns(3)
    text_col = c1.text_input("Text column", key="probe_text_col")
    label_col = c2.text_input("Label column", key="probe_label_col")
    rule = c3.text_input("Read position", key="probe_position",
                         help="'last' (last token), a token index (BOS is 0; negative counts from the end), or "
                              "'start:end' (mean over that span).")
    if data is None:
        st.info("Upload a CSV of (text, label) rows to probe the current model for that label at every layer.")
        return
    ds: LabelledTexts | None = messages.guarded(parse_labelled_csv, data, text_column=text_col.strip(),
                                              label_column=label_col.strip(), position=rule, source=label)
    if ds is None:
        return
    st.caption(f"{len(ds)} rows, {len(ds.classes)} classes: {', '.join(ds.classes[:12])}"
               f"{' ...' if len(ds.classes) > 12 else ''}; reading position {ds.position!r} of "
               f"{handle.info.name}.")
    misfit = check_texts(handle, list(ds.texts))
    if misfit:
        st.warning(misfit)
    fit = _fit_settings("probe_csv")
    if not st.button("Run probe sweep", type="primary", key="probe_run_csv"):
        return

    def work(progress: Callable[[float, str], None]) -> ProbeReport:
        progress(0.0, "capturing every layer")
        feats = capture_texts(handle, ds.texts, ds.position,
                              progress=lambda f, m: progress(0.3 * f, m))
        return probe_by_layer(feats.features, ds.labels, feats.token_ids, seed=fit["seed"],
                              n_classes=len(ds.classes), control=fit["control"], max_iter=fit["max_iter"],
                              progress=lambda f, m: progress(0.3 + 0.7 * f, m))

    _run(f"{handle.info.name}: '{label_col}' from {label} ({len(ds)} rows, position {ds.position!r})",
         f"'{label_col}' on {handle.info.name}", work, label=f"'{label_col}'")


def _results() -> None:
    result = st.session_state.get(RESULT_KEY)
    if not result:
        return
    report: ProbeReport = result["report"]
    st.subheader("Result")
    best, acc = report.best()
    i = report.layers.index(best)
    sel = report.selectivity[i]
    verdict = probe_verdict(report, result.get("label", "the label"))
    (st.success if verdict.positive else st.warning)(f"**Verdict: {verdict.kind.replace('_', ' ')}.** {verdict.text}")
    st.markdown(f"{result['title']}. Best layer **{best}**: {acc:.1%} test accuracy vs majority class "
                f"{report.majority_accuracy:.1%}" + (f", selectivity {sel:+.1%}" if sel == sel else "")
                + f". Rows: {report.n_train} train / {report.n_val} validation / {report.n_test} test.")
    lo, hi = wilson_interval(float(acc), int(report.n_test)) if report.n_test > 0 else (float("nan"),) * 2
    note = (f"95% interval for the best layer's test accuracy: {lo:.1%} to {hi:.1%} "
            f"({report.n_test} test rows; Wilson interval).")
    if report.n_test < SMALL_TEST_SET:
        st.warning(f"Only {report.n_test} test rows: accuracies are rough. {note} Differences between layers "
                   "smaller than that interval may be noise; use more rows for a firmer answer.")
    else:
        st.caption(note)
    figures.figure(accuracy_figure(report, result["short"]), key="probe-accuracy")
    figures.table(report.table(), key="probe-by-layer")


def draw() -> None:
    st.header("Linear probes")
    explain.header("Probes")
    st.caption("One logistic probe per layer reads a label from the residual stream; it counts only if it beats the "
               "majority class and the control task (same probe, labels tied to the input token alone).")
    state.bind("probe_source", "dataset", default=OTHELLO, choices=(OTHELLO, UPLOAD, PASTE))
    source = st.radio("Dataset", [OTHELLO, UPLOAD, PASTE], horizontal=True, key="probe_source")
    try:
        if source == OTHELLO:
            _othello_section()
        else:
            _csv_section(source)
    except WorkbenchError as e:  # a widget value the analysis refuses: say so, keep the results below
        messages.show_error(e)
    _results()
