"""toy-superposition: Elhage et al. 2022's ReLU output model x' = ReLU(W^T W x + b), reproduced on CPU.

Three parts, each one batched tensor of tiny models (``training/superposition.py``):
(a) n=5 features in m=2 dimensions: dense features -> the two most important get orthogonal directions and the
    rest are dropped; sparse features (density 0.05, equal importance, the paper's setting) -> a regular pentagon.
(b) n=2, m=1 phase diagram over the extra feature's relative importance (0.1..10) x feature density (1..0.01),
    each cell trained from several restarts, against the analytic lowest-loss configuration.
(c) n=400, m=30, equal importance (the paper's uniform-superposition setting), density swept from 1 to 0.15
    (1/(1-S) from 1 to 6.7, where the paper's sticky fractions 1 .. 3/8 sit; the Colab goes on to 1/20):
    dimensions per feature m/||W||_F^2 and per-feature D_i, which stick at the published fractions.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from experiments.core.context import RunContext
from experiments.core.registry import Check, Experiment, Finding, RunResult, Verdict, register
from experiments.core.settings import RunSettings, setting
from interp.errors import InvalidInput
from plots.superposition import columns_2d, dimensionality_plot, norms_and_gram, phase_diagram
from probes.features.superposition import (
    PUBLISHED_FRACTIONS,
    CellRule,
    column_angles_2d,
    dimensionality,
    dimensions_per_feature,
    feature_angles,
    feature_norms,
    fraction_shares,
    phase_grid,
)
from training.superposition import LrSchedule, ToyOutcome, ToyTrainConfig, best_of_restarts, train_toy_models


@dataclass
class ToySuperpositionConfig(RunSettings):
    """Defaults: the paper's settings where it gives them (n, m, importances, densities, lr 1e-3, batch 1024 for
    n=5); fewer steps and restarts than the paper's Colab so the whole run fits a few CPU minutes."""
    threads: int = setting(1, "CPU threads for torch during the run (0: leave torch's default)", low=0, high=512)
    lr: float = setting(1e-3, "Adam learning rate of parts (a) and (b); (c) uses sweep_lr", positive=True, high=10)
    lr_schedule: LrSchedule = setting("cosine", "learning-rate schedule: constant, or cosine decay to 0 "
                                                "(crisper optima)")
    steps: int = setting(6000, "(a) training steps of the n=5, m=2 models", low=1, high=10_000_000)
    batch_size: int = setting(1024, "(a) batch size", low=1, high=65_536)
    restarts: int = setting(8, "(a) restarts per setting; the lowest-loss one is analysed", low=1, high=1000)
    decay: float = setting(0.9, "(a) importance of feature i is decay^i in the dense and intro models",
                           positive=True, high=1.0)
    pentagon_density: float = setting(0.05, "(a) feature density 1-S of the equal-importance sparse model",
                                      positive=True, high=1.0)
    phase_cells: int = setting(16, "(b) grid cells per axis (relative importance 0.1..10 x density 1..0.01)",
                               low=2, high=64)
    phase_restarts: int = setting(5, "(b) models per cell (the paper: 10)", low=1, high=1000)
    phase_steps: int = setting(5000, "(b) training steps of the n=2, m=1 models", low=1, high=10_000_000)
    phase_batch: int = setting(256, "(b) batch size", low=1, high=65_536)
    phase_rule: CellRule = setting("best", "(b) a cell's phase: its lowest-loss restart (best) or the majority of all "
                                   "but the worst (majority, as the paper averages)")
    min_agreement: float = setting(0.9, "(b) share of cells that must match the analytic phase", low=0.0, high=1.0,
                                   threshold=True)
    sweep_features: int = setting(400, "(c) features n (the paper: 400)", low=2, high=4096)
    sweep_hidden: int = setting(30, "(c) hidden dimensions m (the paper: 30)", low=1, high=4096)
    sweep_densities: int = setting(8, "(c) densities, log-spaced from 1 to sweep_min_density", low=2, high=256)
    sweep_min_density: float = setting(0.15, "(c) sparsest density (the paper's Colab goes to 1/20; the budget is "
                                       "spent where the published fractions sit)", positive=True, high=1.0)
    sweep_steps: int = setting(8000, "(c) training steps", low=1, high=10_000_000)
    sweep_lr: float = setting(2e-3, "(c) Adam learning rate (fewer, larger steps than the paper's Colab)",
                              positive=True, high=10)
    sweep_batch: int = setting(512, "(c) batch size", low=1, high=65_536)

    def check(self) -> None:
        super().check()

        if self.sweep_hidden >= self.sweep_features:
            raise InvalidInput("Settings sweep_hidden and sweep_features: superposition needs m < n "
                               f"(got m={self.sweep_hidden}, n={self.sweep_features}).")


def _train(ctx: RunContext, name: str, importance: torch.Tensor, density: torch.Tensor, n_hidden: int,
           tc: ToyTrainConfig, share: tuple[float, float], label: str) -> tuple[ToyOutcome, float]:
    t0 = time.perf_counter()

    def cb(step: int, losses: torch.Tensor, _model: Any) -> None:
        ctx.progress(share[0] + share[1] * step / tc.steps, f"{label}: step {step}/{tc.steps}, "
                                                              f"mean loss {float(losses.mean()):.4g}")

    out = train_toy_models(importance, density, n_hidden, tc, checkpoint=_checkpoint(ctx, name, importance, density,
                                                                                     n_hidden, tc), callback=cb)
    return out, time.perf_counter() - t0


def _checkpoint(ctx: RunContext, name: str, importance: torch.Tensor, density: torch.Tensor, n_hidden: int,
                tc: ToyTrainConfig) -> Path:
    """A part's checkpoint, keyed by exactly what that part trains, so changing one part's settings retrains only
    that part (the run's own work dir is keyed by the whole config)."""
    h = hashlib.sha256(json.dumps(dataclasses.asdict(tc), sort_keys=True).encode())
    for t in (importance, density):
        h.update(t.contiguous().numpy().tobytes())
    h.update(str(n_hidden).encode())
    return ctx.shared_cache("toy-superposition") / f"{name}-{h.hexdigest()[:16]}.pt"


def _tc(c: ToySuperpositionConfig, steps: int, batch: int, seed_offset: int, lr: float = 0.0) -> ToyTrainConfig:
    return ToyTrainConfig(steps=steps, batch_size=batch, lr=lr or c.lr, lr_schedule=c.lr_schedule,  # type: ignore[arg-type]
                          seed=c.seed * 3 + seed_offset, checkpoint_every=max(500, steps // 5))


def _r(v: float, nd: int = 4) -> float:
    return round(float(v), nd)


def part_a(c: ToySuperpositionConfig, ctx: RunContext) -> tuple[dict[str, Any], list[Check], dict[str, Any], str]:
    n, R = 5, c.restarts
    intro = [1.0, 0.3, 0.1, c.pentagon_density]  # the intro figure's densities (sparsity 0 .. 95%), importance decays
    decay = c.decay ** torch.arange(n, dtype=torch.float32)
    settings = [(decay, p) for p in intro] + [(torch.ones(n), c.pentagon_density)]
    imp = torch.cat([i.repeat(R, 1) for i, _ in settings])  # [settings * R, n]
    den = torch.cat([torch.full((R, n), p) for _, p in settings])
    out, secs = _train(ctx, "pentagon", imp, den, 2, _tc(c, c.steps, c.batch_size, 0), (0.0, 0.15), "(a) n=5, m=2")
    W, idx = best_of_restarts(out.W, out.eval_loss, R)  # [settings, 2, 5]
    b = out.b.reshape(len(settings), R, n)[torch.arange(len(settings)), idx]
    dense, sparse = W[0], W[-1]
    dn, sn = feature_norms(dense), feature_norms(sparse)
    ang01 = float(feature_angles(dense)[0, 1])
    sp_angles = column_angles_2d(sparse)
    dense_ok = bool(dn[:2].min() >= 0.9 and abs(ang01 - 90) <= 5 and dn[2:].max() <= 0.2)
    pent_ok = bool(sp_angles.numel() == 5 and (sp_angles - 72).abs().max() <= 5 and sn.min() >= 0.8
                   and sn.max() <= 1.3)
    metrics = {
        "dense_norms": [_r(v) for v in dn], "dense_angle_01_deg": _r(ang01, 2),
        "pentagon_norms": [_r(v) for v in sn], "pentagon_neighbour_angles_deg": [_r(v, 2) for v in sp_angles],
        "pentagon_bias": [_r(v) for v in b[-1]], "pentagon_dimensionality": [_r(v) for v in dimensionality(sparse)],
        "intro_densities": intro,
        "intro_represented": [int((feature_norms(W[i]) >= 0.5).sum()) for i in range(len(intro))],
        "intro_norms": [[_r(v, 3) for v in feature_norms(W[i])] for i in range(len(intro))],
    }
    checks = [
        Check("(a) dense n=5, m=2: the two most important features get orthogonal directions, the rest dropped",
              dense_ok, f"norms {', '.join(f'{v:.2f}' for v in dn)}; angle between features 0 and 1 "
                        f"{ang01:.1f} deg (want >= 0.9 for 0-1, <= 0.2 for 2-4, 90 +- 5 deg)"),
        Check("(a) sparse n=5, m=2: all five kept as a regular pentagon",
              pent_ok, f"density {c.pentagon_density}: norms {', '.join(f'{v:.2f}' for v in sn)} (want 0.8..1.3); "
                       f"neighbour angles {', '.join(f'{v:.1f}' for v in sp_angles)} deg (want 72 +- 5)"),
    ]
    titles = [f"I=0.9^i, 1-S={p:g}" for p in intro] + [f"I=1, 1-S={c.pentagon_density:g}"]
    figs = {
        "a_columns_2d": columns_2d([w.numpy() for w in W], titles, [i.numpy() for i, _ in settings],
                                   title="(a) n=5 features in m=2 dimensions: columns of W"),
        "a_norms_gram": norms_and_gram([w.numpy() for w in W], titles, title="(a) ||W_i|| and W^T W"),
    }
    rows = "\n".join(f"| {t} | {int((feature_norms(W[i]) >= 0.5).sum())} | "
                     f"{', '.join(f'{v:.2f}' for v in feature_norms(W[i]))} |" for i, t in enumerate(titles))
    md = (f"### (a) n=5, m=2 ({R} restarts per setting, lowest loss shown; {secs:.0f} s)\n\n"
          "| setting | features kept (norm >= 0.5) | norms ||W_i|| |\n|---|---|---|\n" + rows +
          f"\n\nDense: angle between the two kept features {ang01:.1f} deg. Pentagon (I=1): neighbour angles "
          f"{', '.join(f'{v:.1f}' for v in sp_angles)} deg, biases {', '.join(f'{v:.2f}' for v in b[-1])} "
          "(the negative bias that cuts off interference is why the norms sit a little off the unit circle, as "
          "the paper notes), D_i " + ", ".join(f"{v:.3f}" for v in dimensionality(sparse)) + " (2/5 = 0.4).\n")
    return metrics, checks, figs, md


def part_b(c: ToySuperpositionConfig, ctx: RunContext) -> tuple[dict[str, Any], list[Check], dict[str, Any], str]:
    G, R = c.phase_cells, c.phase_restarts
    imps = torch.logspace(-1, 1, G)  # relative importance of feature 2: 0.1 .. 10
    dens = torch.logspace(0, -2, G)  # density 1 - S: 1 .. 0.01
    r = imps[:, None, None].expand(G, G, R).reshape(-1)
    p = dens[None, :, None].expand(G, G, R).reshape(-1)
    out, secs = _train(ctx, "phase", torch.stack([torch.ones_like(r), r], -1), torch.stack([p, p], -1), 1,
                       _tc(c, c.phase_steps, c.phase_batch, 1), (0.15, 0.35), "(b) n=2, m=1 grid")
    grid = phase_grid(out.W, out.eval_loss, imps.tolist(), dens.tolist(), R, rule=c.phase_rule)  # type: ignore
    other = phase_grid(out.W, out.eval_loss, imps.tolist(), dens.tolist(), R,
                       rule="majority" if c.phase_rule == "best" else "best")  # type: ignore[arg-type]
    metrics = {"phase_agreement": _r(grid.agreement), "phase_agreement_other_rule": _r(other.agreement),
               "phase_counts": grid.counts(), "phase_theory_counts": {
                   k: sum(row.count(k) for row in grid.theory) for k in grid.counts()},
               "phase_restart_consistency": _r(float(np.mean(grid.restart_agreement))),
               "phase_labels": grid.labels}
    checks = [Check(f"(b) n=2, m=1 phase diagram matches the paper's analytic regions in >= {c.min_agreement:.0%} "
                    "of cells", grid.agreement >= c.min_agreement,
                    f"{grid.agreement:.1%} of {G}x{G} cells agree ({c.phase_rule} of {R} restarts; the other rule: "
                    f"{other.agreement:.1%})")]
    ab = {"not represented": "N", "own dimension": "O", "superposition": "S"}
    art = "\n".join(f"{imps[i]:6.2f}  {''.join(ab[v] for v in grid.labels[i])}   "
                    f"{''.join(ab[v] for v in grid.theory[i])}" for i in range(G - 1, -1, -1))
    md = (f"### (b) n=2, m=1 phase diagram ({G}x{G} cells x {R} restarts = {G * G * R} models in one tensor; "
          f"{secs:.0f} s)\n\nAgreement with the analytic regions: **{grid.agreement:.1%}** of cells (cell phase = "
          f"{c.phase_rule} restart; with the other rule {other.agreement:.1%}). Restarts agreeing with their cell: "
          f"{np.mean(grid.restart_agreement):.0%}. Rows: relative importance (top 10, bottom 0.1); columns: density "
          "1 (left) to 0.01 (right); N not represented, O own dimension, S superposition; trained | theory:\n\n"
          f"```\n{art}\n```\n")
    return metrics, checks, {"b_phase_diagram": phase_diagram(grid)}, md


def part_c(c: ToySuperpositionConfig, ctx: RunContext) -> tuple[dict[str, Any], list[Check], dict[str, Any], str]:
    n, m, K = c.sweep_features, c.sweep_hidden, c.sweep_densities
    dens = torch.logspace(0, math.log10(c.sweep_min_density), K)  # [K]: 1 .. min density
    out, secs = _train(ctx, "sweep", torch.ones(K, n), dens[:, None].expand(K, n).contiguous(), m,
                       _tc(c, c.sweep_steps, c.sweep_batch, 2, c.sweep_lr), (0.5, 0.48), f"(c) n={n}, m={m} sweep")
    W = out.W  # [K, m, n]
    dstar, D, norms = dimensions_per_feature(W), dimensionality(W), feature_norms(W)  # [K], [K, n], [K, n]
    sup = dstar < 0.9  # models in the superposition regime
    shares = fraction_shares(D[sup], norms[sup]) if bool(sup.any()) else fraction_shares(D[:0], norms[:0])
    half = (dstar - 0.5).abs() <= 0.03
    run, best_run = 0, 0
    for h in half.tolist():
        run = run + 1 if h else 0
        best_run = max(best_run, run)
    seen = [name for name, v in PUBLISHED_FRACTIONS
            if v < 1 and bool((((D[sup] - v).abs() <= 0.02) & (norms[sup] >= 0.5)).sum() >= m // 2)]
    metrics = {"sweep_densities": [_r(v, 5) for v in dens], "dims_per_feature": [_r(v) for v in dstar],
               "features_represented": [int(v) for v in (norms >= 0.5).sum(-1)],
               "fraction_shares": {k: _r(v) for k, v in shares.items()}, "fractions_seen": seen,
               "half_plateau_models": best_run}
    checks = [
        Check("(c) dense uniform model: one dimension per feature (m/||W||_F^2 ~ 1)", abs(float(dstar[0]) - 1) <= 0.05,
              f"m/||W||_F^2 = {float(dstar[0]):.3f} at density 1"),
        Check("(c) m/||W||_F^2 sticks at 1/2 (antipodal pairs) over a range of sparsity", best_run >= 2,
              f"{best_run} consecutive densities with m/||W||_F^2 within 0.03 of 1/2 (want >= 2)"),
        Check("(c) per-feature D_i cluster at the published fractions as density falls",
              bool(shares["any"] >= 0.6 and shares["any"] >= 2 * shares["chance"]),
              f"{shares['any']:.0%} of represented features in superposed models lie within 0.02 of 1, 3/4, 2/3, "
              f"1/2, 2/5 or 3/8 (chance {shares['chance']:.0%}; want >= 60% and >= 2x chance); fractions with "
              f">= {m // 2} features: {', '.join(seen) or 'none'}"),
    ]
    table = "\n".join(f"| {1 / float(p):.2f} | {float(p):.4f} | {float(d):.3f} | {int(k)} |"
                      for p, d, k in zip(dens, dstar, (norms >= 0.5).sum(-1)))
    share_line = ", ".join(f"{k} {v:.0%}" for k, v in shares.items() if k not in ("any", "chance"))
    md = (f"### (c) n={n}, m={m}, equal importance ({K} densities in one tensor; {secs:.0f} s)\n\n"
          "| 1/(1-S) | density | m/||W||_F^2 | features with norm >= 0.5 |\n|---|---|---|---|\n" + table +
          f"\n\nRepresented features of the superposed models (m/||W||_F^2 < 0.9) within 0.02 of a published "
          f"fraction: **{shares['any']:.0%}** (a uniform spread would give {shares['chance']:.0%}); by fraction: "
          f"{share_line}.\n")
    figs = {"c_dimensionality": dimensionality_plot(dens.tolist(), dstar.tolist(), [d.numpy() for d in D],
                                                    title=f"(c) n={n}, m={m}: dimensionality vs 1/(1-S)")}
    return metrics, checks, figs, md


@register
class ToySuperposition(Experiment):
    name = "toy-superposition"
    title = "Toy models of superposition: pentagons, the n=2 phase diagram, and sticky feature dimensionalities"
    Config = ToySuperpositionConfig
    presets = {"ci": {"lr": 0.01, "sweep_lr": 0.01, "steps": 400, "batch_size": 256, "restarts": 2,
                      "phase_cells": 4, "phase_restarts": 2,
                      "phase_steps": 200, "phase_batch": 128, "sweep_features": 24, "sweep_hidden": 4,
                      "sweep_densities": 3, "sweep_steps": 150, "sweep_batch": 64}}
    finding = Finding(
        claim="A ReLU output model x' = ReLU(W^T W x + b) stores more features than dimensions when features are "
              "sparse: 5 features in 2 dimensions go from 2 orthogonal features (dense) to a regular pentagon "
              "(sparse); for 2 features in 1 dimension a phase change separates 'not represented', 'own dimension' "
              "and 'superposition'; and per-feature dimensionality sticks at fractions of uniform polytopes.",
        source="Elhage et al. 2022, 'Toy Models of Superposition' (Anthropic)",
        published="n=5, m=2: dense -> 2 orthogonal features, sparse (I=1, 1-S=0.05) -> regular pentagon; n=2, m=1: "
                  "analytic regions from the losses of W=[1,0], [0,1], [1,-1] (importance 0.1..10 x density "
                  "1..0.01); n=400, m=30, I=1: m/||W||_F^2 sticky at 1 and 1/2, D_i at 3/4, 2/3, 1/2, 2/5, 3/8.",
        url="https://transformer-circuits.pub/2022/toy_model/index.html",
    )

    def run(self, config: ToySuperpositionConfig, ctx: RunContext) -> RunResult:
        metrics: dict[str, Any] = {}
        checks: list[Check] = []
        figures: dict[str, Any] = {}
        parts = []
        for part in (part_a, part_b, part_c):
            m, ch, figs, md = part(config, ctx)
            metrics.update(m)
            checks += ch
            figures.update(figs)
            parts.append(md)
        ctx.progress(1.0, "done")
        summary = ("Each part is one batched tensor of tiny models (no Python loop over models); timings below are "
                   "wall-clock on this machine.\n\n" + "\n".join(parts))
        return RunResult(metrics=metrics, verdict=Verdict.from_checks(checks), summary=summary, figures=figures)
