"""Superposition panel: pick sparsity and importance, watch 5 features find places in 2 dimensions.

A tiny n=5, m=2 ReLU output model (Elhage et al. 2022) trains live from a few restarts in one batched tensor
(``training/superposition.py``); the columns of W are redrawn while it trains, then the lowest-loss restart is
shown with its norms and angles. Training starts on request (a button), never when the page opens; after the
first training in a session, moving a slider trains the new setting at once. Results are kept per setting in
memory for every session of the server and on disk (``WORKBENCH_CACHE``, default ``.cache/``) across restarts
(a result depends only on the setting, the seed and the training settings), so a setting trained once opens at
once. Called from the Features page (``draw()``); it needs no model.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
import torch

from plots.superposition import columns_2d
from probes.features.superposition import column_angles_2d, dimensionality, feature_norms
from training.superposition import ToyTrainConfig, best_of_restarts, train_toy_models
from ui import state
from ui.figures import figure
from ui.messages import guarded

N_FEATURES, N_HIDDEN = 5, 2
RESTARTS = 4
#: Small and quick: ~1-3 s on one CPU core; lr higher than the experiment's because there are few steps.
LIVE_TRAIN = ToyTrainConfig(steps=1500, batch_size=256, lr=5e-3, lr_schedule="cosine", log_every=250,
                            eval_samples=4096)
MAX_CACHED = 24
#: (sparsity, decay, seed) -> trained result, for every session of this process; oldest dropped past MAX_CACHED.
RESULTS: dict[tuple[float, float, int], dict[str, Any]] = {}
_LOCK = threading.Lock()
LIVE = "sp_live"  # session: the reader trained once, so slider moves train at once


def _cache_file(setting: tuple[float, float, int]) -> Path:
    """Where a setting's result is kept across server restarts (the training settings are part of the name)."""
    root = Path(os.environ.get("WORKBENCH_CACHE") or Path(__file__).resolve().parent.parent / ".cache")
    cfg = hashlib.sha256(json.dumps(dataclasses.asdict(LIVE_TRAIN), sort_keys=True, default=str).encode())
    s, d, seed = setting
    return root / "superposition" / f"s{s}_d{d}_seed{seed}_{RESTARTS}x{cfg.hexdigest()[:12]}.json"


def _load(setting: tuple[float, float, int]) -> dict[str, Any] | None:
    try:
        raw = json.loads(_cache_file(setting).read_text())
        return {"W": np.asarray(raw["W"], dtype=np.float32), "loss": float(raw["loss"]),
                "importance": np.asarray(raw["importance"], dtype=np.float32)}
    except (OSError, ValueError, KeyError, TypeError):  # absent or unreadable: train again when asked
        return None


def _save(setting: tuple[float, float, int], result: dict[str, Any]) -> None:
    path = _cache_file(setting)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"W": np.asarray(result["W"]).tolist(), "loss": result["loss"],
                                   "importance": np.asarray(result["importance"]).tolist()}))
        tmp.replace(path)
    except OSError:  # a read-only cache only costs a retrain next time
        pass


def _remember(setting: tuple[float, float, int], result: dict[str, Any]) -> None:
    with _LOCK:
        while len(RESULTS) >= MAX_CACHED:
            RESULTS.pop(next(iter(RESULTS)))
        RESULTS[setting] = result


def _train(sparsity: float, decay: float, seed: int, live: Any) -> dict[str, Any]:
    """Train RESTARTS models at this setting, redrawing the current best into ``live``; the lowest-loss one."""
    importance = (decay ** torch.arange(N_FEATURES, dtype=torch.float32)).repeat(RESTARTS, 1)  # [R, n]
    density = torch.full((RESTARTS, N_FEATURES), 1.0 - sparsity)
    imp = importance[0].numpy()

    def redraw(step: int, losses: torch.Tensor, model: Any) -> None:
        W = model.W.detach()[int(losses.argmin())].numpy()
        live.plotly_chart(columns_2d([W], [f"step {step}/{LIVE_TRAIN.steps}"], [imp], title="Training..."),
                          key=f"sp-live-{step}")

    cfg = dataclasses.replace(LIVE_TRAIN, seed=seed)
    out = train_toy_models(importance, density, N_HIDDEN, cfg, callback=redraw)
    W, _ = best_of_restarts(out.W, out.eval_loss, RESTARTS)
    return {"W": W[0].numpy(), "loss": float(out.eval_loss.min()), "importance": imp}


def draw() -> None:
    st.subheader("Superposition: 5 features in 2 dimensions")
    st.caption("The ReLU output model x' = ReLU(WᵀWx + b) of Elhage et al. 2022, trained live. Feature i is 0 with "
               "probability S (sparsity), else uniform in [0, 1]; its importance (weight in the loss) is decayⁱ. "
               "Dense features: the model keeps the two most important ones orthogonal and drops the rest. Sparse "
               "features: it stores all five in superposition (with equal importance, a regular pentagon).")
    state.bind("sp_sparsity", "sparsity", default=0.9, kind=float, lo=0.0, hi=0.99)
    state.bind("sp_decay", "decay", default=0.9, kind=float, lo=0.5, hi=1.0)
    state.bind("sp_seed", "toy_seed", default=0, kind=int, lo=0, hi=10_000, label="toy seed")
    c1, c2, c3 = st.columns(3)
    sparsity = c1.slider("Sparsity S", 0.0, 0.99, step=0.01, key="sp_sparsity",
                         help="Probability that a feature is zero; density is 1 - S.")
    decay = c2.slider("Importance decay", 0.5, 1.0, step=0.01, key="sp_decay",
                      help="Feature i has importance decay^i; 1.0 makes all five equally important.")
    seed = int(c3.number_input("Seed", 0, 10_000, step=1, key="sp_seed"))
    setting = (round(float(sparsity), 4), round(float(decay), 4), seed)
    result = RESULTS.get(setting)
    if result is None:
        result = _load(setting)
        if result is not None:
            _remember(setting, result)
    if result is None:
        asked = st.button(f"Train at this setting ({RESTARTS} restarts, {LIVE_TRAIN.steps} steps, a few seconds)",
                          key="sp_train", type="primary") or st.session_state.get(LIVE)
        if not asked:
            st.caption("Nothing is trained until you ask: press the button, then move the sliders to retrain.")
            return
        st.session_state[LIVE] = True
        live = st.empty()
        result = guarded(_train, *setting, live)
        live.empty()
        if result is None:
            return
        _remember(setting, result)
        _save(setting, result)
    W = torch.as_tensor(result["W"])
    norms, dims = feature_norms(W), dimensionality(W)
    kept = int((norms >= 0.5).sum())
    angles = column_angles_2d(W)
    figure(columns_2d([result["W"]], [f"S = {sparsity:.2f}, decay {decay:.2f}: {kept} of 5 features kept"],
                      [result["importance"]], title="Columns of W (lowest-loss of "
                                                    f"{RESTARTS} restarts, loss {result['loss']:.4f})"),
           key="superposition_columns")
    st.dataframe(pd.DataFrame({"feature": np.arange(N_FEATURES), "importance": np.round(result["importance"], 3),
                               "norm ||W_i||": np.round(norms.numpy(), 3),
                               "dimensionality D_i": np.round(dims.numpy(), 3)}), hide_index=True)
    if kept >= 2:
        st.caption("Angles between neighbouring kept features: " + ", ".join(f"{a:.0f}°" for a in angles.tolist())
                   + (" (a regular pentagon has five 72° angles)" if kept == 5 else ""))
