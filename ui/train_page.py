"""Train page: train the toy 2-layer attention-only model live and watch induction heads form (the phase change).

The loop is ``training.induction.train_induction``; its per-step callback redraws a chart in an
``st.empty()`` placeholder. Stop: any click starts a new script run at once and Streamlit stops the training one
at its next element update inside the callback (StopException); the Stop button also sets a flag that the
callback turns into ``StopTraining``. Either way the run's ``finally`` marks it stopped, the curves so far stay in
the session, and the new run waits briefly for the old one to finish before saying at which step it stopped.
"""
from __future__ import annotations

import dataclasses
import math
import time
from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st
import torch

from interp.loading import REPO_ROOT
from interp.native_models import build_native_model
from plots.training import curves_figure
from training.induction import (
    PHASE_THRESHOLD,
    InductionTrainConfig,
    TrainHistory,
    eval_tokens,
    evaluate,
    model_config,
    phase_change_step,
    save_trained,
    train_induction,
)
from ui import explain, figures, messages, state, train_grokking

#: preset -> (label, config). Tests add a tiny one. Times measured on this project's 2-core CPU machine with one
#: thread while other jobs ran (training only; the live chart adds a little): fast 57 s (phase change at step
#: 440); default 43 min at the lowest priority under heavy load (phase change at step 700; models/attn-only-2l's
#: card: 20.8 min).
PRESETS: dict[str, tuple[str, InductionTrainConfig]] = {
    "fast": ("Fast: d_model 64, context 64, vocabulary 256, 600 steps (measured 1 min on a 2-core CPU, up to "
             "3 min when it is busy; the phase change comes near step 440)",
             InductionTrainConfig(d_model=64, seq_len=64, d_vocab=256, steps=600, eval_every=20, seg_max=32,
                                  lr=2e-3)),
    "default": ("Default: d_model 128, context 128, vocabulary 1000, 2000 steps (21 to 43 min on a 2-core CPU: "
                "the attn-only-2l model card's run; the phase change comes near step 700)",
                InductionTrainConfig()),
}
#: Trained models are saved here (not in models/) so "inspect this model" can open them on other pages.
TRAINED_DIR = REPO_ROOT / ".cache" / "train-page"
RUN_KEY = "train_run"
STOP_KEY = "train_stop_requested"
STOP_WAIT_S = 15.0  # how long a new script run waits for a stopped training run to finish its step


class StopTraining(Exception):
    """Raised from the training callback when Stop was pressed."""
    def __init__(self, step: int):
        super().__init__(f"stopped at step {step}")
        self.step = step


def _request_stop() -> None:
    st.session_state[STOP_KEY] = True


def _append(h: TrainHistory, step: int, m: dict[str, Any]) -> None:
    """Add the callback's eval record of ``step`` to a live history (same fields as train_induction keeps)."""
    h.steps.append(step)
    h.tokens.append(int(m["tokens"]))
    h.train_loss.append(float(m["loss"]))
    h.loss_first.append(float(m["loss_first"]))
    h.loss_second.append(float(m["loss_second"]))
    h.icl_score.append(float(m["icl_score"]))
    h.induction.append(m["induction"].tolist())
    h.prev_token.append(m["prev_token"].tolist())


def _title(run: dict[str, Any]) -> str:
    c: InductionTrainConfig = run["config"]
    return (f"{c.n_layers}-layer attention-only model (d_model {c.d_model}, {c.n_heads} heads, context "
            f"{c.seq_len}) on repeated random segments: step {run['step']}/{c.steps}")


def step0_record(config: InductionTrainConfig) -> dict[str, Any]:
    """The evaluation train_induction records before its first step (same seed, so the same initial model),
    computed up front so the chart appears at once instead of after the first eval interval."""
    tokens, half = eval_tokens(config)
    ev = evaluate(build_native_model(model_config(config), seed=config.seed), tokens, half)
    return {**ev, "tokens": 0, "loss": math.nan}


def _train(preset: str, slot, bar_slot) -> None:
    """Train with live curves; the run's state lives in the session so a stop or rerun keeps the curves."""
    config = PRESETS[preset][1]
    run = {"preset": preset, "config": config, "history": TrainHistory(), "step": 0, "status": "running"}
    st.session_state[RUN_KEY] = run
    st.session_state[STOP_KEY] = False
    bar = bar_slot.progress(0.0, text="starting: evaluating the untrained model (step 0)")
    draws = {"n": 0}

    def draw_curves() -> None:
        draws["n"] += 1
        slot.plotly_chart(curves_figure(run["history"], config.steps, _title(run),
                                        phase=phase_change_step(run["history"]), threshold=PHASE_THRESHOLD),
                          width="stretch", key=f"train-live-{draws['n']}")

    _append(run["history"], 0, step0_record(config))
    draw_curves()

    def callback(step: int, m: dict[str, Any]) -> None:
        run["step"] = step
        h = run["history"]
        if step == 1 and h.train_loss and math.isnan(h.train_loss[0]):
            h.train_loss[0] = float(m["loss"])  # as train_induction does: step 0's loss is the first batch's
        if "icl_score" in m:
            _append(run["history"], step, m)
            draw_curves()
        bar.progress(step / config.steps, text=f"step {step}/{config.steps} · training loss {m['loss']:.3f}")
        if st.session_state.get(STOP_KEY):
            raise StopTraining(step)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these small models gain nothing from more; on a busy 2-core machine two were 6x slower
    try:
        outcome = train_induction(config, callback=callback)
    except StopTraining as e:
        run["status"] = "stopped"
        run["step"] = e.step
    except Exception as e:  # noqa: BLE001 - shown as a message, the page keeps working
        run["status"] = "failed"
        messages.show_error(e)
    else:
        run.update(status="done", history=outcome.history, seconds=outcome.history.seconds)
        run["model_dir"] = messages.guarded(_save, outcome, preset)
    finally:  # a click during training interrupts the script here too: keep what was drawn as "stopped"
        torch.set_num_threads(threads)
        if run["status"] == "running":
            run["status"] = "stopped"
        st.session_state[STOP_KEY] = False
    bar_slot.empty()
    slot.empty()


def _save(outcome, preset: str) -> str:
    """Save the trained model where the other pages can load it; returns its directory."""
    out = TRAINED_DIR / f"{preset}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    c = outcome.config
    card = (f"# Trained on the Train page ({preset} preset)\n\n{c.n_layers}-layer attention-only model, d_model "
            f"{c.d_model}, {c.n_heads} heads, context {c.seq_len}, vocabulary t1..t{c.d_vocab - 1}, {c.steps} "
            f"steps on repeated random segments in {outcome.history.seconds:.0f} s.\n")
    return str(save_trained(outcome, out, card))


def _inspect(model_dir: str, page: str) -> None:
    st.session_state[state.MODEL] = model_dir
    st.session_state.pop(state.PROMPT, None)  # the new model's own example prompt
    st.session_state["page"] = page


def _wait_for_previous_run(run: dict[str, Any]) -> None:
    """A click while training starts this script run before the training one has stopped (it stops at its next
    step): wait for its ``finally`` to mark the run, so the page shows where it stopped."""
    if run["status"] != "running":
        return
    deadline = time.monotonic() + STOP_WAIT_S
    with st.spinner("Stopping training at the end of its current step..."):
        while run["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.05)


def _show(run: dict[str, Any]) -> None:
    """The last run's status, final curves and per-eval table (kept in the session across reruns)."""
    h: TrainHistory = run["history"]
    phase = phase_change_step(h, PHASE_THRESHOLD)
    when = (f"the phase change (best induction score >= {PHASE_THRESHOLD}) came at step {phase}"
            if phase is not None else f"no head reached an induction score of {PHASE_THRESHOLD}")
    if run["status"] == "done":
        st.success(f"Trained {run['step']} steps in {run.get('seconds', 0.0):.0f} s; {when}.")
        if run.get("model_dir"):
            row = st.container(horizontal=True)
            row.caption(f"Saved to {run['model_dir']}. Inspect this model:")
            row.button("on Attention", key="train_inspect_attention", on_click=_inspect,
                       args=(run["model_dir"], "Attention"))
            row.button("on Heads", key="train_inspect_heads", on_click=_inspect, args=(run["model_dir"], "Heads"))
    elif run["status"] == "stopped":
        st.warning(f"Training stopped at step {run['step']} of {run['config'].steps}; {when} so far.")
    elif run["status"] == "failed":
        st.error(f"Training failed at step {run['step']}; curves up to there are shown.")
    else:
        st.info(f"Training is still finishing step {run['step']}; click Train to start again or rerun to refresh.")
    if not h.steps:
        return
    figures.figure(curves_figure(h, run["config"].steps, _title(run), phase=phase_change_step(h),
                                threshold=PHASE_THRESHOLD), key="train-curves")
    table = pd.DataFrame({"step": h.steps, "tokens": h.tokens, "train_loss": h.train_loss,
                          "loss_first_copy": h.loss_first, "loss_repeated_copy": h.loss_second,
                          "icl_score": h.icl_score, "max_induction": h.max_induction()})
    figures.table(table, key="train-history")


MODES = ("Induction phase change", "Grokking")


def draw() -> None:
    st.header("Train")  # the page's title first, then what to train
    explain.header("Train")
    state.bind("train_mode", "mode", default=MODES[0], choices=MODES)
    if st.radio("Mode", MODES, horizontal=True, key="train_mode") == "Grokking":
        return train_grokking.draw()
    st.subheader("Train: watch induction heads form")
    st.caption("A 2-layer attention-only transformer learns from scratch on rows of a random segment tiled to fill "
               "the context: after the first copy, every token is predictable only by looking back (induction). "
               "Every few steps it is evaluated on BOS + A + A; the best head's induction score jumps and the loss "
               "on the repeated copy drops well below the first copy's: the phase change (Olsson et al. 2022).")
    state.bind("train_preset", "preset", choices=list(PRESETS))
    preset = st.radio("Setting", list(PRESETS), format_func=lambda k: PRESETS[k][0], key="train_preset")
    with st.expander("Configuration"):
        cfg = dataclasses.asdict(PRESETS[preset][1])
        figures.table(pd.DataFrame({"setting": list(cfg), "value": [str(v) for v in cfg.values()]}),
                     key="train-config")
    row = st.container(horizontal=True)
    start = row.button("Train", type="primary", key="train_start")
    row.button("Stop", key="train_stop", on_click=_request_stop)
    bar_slot, slot = st.empty(), st.empty()
    if start:
        _train(preset, slot, bar_slot)
    run = st.session_state.get(RUN_KEY)
    if run:
        _wait_for_previous_run(run)
        _show(run)
