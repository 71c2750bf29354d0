"""icl-emergence-vs-structure: from pure noise to structured data, when does an induction head form, and can the
onset be forecast before training?

Runs ``icl-emergence-cell`` as a Ray sweep over the share of structured rows (times seeds), checks the claims
of Chan et al. 2022 (structure is needed: below a threshold no head forms in the budget) and Olsson et al. 2022
(the head forms abruptly; here also: earlier the more structure), then forecasts: onset = c * share^-k (a line
in log-log) fitted on every share but one, written down (``forecast.json`` in the sweep folder) before that
share's cells are trained, then compared with them. The cells are ordinary results folders in the sweep
folder, so a killed run resumes where it stopped (finished cells are reused).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from experiments.core.context import RunContext
from experiments.core.registry import Check, Experiment, Finding, RunResult, Verdict, register
from experiments.core.report import markdown_table
from experiments.core.settings import setting
from experiments.distributed.cluster import connected
from experiments.distributed.summary import CellOutcome
from experiments.distributed.sweep import default_sweep_dir, run_sweep
from experiments.reproductions.icl_emergence_cell import ABRUPT_FRACTION, CELL_SETTINGS, CellConfig, CellModelSettings
from interp.errors import InvalidInput, WorkbenchError
from plots.sweeps import onset_vs_share
from probes.heads.emergence import ICL_THRESHOLD, fit_onset, icl_onset_step, is_threshold
from probes.stats import mean_ci95

CELL = "icl-emergence-cell"
#: Settings handed to every cell unchanged (the model, data and budget).


@dataclass
class StructureConfig(CellModelSettings):
    """Defaults: the full run (7 shares + 1 held out, 3 seeds, 2-layer d_model 64 attention-only cells, 5000 steps;
    ~24 cells of ~5-8 minutes of one shared core each)."""

    shares: tuple = setting((0.0, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0), "shares of structured training rows the fit sees "
                            "(0: pure noise)")
    held_out: float = setting(0.6, "the share forecast from the others before its cells are trained", low=0.0,
                              high=1.0, positive=True)
    n_seeds: int = setting(3, "seeds per share (seed, seed + 1, ...)", low=2, high=100)
    address: str = setting("", "Ray cluster to run the cells on: auto, HOST:PORT, ray://HOST:PORT (empty: a local "
                               "cluster on this machine)")
    cpus_per_cell: int = setting(1, "CPUs (and torch threads) per cell", low=1, high=512)
    sweep_out: str = setting("", "sweep folder of the cells (empty: results/sweep-icl-emergence-cell/...)",
                             path="out")

    def check(self) -> None:
        super().check()
        if len(self.shares) < 3 or any(not 0.0 <= s <= 1.0 for s in self.shares):
            raise InvalidInput(f"shares={list(self.shares)} is invalid: expected three or more numbers in 0 .. 1.")
        if len(set(self.shares)) != len(self.shares):
            raise InvalidInput(f"shares={list(self.shares)} lists a share twice.")
        if self.held_out in self.shares:
            raise InvalidInput(f"held_out={self.held_out} is also in shares: the forecast share must be one the "
                               "fit does not see.")
        for share in (*self.shares, self.held_out):
            CellConfig(**{k: getattr(self, k) for k in CELL_SETTINGS}, repeat_share=share).check()
        if self.address:
            from experiments.distributed.cluster import check_address

            check_address(self.address)


def _share_text(s: float) -> str:
    return repr(float(s))


def onsets_by_share(outcomes: list[CellOutcome]) -> dict[float, list[float | None]]:
    """share -> every seed's onset step (None: no head within the budget)."""
    out: dict[float, list[float | None]] = {}
    for o in outcomes:
        share = float(dict(o.cell.settings)["repeat_share"])
        out.setdefault(share, []).append(o.headline.get("onset_step"))
    return dict(sorted(out.items()))


def icl_onsets_by_share(cells: list[CellOutcome]) -> dict[float, list[float | None]]:
    """share -> every seed's ICL onset (first step with ICL score <= -1 nat, by behaviour, whatever the mechanism),
    from the training history in each cell's results folder (None: never within the budget)."""
    out: dict[float, list[float | None]] = {}
    for o in cells:
        try:
            m = json.loads((o.path / "metrics.json").read_text())
            onset = icl_onset_step(m["steps"], m["icl_score"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise WorkbenchError(f"The cell {o.path} has no readable training history ({type(e).__name__}).",
                                 "Run again with --force on that cell's sweep, or delete the cell folder.") from None
        out.setdefault(float(dict(o.cell.settings)["repeat_share"]), []).append(onset)
    return dict(sorted(out.items()))


def forecast(onsets: dict[float, list[float | None]], held_out: float) -> dict[str, Any]:
    """Fit onset = c * share^-k on the shares where every seed formed, predict ``held_out``."""
    usable = {s: v for s, v in onsets.items() if s > 0 and v and all(o is not None for o in v)}
    xs = [s for s, v in usable.items() for _ in v]
    ys = [float(o) for v in usable.values() for o in v]  # type: ignore[arg-type]
    fit = fit_onset(xs, ys)
    return {"c": fit.c, "k": fit.k, "fitted_shares": list(fit.shares), "n_points": fit.n_points,
            "held_out": held_out, "predicted_onset": fit.predict(held_out)}


def _record_forecast(path: Path, fc: dict[str, Any]) -> dict[str, Any]:
    """Write the forecast before the held-out cells train; an earlier identical forecast keeps its timestamp."""
    try:
        old = json.loads(path.read_text())
        if {k: old.get(k) for k in fc} == fc:
            return old
    except (OSError, ValueError):
        pass
    fc = {**fc, "made_at": datetime.now(UTC).isoformat(timespec="seconds")}
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(fc, indent=2) + "\n")
    os.replace(tmp, path)
    return fc


def _refuse_failed(failed: list[CellOutcome], total: int, sweep_dir: Path) -> None:
    if failed:
        f = failed[0]
        raise WorkbenchError(f"{len(failed)} of {total} cells failed (first: {f.cell.label()} seed {f.cell.seed}: "
                             f"{f.message[:200]}).", f"See {sweep_dir}/summary.md; run again to retry them "
                             "(finished cells are reused).")


def _trained_after(cells: list[CellOutcome], share: float, made_at: str) -> bool:
    """Whether every held-out cell started training after the forecast was written (their metadata says when)."""
    starts = []
    for o in cells:
        if float(dict(o.cell.settings)["repeat_share"]) == share:
            try:
                starts.append(json.loads((o.path / "metadata.json").read_text())["started_at"])
            except (OSError, ValueError, KeyError):
                return False
    return bool(starts) and all(datetime.fromisoformat(t) >= datetime.fromisoformat(made_at) for t in starts)


@register
class IclEmergenceVsStructure(Experiment):
    name = "icl-emergence-vs-structure"
    title = "From noise to structure: when an induction head forms, how abruptly, and a forecast of the onset"
    Config = StructureConfig
    presets = {"ci": {"shares": (0.0, 0.5, 1.0), "held_out": 0.75, "n_seeds": 2, "steps": 240, "d_model": 32,
                      "n_heads": 2, "d_vocab": 32, "seq_len": 24, "batch_size": 16, "span_len": 6, "lr": 3e-3,
                      "eval_every": 20}}
    finding = Finding(
        claim="In-context learning (an induction head) emerges only when the training data has enough structure: "
              "below a threshold share of sequences with a repeated span no induction head forms within the "
              "budget; above it the head forms earlier the more structure there is, and abruptly at every share.",
        source="Chan et al. 2022, 'Data Distributional Properties Drive Emergent In-Context Learning in "
               "Transformers' (NeurIPS); Olsson et al. 2022, 'In-context Learning and Induction Heads' (Anthropic)",
        published="Chan et al.: ICL emerges only with bursty (structured) training data; Olsson et al.: induction "
                  "heads form in an abrupt phase change that coincides with the ICL-loss drop",
        url="https://arxiv.org/abs/2205.05055",
    )

    def output_dirs(self, config: StructureConfig) -> dict[str, Path]:
        """None for the runner to check: ``sweep_out`` is a sweep folder of the cells (new, or one whose complete
        cells are reused), checked by the sweep's own rule (``check_sweep_dir``) before any cell runs."""
        return {}

    def run(self, config: StructureConfig, ctx: RunContext) -> RunResult:
        sets = {k: str(getattr(config, k)) for k in CELL_SETTINGS}
        seeds = tuple(range(config.seed, config.seed + config.n_seeds))
        sweep_dir = Path(config.sweep_out) if config.sweep_out else default_sweep_dir(CELL, None, sets)
        shares = tuple(sorted(config.shares))
        n_total = (len(shares) + 1) * len(seeds)

        shown = [0.0]

        def report(o: CellOutcome, done: int, total: int) -> None:
            shown[0] = max(shown[0], 0.9 * done / n_total)  # phase 2 recounts phase 1's cells as reused
            ctx.progress(shown[0], f"{o.cell.label()} seed {o.cell.seed}: {o.status}, onset "
                                               f"{o.headline.get('onset_step', '-')}")

        address = config.address or None
        with connected(address) as cluster:
            first = run_sweep(CELL, {"repeat_share": tuple(_share_text(s) for s in shares)}, seeds, sets=sets,
                              address=address, out=sweep_dir, cpus_per_cell=config.cpus_per_cell, progress=report)
            _refuse_failed(first.failed, len(first.cells), sweep_dir)  # the forecast needs every fitted cell
            fitted = onsets_by_share(first.cells)
            fc, fc_error = None, ""
            try:
                fc = _record_forecast(sweep_dir / "forecast.json", forecast(fitted, config.held_out))
            except InvalidInput as e:
                fc_error = e.message
            both = run_sweep(CELL, {"repeat_share": tuple(_share_text(s) for s in (*shares, config.held_out))},
                             seeds, sets=sets, address=address, out=sweep_dir, cpus_per_cell=config.cpus_per_cell,
                             progress=report)
        ctx.progress(0.95, "checks and figures")
        _refuse_failed(both.failed, len(both.cells), sweep_dir)
        if fc is not None:
            fc["trained_after_forecast"] = _trained_after(both.cells, float(config.held_out), fc["made_at"])
        return self._result(config, both.cells, icl_onsets_by_share(both.cells), fc, fc_error, sweep_dir,
                            cluster.to_dict())

    def _result(self, config: StructureConfig, cells: list[CellOutcome], icl: dict[float, list[float | None]],
                fc: dict[str, Any] | None, fc_error: str, sweep_dir: Path, cluster: dict[str, Any]) -> RunResult:
        """Checks on every cell's onset, the forecast against the held-out cells, the figure and the summary."""
        by_share = onsets_by_share(cells)  # every share, the held-out one too: the claims are about all of them
        held = by_share.get(float(config.held_out), [])
        formed = {s: sum(o is not None for o in v) / len(v) for s, v in by_share.items()}
        threshold_ok, threshold = is_threshold(formed)
        every = sorted(s for s, f in formed.items() if f == 1.0)
        means = {s: sum(by_share[s]) / len(by_share[s]) for s in every}  # type: ignore[arg-type, misc]
        monotone = all(means[a] > means[b] for a, b in zip(every, every[1:]))
        icl_formed = {s: sum(o is not None for o in v) / len(v) for s, v in icl.items()}
        icl_threshold_ok, icl_threshold = is_threshold(icl_formed)
        formed_cells = [o for o in cells if o.headline.get("onset_step") is not None]
        cell_rows = {(float(dict(o.cell.settings)["repeat_share"]), o.cell.seed): o for o in cells}
        abrupt = [o for o in formed_cells if o.headline.get("abruptness_steps") is not None
                  and o.headline["abruptness_steps"] <= ABRUPT_FRACTION * o.headline["rise_90"]]
        icl_ok = [o for o in formed_cells if (o.headline.get("icl_score_final") or 0.0) <= -0.5]
        checks = [
            Check("structure is needed (Chan et al.): below a threshold share no induction head forms in the budget",
                  threshold_ok,
                  "seeds forming a head by share: " + ", ".join(f"{s:g}: {f:.0%}" for s, f in formed.items())
                  + (f"; threshold between {max(s for s, f in formed.items() if f == 0.0):g} and {threshold:g}"
                     if threshold_ok else "")),
            Check(f"in-context learning itself needs structure (Chan et al.'s claim, by behaviour): below a threshold "
                  f"share the ICL score never reaches {ICL_THRESHOLD:g} nat in the budget, whatever the mechanism",
                  icl_threshold_ok,
                  "seeds reaching it by share: " + ", ".join(f"{s:g}: {f:.0%}" for s, f in icl_formed.items())
                  + (f"; threshold between {max(s for s, f in icl_formed.items() if f == 0.0):g} and "
                     f"{icl_threshold:g}" if icl_threshold_ok else "")),
            Check("the onset moves earlier as structure grows (seed means fall with the share)",
                  None if len(every) < 2 else monotone,
                  "mean onset by share (shares where every seed formed): "
                  + (", ".join(f"{s:g}: {m:.0f}" for s, m in means.items()) or "none")),
            Check("the jump is abrupt at every share where it happens (Olsson et al.: 10% -> 90% within "
                  f"{ABRUPT_FRACTION:.0%} of the steps to reach 90%)",
                  None if not formed_cells else len(abrupt) == len(formed_cells),
                  f"{len(abrupt)} of {len(formed_cells)} cells with a head rose abruptly; widths "
                  + ", ".join(_fmt(o.headline.get("abruptness_steps")) for o in formed_cells[:30])),
            Check("where a head forms the model does the task (ICL score <= -0.5 nats)",
                  None if not formed_cells else len(icl_ok) == len(formed_cells),
                  f"{len(icl_ok)} of {len(formed_cells)} cells with a head copy in context"),
        ]
        verdict = Verdict.from_checks(checks, "too few shares formed a head within the budget to check every claim")
        # forecast against the held-out cells
        observed = [o for o in held if o is not None]
        fc_out: dict[str, Any] = {"error": fc_error} if fc is None else dict(fc)
        if fc is not None and observed and len(observed) == len(held):
            mean, ci = mean_ci95([float(o) for o in observed])
            pred = fc["predicted_onset"]
            fc_out.update(observed_onsets=observed, observed_mean=mean, observed_ci95=ci, error=pred - mean,
                          relative_error=(pred - mean) / mean, within_spread=min(observed) <= pred <= max(observed),
                          within_ci95=ci is not None and abs(pred - mean) <= ci)
        elif fc is not None:
            fc_out.update(observed_onsets=held, error=None, within_spread=False,
                          note="not every held-out seed formed a head within the budget")
        figure_fit = None
        if fc is not None:
            xs = [s / 100 for s in range(max(1, int(min(fc["fitted_shares"] + [config.held_out]) * 100) - 5), 101)]
            figure_fit = (xs, [fc["c"] * x ** -fc["k"] for x in xs])
        fig = onset_vs_share(by_share, config.steps, fit=figure_fit, icl_onsets=icl,
                             forecast=(config.held_out, fc["predicted_onset"]) if fc else None,
                             held_out=config.held_out)
        icl_of = {(s, seed): v for s, vs in icl.items() for seed, v in zip(sorted(o.cell.seed for o in cells if float(
            dict(o.cell.settings)["repeat_share"]) == s), vs)}
        table = [{"share": s, "seed": seed, "onset": _fmt(o.headline.get("onset_step")),
                  "ICL onset": _fmt(icl_of.get((s, seed))),
                  "abruptness": _fmt(o.headline.get("abruptness_steps")), "ICL drop in rise": _fmt(
                      o.headline.get("icl_drop")), "final induction": _fmt(o.headline.get("final_induction")),
                  "held out": "yes" if s == float(config.held_out) else ""}
                 for (s, seed), o in sorted(cell_rows.items())]
        by_text = lambda d: {str(k): v for k, v in d.items()}  # noqa: E731 - JSON keys are text
        metrics = {
            "onsets": by_text(by_share), "formed_share": by_text(formed),
            "threshold_share": threshold if threshold_ok else None, "mean_onset": by_text(means),
            "icl_onsets": by_text(icl), "icl_formed_share": by_text(icl_formed),
            "icl_threshold_share": icl_threshold if icl_threshold_ok else None,
            "forecast": {k: v for k, v in fc_out.items() if k != "made_at"}, "cells": table,
            "sweep_dir": str(sweep_dir), "budget_steps": config.steps,  # no timings: same seed, same bytes
        }
        summary = self._summary(config, table, fc_out, sweep_dir, means, cluster, icl_formed, formed)
        return RunResult(metrics, verdict, summary, {"onset_vs_share": fig})

    @staticmethod
    def _summary(config: StructureConfig, table: list[dict[str, Any]], fc: dict[str, Any], sweep_dir: Path,
                 means: dict[float, float], cluster: dict[str, Any], icl_formed: dict[float, float],
                 formed: dict[float, float]) -> str:
        if fc.get("predicted_onset") is None:
            fc_text = f"No forecast: {(fc.get('error') or 'the fit could not be made').rstrip('.')}."
        elif fc.get("observed_mean") is None:
            fc_text = (f"Forecast onset at share {config.held_out:g}: step {fc['predicted_onset']:.0f} (fit on shares "
                       f"{', '.join(f'{s:g}' for s in fc['fitted_shares'])}, made {fc.get('made_at', '?')}); "
                       f"observed: {fc.get('note', '-')} ({fc.get('observed_onsets')}).")
        else:
            ci = fc["observed_ci95"]
            when = ("written before the held-out cells trained" if fc.get("trained_after_forecast") else
                    "NOT written before every held-out cell trained (some existed already)")
            fc_text = (f"Forecast, {when} ({fc.get('made_at', '?')}): onset = "
                       f"{fc['c']:.0f} * share^-{fc['k']:.2f}, fitted on shares "
                       f"{', '.join(f'{s:g}' for s in fc['fitted_shares'])} ({fc['n_points']} cells), predicts step "
                       f"{fc['predicted_onset']:.0f} at share {config.held_out:g}. Observed: "
                       f"{', '.join(f'{o:.0f}' for o in fc['observed_onsets'])} (mean {fc['observed_mean']:.0f}"
                       + (f" ± {ci:.0f}" if ci is not None else "") + f"). Error {fc['error']:+.0f} steps "
                       f"({fc['relative_error']:+.0%}); within the seeds' spread: "
                       f"{'yes' if fc['within_spread'] else 'no'}; within the 95% CI of their mean: "
                       f"{'yes' if fc['within_ci95'] else 'no'}.")
        return "\n".join([
            f"2-layer attention-only models (d_model {config.d_model}, {config.n_heads} heads, vocab {config.d_vocab}, "
            f"seq {config.seq_len}, batch {config.batch_size}, lr {config.lr}) trained {config.steps} steps on noise "
            f"rows of which a share holds one repeated span of {config.span_len} tokens; {config.n_seeds} seeds per "
            f"share, as a Ray sweep on {cluster['address']} ({cluster['nodes']} node(s), {cluster['cpus']:g} CPUs). "
            f"Cells (each an ordinary results folder) and the sweep's own summary: `{sweep_dir}`.", "",
            "Mean onset (shares where every seed formed a head): "
            + (", ".join(f"{s:g}: step {m:.0f}" for s, m in means.items()) or "none") + ".", "",
            "Share of seeds with an induction head (score >= 0.5) / with in-context learning by behaviour (ICL score "
            f"<= {ICL_THRESHOLD:g} nat) by the end of the budget: "
            + ", ".join(f"{s:g}: {formed.get(s, 0):.0%} / {f:.0%}" for s, f in icl_formed.items())
            + ". Where the second exceeds the first, the model learned to copy in context without a head that "
              "scores as an induction head on the held-out eval (another circuit, e.g. fixed-offset copying).", "",
            fc_text, "", "## Every cell", "", markdown_table(table)])


def _fmt(v: Any) -> str:
    if v is None:
        return "none"
    return f"{v:.3g}" if isinstance(v, float) and not float(v).is_integer() else f"{v:.0f}" if isinstance(
        v, (int, float)) else str(v)
