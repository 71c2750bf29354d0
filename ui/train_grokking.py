"""Train page, grokking mode: train modular addition live and watch it memorise, then generalise (Nanda et al. 2023).

Live: ``training.grokking.train_grokking`` with the embedding's Fourier spectrum in every logged record; the
train/test curves and the spectrum (dominant frequencies marked) are redrawn in ``st.empty()`` slots as it trains.
Stop sets a flag that the trainer's ``should_stop`` reads (a click also reruns the script, which interrupts the
old run at its next redraw); the curves so far stay in the session. Bundled run: the phase boundaries and
progress measures of ``models/grokking-p113`` read from its ``training_log.json`` (written by the ``grokking``
experiment).
"""
from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st
import torch

from interp.loading import REPO_ROOT
from plots.grokking import (
    curves_figure,
    neuron_clusters_figure,
    progress_figure,
    spectrum_figure,
    spectrum_over_time_figure,
    weight_norm_figure,
)
from probes.fourier.modular import key_frequencies, neuron_clusters, top_frequencies
from training.grokking import GrokConfig, GrokHistory, all_pairs, fast_forward, grok_epoch, train_grokking
from ui import figures, messages

#: The bundled run whose training_log.json the "bundled run" view reads.
BUNDLED_DIR = REPO_ROOT / "models" / "grokking-p113"
PRIMES = (11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109, 113)
#: model size -> (label, d_model, n_heads, d_mlp)
SIZES: dict[str, tuple[str, int, int, int]] = {
    "small": ("small: d_model 32, 4 heads, d_mlp 64 (fast)", 32, 4, 64),
    "published": ("published: d_model 128, 4 heads, d_mlp 512", 128, 4, 512),
}
#: Live defaults. Measured on this project's shared 2-core CPU (1 thread, other jobs running): p = 23, 70% of the
#: pairs, lr 1e-2, small model memorises by epoch ~75 and reaches 95% test accuracy at epoch ~725 (~50 s).
DEFAULTS = {"p": 23, "frac": 0.7, "wd": 1.0, "lr": 1e-2, "epochs": 1000, "size": "small"}
RUN_KEY, STOP_KEY = "grok_run", "grok_stop"
REDRAW_EVERY = 4  # logged epochs between live redraws


def _request_stop() -> None:
    st.session_state[STOP_KEY] = True


def _dominant(norms: list[float]) -> list[int]:
    """Frequencies marked live: the fewest carrying 70% of the embedding's norm, once that is at most 8 of them."""
    top = top_frequencies(torch.tensor(norms), 0.7)
    return top if len(top) <= 8 else []


def _config() -> GrokConfig:
    ss = st.session_state
    _, d_model, n_heads, d_mlp = SIZES[ss.get("grok_size", DEFAULTS["size"])]
    epochs = int(ss.get("grok_epochs", DEFAULTS["epochs"]))
    return GrokConfig(p=int(ss.get("grok_p", DEFAULTS["p"])),
                      frac_train=float(ss.get("grok_frac", DEFAULTS["frac"])),
                      weight_decay=float(ss.get("grok_wd", DEFAULTS["wd"])),
                      lr=float(ss.get("grok_lr", DEFAULTS["lr"])), epochs=epochs, d_model=d_model, n_heads=n_heads,
                      d_mlp=d_mlp,
                      log_every=max(1, min(25, epochs // 40)), snapshot_every=0)


def _train(config: GrokConfig, curves_slot, spectrum_slot, bar_slot) -> None:
    run: dict[str, Any] = {"config": config, "history": GrokHistory(), "epoch": 0, "status": "running",
                           "norms": [], "key": []}
    st.session_state[RUN_KEY] = run
    st.session_state[STOP_KEY] = False
    bar = bar_slot.progress(0.0, text="starting")
    draws = {"n": 0, "logs": 0}

    def redraw() -> None:
        draws["n"] += 1
        h = run["history"]
        curves_slot.plotly_chart(curves_figure(h.epochs, h.train_loss, h.test_loss, h.train_acc, h.test_acc,
                                               h.phases(config.p), title=f"p = {config.p}: train vs test"),
                                 width="stretch", key=f"grok-live-curves-{draws['n']}")
        if run["norms"]:
            spectrum_slot.plotly_chart(spectrum_figure(run["norms"], _dominant(run["norms"]),
                                                       f"Embedding Fourier spectrum at epoch {run['epoch']}"),
                                       width="stretch", key=f"grok-live-spectrum-{draws['n']}")

    def callback(epoch: int, m: dict[str, Any]) -> None:
        h = run["history"]
        h.epochs.append(epoch)
        for k in ("train_loss", "test_loss", "train_acc", "test_acc"):
            getattr(h, k).append(float(m[k]))
        run["epoch"], run["norms"] = epoch, m.get("embed_norms", run["norms"])
        draws["logs"] += 1
        if draws["logs"] % REDRAW_EVERY == 1 or epoch == config.epochs:
            redraw()
        bar.progress(epoch / config.epochs, text=f"epoch {epoch}/{config.epochs} · train acc {m['train_acc']:.1%}"
                                                 f" · test acc {m['test_acc']:.1%}")

    try:
        outcome = train_grokking(config, callback=callback, should_stop=lambda: bool(st.session_state.get(STOP_KEY)),
                                 log=None, with_spectrum=True)
    except Exception as e:  # noqa: BLE001 - shown as a message, the page keeps working
        run["status"] = "failed"
        messages.show_error(e)
    else:
        run["status"] = "stopped" if outcome.stopped else "done"
        run["seconds"] = outcome.history.seconds

        with torch.no_grad():
            _, acts = fast_forward(outcome.model, all_pairs(config.p)[0])
        clusters = neuron_clusters(acts, config.p)
        run["key"], run["counts"] = key_frequencies(clusters), clusters.counts()
    finally:
        if run["status"] == "running":
            run["status"] = "stopped"
        st.session_state[STOP_KEY] = False
    bar_slot.empty()
    curves_slot.empty()
    spectrum_slot.empty()


def _show(run: dict[str, Any]) -> None:
    h: GrokHistory = run["history"]
    c: GrokConfig = run["config"]
    ph = h.phases(c.p)
    what = (f"train accuracy reached 99% at epoch {ph['memorised']}, test accuracy 95% at epoch {grok_epoch(h)}"
            if grok_epoch(h) is not None else
            f"train accuracy reached 99% at epoch {ph['memorised']}; test accuracy has not reached 95% yet "
            "(more epochs, more weight decay or a larger training fraction)")
    if run["status"] == "done":
        st.success(f"Trained {run['epoch']} epochs in {run.get('seconds', 0.0):.0f} s: {what}.")
    elif run["status"] == "stopped":
        st.warning(f"Stopped at epoch {run['epoch']} of {c.epochs}: {what}.")
    elif run["status"] == "failed":
        st.error(f"Training failed at epoch {run['epoch']}; the curves up to there are shown.")
    if not h.epochs:
        return
    figures.figure(curves_figure(h.epochs, h.train_loss, h.test_loss, h.train_acc, h.test_acc, ph,
                                title=f"p = {c.p}: train vs test"), key="grok-curves")
    if run["norms"]:
        key = run["key"] or _dominant(run["norms"])
        label = "key frequencies from the MLP neurons" if run["key"] else "dominant frequencies"
        figures.figure(spectrum_figure(run["norms"], key, f"Embedding Fourier spectrum at epoch {run['epoch']} "
                                                         f"({label})"), key="grok-spectrum")
    if run.get("counts"):
        figures.figure(neuron_clusters_figure(run["counts"], run["key"], (c.p - 1) // 2), key="grok-clusters")


def _live() -> None:
    st.caption("A 1-layer transformer learns (a + b) mod p from a fraction of all pairs, full batch, AdamW with "
               "weight decay. It first memorises the training pairs (train accuracy ~100%, test accuracy low), then "
               "generalises as weight decay trades the lookup table for a few Fourier frequencies: watch the "
               "embedding's spectrum concentrate on them.")
    cols = st.columns(3)
    cols[0].selectbox("p (prime)", PRIMES, index=PRIMES.index(DEFAULTS["p"]), key="grok_p")
    cols[1].slider("training fraction", 0.1, 0.9, DEFAULTS["frac"], 0.05, key="grok_frac")
    cols[2].number_input("weight decay", 0.0, 10.0, DEFAULTS["wd"], 0.1, key="grok_wd")
    cols = st.columns(3)
    cols[0].number_input("epochs", 10, 100_000, DEFAULTS["epochs"], 100, key="grok_epochs")
    cols[1].select_slider("learning rate", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2], DEFAULTS["lr"], key="grok_lr")
    cols[2].radio("model", list(SIZES), format_func=lambda k: SIZES[k][0], key="grok_size")
    row = st.container(horizontal=True)
    start = row.button("Train", type="primary", key="grok_start")
    row.button("Stop", key="grok_stop_button", on_click=_request_stop)
    bar_slot, curves_slot, spectrum_slot = st.empty(), st.empty(), st.empty()
    if start:
        try:
            config = _config()
        except Exception as e:  # noqa: BLE001
            messages.show_error(e)
            return
        _train(config, curves_slot, spectrum_slot, bar_slot)
    run = st.session_state.get(RUN_KEY)
    if run:
        _show(run)


def _bundled() -> None:
    log_file = BUNDLED_DIR / "training_log.json"
    if not log_file.is_file():
        st.info(f"No bundled grokking run at {BUNDLED_DIR}: create it with `python -m experiments run grokking "
                f"--set out_model=models/grokking-p113`.")
        return
    try:
        log = json.loads(log_file.read_text())
    except (OSError, ValueError) as e:
        st.error(f"{log_file} is unreadable ({e}); re-create it with the grokking experiment.")
        return
    ph, key, ms = log.get("phases", {}), log.get("key_frequencies", []), log.get("measures", {})
    st.caption(f"models/{BUNDLED_DIR.name}: p = {log.get('p')}, {log['epochs'][-1]:,} epochs; memorised (train acc "
               f">= 99%) at epoch {ph.get('memorised')}, cleanup from {ph.get('cleanup_start')} to "
               f"{ph.get('cleanup_end')}, test acc >= 95% at {ph.get('grokked')}; key frequencies {key}.")
    figures.figure(curves_figure(log["epochs"], log["train_loss"], log["test_loss"], log["train_acc"],
                                log["test_acc"], ph, title="Bundled run: train vs test"), key="grok-b-curves")
    if ms.get("epochs"):
        figures.figure(progress_figure(ms["epochs"], {"train loss": ms["train_loss"], "test loss": ms["test_loss"],
                                                     "restricted loss (test)": ms["restricted_test"],
                                                     "excluded loss (train)": ms["excluded_train"]}, ph),
                      key="grok-b-progress")
        figures.figure(weight_norm_figure(ms["epochs"], ms["sum_sq_weights"], ph), key="grok-b-weights")
        figures.figure(spectrum_over_time_figure(ms["epochs"], ms["embed_norms"], key), key="grok-b-spectrum-time")
    if log.get("final_embed_norms"):
        figures.figure(spectrum_figure(log["final_embed_norms"], key, "Embedding Fourier spectrum (final)"),
                      key="grok-b-spectrum")
    if log.get("neuron_counts"):
        counts = {int(k): v for k, v in log["neuron_counts"].items()}
        figures.figure(neuron_clusters_figure(counts, key, (int(log.get("p", 3)) - 1) // 2), key="grok-b-clusters")
    if log.get("checks"):
        figures.table(pd.DataFrame([{"check": c["claim"], "passed": c["passed"], "detail": c["detail"]}
                                   for c in log["checks"]]), key="grok-b-checks")


def draw() -> None:
    st.subheader("Train: watch a model grok modular addition")
    view = st.radio("View", ["Train live", "Bundled run (p = 113)"], horizontal=True, key="grok_view")
    if view == "Train live":
        _live()
    else:
        _bundled()
