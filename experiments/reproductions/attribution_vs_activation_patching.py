"""attribution-vs-activation-patching: how well the gradient estimate tracks exact patching, per component type."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from experiments.core.context import RunContext
from experiments.core.preconditions import data_not_degenerate, pairs_differ
from experiments.core.registry import Check, Experiment, Finding, RunResult, Verdict, register
from experiments.core.report import markdown_table
from experiments.core.settings import RunSettings, setting
from interp.model import Model
from plots.patching import attribution_scatter, correlation_bars
from probes.patching.activation import prepare, sweep
from probes.patching.attribution import attribute, compare, edge_attribution
from tasks.copy import copy_task_pairs
from tasks.pairs import PairBatch, PromptPair, encode_pairs, repeated_sequence_pairs

KINDS = ("head_out", "attn_out", "mlp_out", "resid_pre")
MIN_GAP = 0.5  # |clean - corrupted| metric gap below which normalised effects are noise


def task_pairs(handle: Model, n_pairs: int, seq_len: int, seed: int) -> tuple[PairBatch, str]:
    """Attention-only (numbered-token) models: repeated sequences with a fresh first copy; text models: the
    held-out argument-copy task (names renamed in the corrupted prompt)."""
    if handle.info.attn_only:
        return (repeated_sequence_pairs(handle, n_pairs, seq_len, seed=seed, corruption="fresh"),
                f"repeated random sequences (A = {seq_len} tokens, first copy fresh in the corrupted prompt)")
    pairs = copy_task_pairs(handle.tokenizer, 4 * n_pairs, split="heldout", seed=seed)
    batch = encode_pairs(handle, [PromptPair(p.clean, p.corrupted, p.answer, p.wrong) for p in pairs])
    return (same_length(batch, n_pairs),
            "held-out argument copying (`def f(a, b):\\n    return a *` -> ` b`, names renamed when corrupted)")


def same_length(batch: PairBatch, n: int) -> PairBatch:
    """The first ``n`` pairs of the most common token length (position-resolved sweeps need one length)."""
    lengths = batch.lengths.tolist()
    mode = max(sorted(set(lengths)), key=lengths.count)
    return batch.select([i for i, length in enumerate(lengths) if length == mode][:n])


def relative_errors(exact: np.ndarray, estimate: np.ndarray, large: float, floor: float = 0.02
                    ) -> tuple[float, float, int, int]:
    """Median |estimate - exact| / |exact| over large cells (|exact| >= large) and over small but measurable
    ones (floor <= |exact| < large), with their counts."""
    ax = np.abs(exact)
    rel = np.abs(estimate - exact) / np.maximum(ax, 1e-12)
    big, small = ax >= large, (ax >= floor) & (ax < large)
    med = [float(np.median(rel[m])) if m.any() else float("nan") for m in (big, small)]
    return med[0], med[1], int(big.sum()), int(small.sum())


@dataclass
class AttributionVsPatchingConfig(RunSettings):
    """Defaults: every bundled model with a task (the 2-layer attention-only model and the stdlib GPT-2)."""

    models: tuple[str, ...] = setting(("attn-only-2l", "stdlib-gpt2"), "models to compare on (comma-separated)")
    n_pairs: int = setting(16, "prompt pairs per model", low=2, high=10_000)
    seq_len: int = setting(20, "length of the random sequence for attention-only models", low=3, high=2048)
    head_r_min: float = setting(0.8, "head outputs: Pearson r (attribution vs exact) at least this on every model",
                                low=-1, high=1, threshold=True)
    large: float = setting(0.2, "a cell whose exact normalised effect is at least this (absolute) is 'large'",
                           positive=True, threshold=True, high=100)
    edge_pairs: int = setting(2, "pairs for edge attribution + faithfulness of the top-k edges on models with MLPs "
                                 "(0: skip)", low=0, high=1000)
    edge_ks: tuple[int, ...] = setting((10, 100, 1000), "k values: keep the top-k edges, ablate the rest",
                                       low=1, high=1_000_000)


@register
class AttributionVsActivationPatching(Experiment):
    name = "attribution-vs-activation-patching"
    title = "Attribution patching vs exact activation patching, per component type"
    Config = AttributionVsPatchingConfig
    presets = {"ci": {"models": ("attn-only-2l",), "n_pairs": 3, "seq_len": 6}}
    finding = Finding(
        claim="Attribution patching (2 forwards + 1 backward) approximates activation patching well for head "
              "outputs, and breaks down where activations saturate: the residual stream (early layers especially) "
              "and large effects.",
        source="Nanda 2023, Attribution Patching: Activation Patching At Industrial Scale; Syed et al. 2023, "
               "Attribution Patching Outperforms Automated Circuit Discovery",
        published="good agreement for attention-head outputs; poor for the residual stream early on and for large "
                  "effects (the linear approximation misses saturation)",
        url="https://www.neelnanda.io/mechanistic-interpretability/attribution-patching",
    )
    precondition = (f"on every model the patching metric moves (|clean - corrupted| >= {MIN_GAP:g}) and the effects "
                    "are finite: there must be an effect to approximate (the model need not do the task well, since "
                    "both methods measure the same metric)")

    def run(self, config: AttributionVsPatchingConfig, ctx: RunContext) -> RunResult:
        per_model: dict[str, dict] = {}
        figures = {}
        pooled_e, pooled_a = [], []
        lines = []
        for i, name in enumerate(config.models):
            entry, figs, text, exact, estimate = compare_on_model(ctx, name, config, i / len(config.models))
            per_model[name] = entry
            figures.update(figs)
            lines.extend(text)
            pooled_e.extend(exact)
            pooled_a.extend(estimate)
        e_all, a_all = np.concatenate(pooled_e), np.concatenate(pooled_a)
        preconditions = [pairs_differ(d["clean_metric"] - d["corrupted_metric"], min_gap=MIN_GAP, absolute=True)
                         for d in per_model.values()]
        for p, m in zip(preconditions, per_model):
            p.claim = f"{m}: {p.claim}"
        preconditions.append(data_not_degenerate("exact and attributed effects", np.concatenate([e_all, a_all])))
        big, small, n_big, n_small = relative_errors(e_all, a_all, config.large)
        head_r = {m: d["by_kind"]["head_out"]["pearson"] for m, d in per_model.items()}
        resid_r = {m: d["by_kind"]["resid_pre"]["pearson"] for m, d in per_model.items()}
        checks = [
            Check(f"head outputs: attribution correlates with exact patching (r >= {config.head_r_min}) on every model",
                  all(r >= config.head_r_min for r in head_r.values()),
                  ", ".join(f"{m} r = {r:.3f}" for m, r in head_r.items())),
            Check("the residual stream is approximated worse than head outputs on every model",
                  all(resid_r[m] < head_r[m] for m in head_r),
                  ", ".join(f"{m}: resid r = {resid_r[m]:.3f} vs heads {head_r[m]:.3f}" for m in head_r)),
            Check(f"large effects (|exact| >= {config.large}) have a larger relative error than small ones",
                  bool(n_big and n_small and big > small),
                  f"median relative error {big:.2f} on {n_big} large cells vs {small:.2f} on {n_small} small "
                  "cells (0.02 <= |exact| < large), all kinds and models pooled"),
        ]
        rows = []
        for m, d in per_model.items():
            for k, c in d["by_kind"].items():
                rows.append({"model": m, "component": k, "cells": d["cells"][k], "pearson": round(c["pearson"], 3),
                             "spearman": round(c["spearman"], 3), "top-5 overlap": c["top_overlap"],
                             "exact forwards": d["exact_forward_passes"][k]})
        layer_lines = "\n".join(f"- `{m}` residual stream r by layer: " + ", ".join(
            f"L{la} {r:.2f}" for la, r in d["resid_pre_r_by_layer"].items()) for m, d in per_model.items())
        summary = (markdown_table(rows) + "\n\n" + layer_lines + "\n\nCost (this machine):\n" + "\n".join(lines)
                   + "\n\nAttribution needs 2 forwards and 1 backward (about 3-4 forward-pass equivalents) for every "
                     "cell of every component type at once; the exact sweep needs one patched run per cell.")
        metrics = {"models": per_model, "relative_error": {"large": big, "small": small, "n_large": n_big,
                                                           "n_small": n_small}}
        return RunResult(metrics, Verdict.from_checks(checks, preconditions=preconditions), summary, figures)


def compare_on_model(ctx: RunContext, name: str, config: AttributionVsPatchingConfig, base: float
                     ) -> tuple[dict, dict, list[str], list[np.ndarray], list[np.ndarray]]:
    """Attribution and the exact sweeps of every kind on one model: (metrics, figures, summary lines, exact and
    estimated normalised effects per kind)."""
    per_model: dict[str, dict] = {}
    figures: dict = {}
    lines: list[str] = []
    pooled_e: list[np.ndarray] = []
    pooled_a: list[np.ndarray] = []
    ctx.progress(base, f"{name}: loading")
    handle = ctx.load_model(name)
    batch, task = task_pairs(handle, config.n_pairs, config.seq_len, config.seed)
    kinds = tuple(k for k in KINDS if not (k == "mlp_out" and handle.info.attn_only))
    t0 = time.perf_counter()
    attr = attribute(handle, batch, kinds)
    t_attr = time.perf_counter() - t0
    runs = prepare(handle, batch, kinds=kinds)
    t0 = time.perf_counter()
    results, comps = {}, {}
    for j, kind in enumerate(kinds):
        ctx.progress(base + (j + 0.5) / len(kinds) / len(config.models), f"{name}: exact {kind} sweep")
        results[kind] = sweep(runs, kind)
        comps[kind] = compare(results[kind], attr)
    t_exact = time.perf_counter() - t0
    resid_layers = {}
    ex_r, at_r = results["resid_pre"].normalised(), attr.normalised("resid_pre")
    for layer in range(handle.info.n_layers):
        e, a = ex_r[layer].numpy(), at_r[layer].numpy()
        resid_layers[layer] = float(np.corrcoef(e, a)[0, 1]) if e.std() > 0 and a.std() > 0 else float("nan")
    cells = {k: int(results[k].values[..., 0].numel()) for k in kinds}
    per = max(1, 256 // len(batch))
    per_model[name] = {
        "task": task, "clean_metric": float(attr.clean.mean()),
        "corrupted_metric": float(attr.corrupted.mean()),
        "by_kind": {k: c.to_dict() for k, c in comps.items()}, "resid_pre_r_by_layer": resid_layers,
        "cells": cells, "exact_forward_passes": {k: math.ceil(v / per) for k, v in cells.items()},
        "attribution_passes": attr.passes,
    }
    for k, c in comps.items():
        pooled_e.append(c.exact)
        pooled_a.append(c.estimate)
        figures[f"scatter_{name}_{k}"] = attribution_scatter(c.exact, c.estimate, c.labels,
                                                             f"{name}: {k}", c.pearson)
    if config.edge_pairs and not handle.info.attn_only:
        ctx.progress(base + 0.9 / len(config.models), f"{name}: edge attribution and faithfulness")
        edges = edge_attribution(handle, batch, ks=tuple(config.edge_ks), max_pairs=config.edge_pairs)
        per_model[name]["edges"] = {"faithfulness": edges.faithfulness, "total_edges": edges.total_edges,
                                    "pairs": edges.pairs_evaluated, "top": edges.edges[:10]}
        lines.append(f"- `{name}` edge attribution (TransformerLens EAP, {edges.total_edges} edges, "
                     f"{edges.pairs_evaluated} pairs): keeping the top-k edges recovers " + ", ".join(
                         f"k={k}: {v:.2f}" for k, v in edges.faithfulness.items()) + " of the clean-corrupted "
                     "gap (faithfulness; 1 = clean).")
    figures[f"r_by_kind_{name}"] = correlation_bars({k: c.pearson for k, c in comps.items()},
                                                    f"{name}: attribution vs exact, Pearson r")
    lines.append(f"- `{name}` ({task}): attribution {t_attr:.2f} s (2 forwards + 1 backward) vs exact sweeps "
                 f"{t_exact:.1f} s ({sum(cells.values())} patched cells in "
                 f"{sum(per_model[name]['exact_forward_passes'].values())} replica-batched forwards).")
    return per_model[name], figures, lines, pooled_e, pooled_a
