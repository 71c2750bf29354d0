"""Run an experiment over a grid of settings and seeds as Ray tasks: one ordinary results folder per cell.

Layout: ``<sweep folder>/cells/<cell key>/`` is each cell's results folder, written atomically by the runner
(a staging folder renamed into place), so a worker killed mid-cell leaves only a staging folder that the
cell's next attempt removes; Ray re-runs a task whose worker died (``max_retries``). Cells with a complete
result of the same config are reused without any Ray work, so re-running a sweep only runs what is missing,
and a sweep widened later (more seeds, more values) reuses the cells it shares with the earlier one. The
sweep folder also holds the summary of the latest sweep over it (``summary.md``, ``metrics.json``,
``figures/``, ``metadata.json`` with ``"kind": "sweep"``), each file replaced atomically, metadata last.

The scheduling is Ray's (tasks with ``num_cpus`` each, ``ray.wait`` for whichever finishes first): nothing of
a scheduler is written here. Each task sets torch's threads to its CPUs (``threads`` setting), since Ray
only sets ``OMP_NUM_THREADS``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from experiments.core.outputs import refuse_system_dir
from experiments.core.registry import get_experiment
from experiments.core.settings import check_writable_dir
from experiments.distributed.cluster import ClusterInfo, check_address, connected
from experiments.distributed.grid import Cell, plan
from experiments.distributed.summary import CellOutcome, counts, figures, group_stats, headline_metrics, markdown
from interp.errors import InvalidInput, WorkbenchError

#: Times Ray re-runs a cell whose worker process died (killed, out of memory); a cell that raises is not retried.
CELL_RETRIES = 2
#: Written into every sweep folder; a folder with files but without it is not a sweep folder (refused).
MARKER = "sweep.json"


@dataclass
class SweepOutcome:
    path: Path
    cells: list[CellOutcome]
    cluster: ClusterInfo | None
    seconds: float

    @property
    def failed(self) -> list[CellOutcome]:
        return [o for o in self.cells if o.status == "failed"]

    @property
    def message(self) -> str:
        c = counts(self.cells)
        parts = [f"{c.get(k, 0)} {k}" for k in ("done", "reused", "failed") if c.get(k)]
        return f"sweep of {len(self.cells)} cells ({', '.join(parts)}) -> {self.path}"


def default_sweep_dir(name: str, preset: str | None, sets: dict[str, str]) -> Path:
    """``results/sweep-NAME/PRESET-HASH`` (hash of the fixed settings only: every sweep of the same base setting
    shares one folder of cells, so widening a sweep reuses what is done)."""
    from experiments.core.runner import RESULTS_ROOT, config_hash

    digest = config_hash("sweep:" + name, sorted(sets.items()))
    return RESULTS_ROOT / f"sweep-{name}" / f"{preset or 'default'}-{digest}"


def check_sweep_dir(path: Path) -> None:
    """``path`` can hold a sweep: new, empty, or a sweep folder already (never a folder of other files)."""
    check_writable_dir(path, "--out", max_name=200)
    refuse_system_dir(path, "--out")
    try:
        if path.is_dir() and not (path / MARKER).is_file() and any(path.iterdir()):
            raise InvalidInput(f"--out {path} exists and is not a sweep folder; refusing to write into it.",
                               "Choose an empty or new folder.")
    except OSError as e:
        raise InvalidInput(f"--out {path} cannot be read ({e.strerror or e}).", "Choose another folder.") from None


def run_cell(name: str, preset: str | None, overrides: dict[str, str], seed: int, out: str, force: bool,
             headline: tuple[str, ...] | None) -> dict[str, Any]:
    """One cell, in a Ray worker (or here): the runner's atomic ``run_experiment``; an error becomes a failed
    cell with its message (the sweep goes on), a bug too (``internal error``), never a lost sweep."""
    from experiments.core.runner import run_experiment

    t0 = time.perf_counter()
    try:
        o = run_experiment(name, preset=preset, overrides=overrides, seed=seed, out=out, force=force)
    except WorkbenchError as e:
        return {"status": "failed", "message": " ".join(str(e).split()), "seconds": time.perf_counter() - t0}
    except Exception as e:  # noqa: BLE001 - a bug in one cell must not take the others down
        return {"status": "failed", "message": f"internal error ({type(e).__name__}): {str(e)[:300]}",
                "seconds": time.perf_counter() - t0}
    return {"status": "reused" if o.skipped else "done", "verdict": o.verdict, "message": o.message,
            "headline": headline_metrics(o.metrics, headline), "seconds": time.perf_counter() - t0}


def _complete(path: Path, config_json: dict[str, Any]) -> dict[str, Any] | None:
    """The metrics of a complete cell result of exactly this config in ``path``, else None (run it)."""
    if not (path / "metadata.json").is_file():
        return None
    try:
        old = json.loads((path / "config.json").read_text())
        metrics = json.loads((path / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    return metrics if old == config_json and isinstance(metrics, dict) else None


def run_sweep(name: str, grid: dict[str, tuple[str, ...]], seeds: tuple[int, ...], *, preset: str | None = None,
              sets: dict[str, str] | None = None, address: str | None = None, out: str | Path | None = None,
              force: bool = False, cpus: int | None = None, cpus_per_cell: int = 1,
              progress: Callable[[CellOutcome, int, int], None] | None = None) -> SweepOutcome:
    """Plan every cell (all checked first), reuse complete ones, run the rest on Ray, write the summary."""
    from experiments.core.runner import to_jsonable

    exp = get_experiment(name)
    if isinstance(cpus_per_cell, bool) or not isinstance(cpus_per_cell, int) or not 1 <= cpus_per_cell <= 512:
        raise InvalidInput(f"--cpus-per-cell {cpus_per_cell!r} is invalid: expected a whole number in 1 .. 512.")
    sets = dict(sets or {})
    if "threads" not in sets and "threads" not in grid:
        sets["threads"] = str(cpus_per_cell)  # torch's threads in each task = the CPUs Ray gives it
    cells = plan(exp, grid, seeds, preset=preset, sets=sets)
    if address is not None:
        address = check_address(address)
    sweep_dir = Path(out).expanduser() if out else default_sweep_dir(name, preset, {k: v for k, v in sets.items()
                                                                                   if k != "threads"})
    check_sweep_dir(sweep_dir)
    headline = getattr(exp, "headline", None) or None
    started, t0 = datetime.now(UTC), time.perf_counter()
    (sweep_dir / "cells").mkdir(parents=True, exist_ok=True)
    _write_atomic(sweep_dir / MARKER, json.dumps({"experiment": name, "preset": preset, "sets": sets}) + "\n")

    outcomes: dict[Cell, CellOutcome] = {}
    todo: list[tuple[Cell, Any]] = []
    for cell, config in cells:
        path = sweep_dir / "cells" / cell.key
        metrics = None if force else _complete(path, to_jsonable(dataclasses.asdict(config)))
        if metrics is None:
            todo.append((cell, config))
            continue
        verdict = metrics.get("verdict") if isinstance(metrics.get("verdict"), dict) else {}
        outcomes[cell] = CellOutcome(cell, path, "reused", verdict, headline_metrics(metrics, headline),
                                     "a complete result of this config already exists")
        if progress is not None:
            progress(outcomes[cell], len(outcomes), len(cells))
    info = None
    if todo:
        with connected(address, num_cpus=cpus) as info:
            _run_on_ray(name, preset, sets, todo, sweep_dir, force, headline, cpus_per_cell, outcomes,
                        lambda o: progress(o, len(outcomes), len(cells)) if progress else None)
    ordered = [outcomes[c] for c, _ in cells]
    result = SweepOutcome(sweep_dir, ordered, info, time.perf_counter() - t0)
    write_summary(result, exp, grid, seeds, preset, sets, started)
    return result


def _run_on_ray(name: str, preset: str | None, sets: dict[str, str], todo: list[tuple[Cell, Any]], sweep_dir: Path,
                force: bool, headline: tuple[str, ...] | None, cpus_per_cell: int,
                outcomes: dict[Cell, CellOutcome], report: Callable[[CellOutcome], None]) -> None:
    import ray

    biggest = max((n.get("Resources", {}).get("CPU", 0.0) for n in ray.nodes() if n.get("Alive")), default=0.0)
    if biggest < cpus_per_cell:  # Ray would wait forever for a node that can take a cell
        raise InvalidInput(f"--cpus-per-cell {cpus_per_cell}: no node of the cluster has that many CPUs (the largest "
                           f"has {biggest:g}).", "Ask for fewer CPUs per cell, or give a local cluster more (--cpus).")
    task = ray.remote(run_cell).options(num_cpus=cpus_per_cell, max_retries=CELL_RETRIES, retry_exceptions=False)
    refs = {}
    for cell, _ in todo:
        path = sweep_dir / "cells" / cell.key
        refs[task.remote(name, preset, {**sets, **dict(cell.settings)}, cell.seed, str(path), force, headline)] = \
            (cell, path)
    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        for ref in ready:
            cell, path = refs[ref]
            try:
                r = ray.get(ref)
            except ray.exceptions.RayError as e:  # the worker died more than CELL_RETRIES times, or Ray failed
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                r = {"status": "failed", "message": f"{type(e).__name__}: {first[:300]}"}
            outcomes[cell] = CellOutcome(cell, path, r["status"], r.get("verdict") or {}, r.get("headline") or {},
                                         r.get("message", ""), r.get("seconds", 0.0))
            report(outcomes[cell])


def write_summary(result: SweepOutcome, exp: Any, grid: dict[str, tuple[str, ...]], seeds: tuple[int, ...],
                  preset: str | None, sets: dict[str, str], started: datetime) -> None:
    """summary.md, metrics.json, config.json, figures/ and metadata.json (last) of the sweep, each file replaced
    atomically, so a reader sees the previous summary or the new one, never a half-written file."""
    from experiments.core.figures import save_figures
    from experiments.core.runner import git_commit, to_jsonable
    from interp.environment import library_versions

    stats = group_stats(result.cells)
    cluster = result.cluster.to_dict() if result.cluster else None
    figs = figures(grid, stats)
    staging = result.path / f".summary.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        status = save_figures(figs, staging / "figures")
        metrics = {"cells": [o.row() for o in result.cells], "groups": stats, "counts": counts(result.cells)}
        config = {"experiment": exp.name, "preset": preset, "grid": {k: list(v) for k, v in grid.items()},
                  "seeds": list(seeds), "sets": sets}
        text = markdown(exp.title, exp.name, grid, seeds, result.cells, stats, cluster, result.seconds)
        metadata = {"kind": "sweep", "experiment": exp.name, "title": f"Sweep: {exp.title}", "preset": preset,
                    "cells": len(result.cells), "counts": counts(result.cells), "cluster": cluster,
                    "started_at": started.isoformat(timespec="seconds"), "wall_time_s": round(result.seconds, 3),
                    "git_commit": git_commit(), **library_versions(), "platform": platform.platform(),
                    "command": " ".join(sys.argv), "figures": status}
        if (staging / "figures").is_dir():
            old = result.path / f".figures.old-{os.getpid()}"
            if (result.path / "figures").exists():
                os.replace(result.path / "figures", old)
            os.replace(staging / "figures", result.path / "figures")
            shutil.rmtree(old, ignore_errors=True)
        for fname, body in (("config.json", config), ("metrics.json", metrics)):
            _write_atomic(result.path / fname, json.dumps(to_jsonable(body), indent=2) + "\n")
        _write_atomic(result.path / "summary.md", text)
        _write_atomic(result.path / "metadata.json", json.dumps(to_jsonable(metadata), indent=2) + "\n")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    tmp.write_text(text)
    os.replace(tmp, path)
