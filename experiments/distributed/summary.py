"""A sweep's summary, from its cells' outcomes: every cell's verdict and headline metrics, each group's means
over seeds with 95% t intervals, and a figure per headline metric against the swept setting (pure functions)."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from experiments.core.report import markdown_table
from experiments.distributed.grid import Cell
from probes.stats import mean_ci95

CellStatus = Literal["done", "reused", "failed"]
#: Headline metrics kept per cell when an experiment names none: its first scalar numbers.
MAX_HEADLINE = 12
#: Figures written per sweep (one per headline metric).
MAX_FIGURES = 6


@dataclass
class CellOutcome:
    """What became of one cell: run here, reused from an earlier sweep, or failed (with the reason)."""

    cell: Cell
    path: Path
    status: CellStatus
    verdict: dict[str, Any] = field(default_factory=dict)
    headline: dict[str, float | None] = field(default_factory=dict)
    message: str = ""
    seconds: float = 0.0

    def row(self, seconds: bool = False) -> dict[str, Any]:
        """The cell as a record (wall time only when asked: metrics.json holds no timings)."""
        return {"cell": self.cell.key, **dict(self.cell.settings), "seed": self.cell.seed, "status": self.status,
                "verdict": self.verdict.get("status", "-") if self.status != "failed" else "-",
                **self.headline, **({"seconds": round(self.seconds, 1)} if seconds else {}),
                "message": self.message[:300], "path": str(self.path)}


def headline_metrics(metrics: dict[str, Any], names: tuple[str, ...] | None = None) -> dict[str, float | None]:
    """The numbers a sweep compares: the experiment's ``headline`` names (None where missing or not a number),
    else the first :data:`MAX_HEADLINE` top-level finite numbers (booleans and nested values left out)."""
    def number(v: Any) -> float | None:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return None
        return float(v)

    if names:
        return {k: number(metrics.get(k)) for k in names}
    out: dict[str, float | None] = {}
    for k, v in metrics.items():
        if k != "verdict" and number(v) is not None:
            out[k] = number(v)
        if len(out) >= MAX_HEADLINE:
            break
    return out


def group_stats(outcomes: list[CellOutcome]) -> list[dict[str, Any]]:
    """Per group of cells (same settings, any seed) and headline metric: values over seeds, n, mean, 95% CI
    half-width (None below two values), and how many seeds gave no value (failed, or the metric was None)."""
    groups: dict[tuple[tuple[str, str], ...], list[CellOutcome]] = {}
    for o in outcomes:
        groups.setdefault(o.cell.group, []).append(o)
    names = list(dict.fromkeys(k for o in outcomes for k in o.headline))
    rows = []
    for group, members in groups.items():
        for name in names:
            values = [o.headline[name] for o in members if o.status != "failed" and o.headline.get(name) is not None]
            mean, ci = mean_ci95(values) if values else (None, None)  # type: ignore[arg-type]
            rows.append({"settings": dict(group), "metric": name, "values": values, "n": len(values),
                         "missing": len(members) - len(values), "mean": mean, "ci95": ci,
                         "seeds": [o.cell.seed for o in members]})
    return rows


def swept_axis(grid: dict[str, tuple[str, ...]]) -> str | None:
    """The setting a figure puts on its x axis: the grid key with the most values (the first on a tie)."""
    multi = [k for k, v in grid.items() if len(v) > 1] or list(grid)
    return max(multi, key=lambda k: len(grid[k])) if multi else None


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def figures(grid: dict[str, tuple[str, ...]], stats: list[dict[str, Any]]) -> dict[str, Any]:
    """One figure per headline metric (at most :data:`MAX_FIGURES`): mean over seeds against the swept setting,
    one line per combination of the other settings."""
    from plots.sweeps import metric_vs_setting

    x_key = swept_axis(grid)
    out: dict[str, Any] = {}
    with_values = {r["metric"] for r in stats if r["n"]}  # a metric no cell has draws nothing
    metrics = [m for m in dict.fromkeys(r["metric"] for r in stats) if m in with_values]  # headline order
    for metric in metrics[:MAX_FIGURES]:
        points = []
        for r in stats:
            if r["metric"] != metric:
                continue
            others = ", ".join(f"{k}={v}" for k, v in r["settings"].items() if k != x_key)
            points.append({"x": r["settings"].get(x_key, "-") if x_key else "-", "series": others,
                           "values": r["values"], "mean": r["mean"], "ci": r["ci95"]})
        numeric = bool(x_key) and all(_is_number(v) for v in grid.get(x_key or "", ()))
        safe = "".join(c if c.isalnum() or c in "_-" else "_" for c in metric)[:60]
        out[f"sweep_{safe}"] = metric_vs_setting(points, x_key or "cell", metric, numeric_x=numeric)
    return out


def counts(outcomes: list[CellOutcome]) -> dict[str, int]:
    """Cells per status (done / reused / failed) and per verdict."""
    c = Counter(o.status for o in outcomes)
    c.update(f"verdict: {o.verdict.get('status', '?')}" for o in outcomes if o.status != "failed")
    return dict(c)


def mean_rows(stats: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per group of cells, one column per headline metric: ``mean ± ci (n=k)``, or ``-`` (no value)."""
    rows: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for r in stats:
        row = rows.setdefault(tuple(r["settings"].items()), dict(r["settings"]))
        if r["mean"] is None:
            row[r["metric"]] = "-"
        else:
            ci = f" ± {r['ci95']:.3g}" if r["ci95"] is not None else ""
            row[r["metric"]] = f"{r['mean']:.4g}{ci} (n={r['n']})"
    return list(rows.values())


def _table(rows: list[dict[str, Any]]) -> str:
    """A markdown table of rows that may lack some columns (a failed cell has no metrics): "-" there."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    return markdown_table([{c: _fmt(r.get(c)) for c in cols} for r in rows])


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def markdown(title: str, name: str, grid: dict[str, tuple[str, ...]], seeds: tuple[int, ...],
             outcomes: list[CellOutcome], stats: list[dict[str, Any]], cluster: dict[str, Any] | None,
             wall: float) -> str:
    """The sweep's summary.md: what was swept, on what, every cell, then the means with CIs."""
    c = counts(outcomes)
    where = ("no Ray cluster was needed (every cell was reused)" if cluster is None else
             f"Ray cluster {cluster['address']} ({cluster['nodes']} node(s), {cluster['cpus']:g} CPUs)")
    lines = [f"# Sweep: {title}", "",
             f"`{name}` over " + (", ".join(f"{k} in {{{', '.join(v)}}}" for k, v in grid.items()) or "no settings")
             + f", seeds {', '.join(map(str, seeds))}: {len(outcomes)} cells on {where}, {wall:.0f} s.", "",
             "Cells: " + ", ".join(f"{v} {k}" for k, v in sorted(c.items())) + ".", ""]
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        lines += ["**Failed cells** (re-run the same command to retry them; finished cells are reused):", ""]
        lines += [f"- {o.cell.label()}, seed {o.cell.seed}: {o.message[:300]}" for o in failed] + [""]
    lines += ["## Every cell", "", _table([{k: v for k, v in o.row(seconds=True).items()
                                            if k not in ("path", "message", "cell")}
                                            for o in outcomes]), ""]
    lines += ["## Means over seeds", "",
              "Each entry: mean ± half-width of the 95% t interval (n = seeds with a value; a cell without one, e.g. "
              "a run where the thing measured never happened, is left out and counted).", ""]
    lines.append(_table(mean_rows(stats)) if stats else "(no headline metrics)")
    lines += ["", "Each cell is an ordinary results folder under `cells/` (`python -m experiments show DIR`)."]
    return "\n".join(lines) + "\n"
