"""Run an experiment into one results folder, atomically: a killed run leaves the previous result or none.

Folder layout (JSON is the interface to the app): config.json, metrics.json (with the verdict),
summary.md, figures/*.html|png, metadata.json (versions, git commit, models + sha256, seed, device,
wall time). Everything is written into a hidden sibling staging folder and renamed into place last.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from experiments.core.context import RunContext
from experiments.core.figures import save_figures
from experiments.core.outputs import check_output_dir, writer_of
from experiments.core.registry import Check, Experiment, RunResult, get_experiment, make_config
from experiments.core.settings import changed_thresholds, check_writable_dir
from interp.environment import library_versions
from interp.errors import InvalidInput, memory_error
from interp.loading import REPO_ROOT

RESULTS_ROOT = Path(os.environ.get("WORKBENCH_RESULTS", REPO_ROOT / "results"))
WORK_ROOT = Path(os.environ.get("WORKBENCH_CACHE", REPO_ROOT / ".cache" / "experiments"))


def to_jsonable(obj: Any) -> Any:
    """JSON-safe copy of metrics: tensors/arrays -> lists, numpy scalars -> Python numbers, NaN -> None."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return to_jsonable(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, Path):
        return str(obj)
    return obj


def config_hash(name: str, config: Any) -> str:
    blob = json.dumps({"experiment": name, "config": to_jsonable(config)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def run_settings(seed: int, threads: int = 0) -> Iterator[None]:
    """Seed Python, numpy and torch and set torch's CPU thread count for the body; restore all of it after, so
    a run inside the app leaves the server's RNG state and ``torch.get_num_threads()`` as they were."""
    saved = (random.getstate(), np.random.get_state(), torch.get_rng_state(), torch.get_num_threads())
    try:
        seed_everything(seed)
        if threads:
            torch.set_num_threads(threads)
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.set_rng_state(saved[2])
        if torch.get_num_threads() != saved[3]:
            torch.set_num_threads(saved[3])


@dataclass
class RunOutcome:
    path: Path
    skipped: bool
    metrics: dict[str, Any]
    verdict: dict[str, Any]
    message: str


def default_out_dir(name: str, config: Any, preset: str | None) -> Path:
    return RESULTS_ROOT / name / f"{preset or 'default'}-{config_hash(name, config)}"


def git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                                timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (commit or "unknown") + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def check_out_dir(out_dir: Path, experiment: str = "", force: bool = False) -> None:
    """Before any work: ``out_dir`` must be a folder (or creatable) that can be written, with a name short
    enough for the staging suffix, and new, empty or a results folder of the same experiment (the one output rule,
    :mod:`experiments.core.outputs`); a results folder whose metadata cannot be read is left to
    :func:`_existing_result` (damaged: replaced only with ``--force``)."""
    check_writable_dir(out_dir, "--out", max_name=200)
    try:
        if (out_dir / "metadata.json").is_file() and writer_of(out_dir) is None:
            return  # a damaged results folder
    except OSError as e:
        raise InvalidInput(f"--out {out_dir} cannot be read ({e.strerror or e}).", "Choose another folder.") from None
    check_output_dir(out_dir, experiment, "--out", force=force, artefact=False)


def _existing_result(out_dir: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(config, metrics) of the complete result in ``out_dir``; None if there is none; InvalidInput if damaged."""
    if not (out_dir / "metadata.json").is_file():
        return None
    try:
        config, metrics = read_json(out_dir / "config.json"), read_json(out_dir / "metrics.json")
        json.loads((out_dir / "metadata.json").read_text())
        if not isinstance(config, dict) or not isinstance(metrics, dict):
            raise ValueError("config.json and metrics.json must hold JSON objects")
    except (OSError, ValueError) as e:
        raise InvalidInput(f"--out {out_dir} holds a damaged result ({type(e).__name__}: {str(e)[:120]}).",
                           "Pass --force to replace it, or choose another --out.") from None
    return config, metrics


def run_experiment(
    name: str,
    *,
    preset: str | None = None,
    overrides: dict[str, str] | None = None,
    model: str | None = None,
    out: str | Path | None = None,
    force: bool = False,
    progress: Callable[[float, str], None] | None = None,
    cancel_event: threading.Event | None = None,
    **fields: Any,
) -> RunOutcome:
    """Resolve the config, skip if a complete result exists (unless ``force``), run, write atomically."""
    exp_cls = get_experiment(name)
    config = make_config(exp_cls, preset=preset, overrides=overrides, model=model, **fields)
    out_dir = Path(out).expanduser() if out else default_out_dir(name, config, preset)
    check_out_dir(out_dir, name, force)
    work_dir = WORK_ROOT / name / config_hash(name, config)
    check_writable_dir(work_dir, "The experiment cache (WORKBENCH_CACHE)")
    config_json = to_jsonable(dataclasses.asdict(config))
    _clean_stale_staging(out_dir)
    existing = None if force else _existing_result(out_dir)
    if existing is not None:
        old_config, metrics = existing
        old_config.setdefault("backend", "bridge")  # results from before the setting existed ran on the bridge
        if old_config != config_json:
            raise InvalidInput(f"{out_dir} already holds a result of {name} with a different config.",
                               "Pass --force to replace it, or choose another --out.")
        verdict = metrics.get("verdict", {})
        status = verdict.get("status") if isinstance(verdict, dict) else verdict
        return RunOutcome(out_dir, True, metrics, verdict if isinstance(verdict, dict) else {"status": status},
                          f"A complete result already exists at {out_dir} (verdict: {status}); "
                          "skipped. Pass --force to run again.")

    for what, path in exp_cls().output_dirs(config).items():  # every artefact folder, before any work
        check_output_dir(path, name, what, force=force)
    seed = int(getattr(config, "seed", 0))
    device = str(getattr(config, "device", "cpu"))
    staging = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "figures").mkdir(parents=True)
    ctx = RunContext(experiment=name, seed=seed, device=device, out_dir=staging, work_dir=work_dir,
                     cache_root=WORK_ROOT, progress_fn=progress, cancel_event=cancel_event,
                     backend=getattr(config, "backend", "bridge"), force=force)
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    started, t0 = datetime.now(UTC), time.perf_counter()
    try:
        with run_settings(seed, int(getattr(config, "threads", 0) or 0)):
            try:
                result = exp_cls().run(config, ctx)
            except Exception as e:  # an allocation that failed mid-run: the memory message, not "internal error"
                oom = memory_error(e, f"{name}")
                if oom is None:
                    raise
                raise oom from None
        result = apply_verdict_rules(exp_cls, config, preset, result)
        wall = time.perf_counter() - t0
        _write_result(staging, exp_cls, config, config_json, preset, result, ctx, started, wall)
        _swap_into_place(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    metrics = read_json(out_dir / "metrics.json")
    return RunOutcome(out_dir, False, metrics, metrics["verdict"],
                      f"{name}: {result.verdict.status} ({result.verdict.reason}) -> {out_dir}")


def is_smoke_test(exp_cls: type[Experiment], preset: str | None) -> bool:
    return preset is not None and preset in exp_cls.smoke_presets


def apply_verdict_rules(exp_cls: type[Experiment], config: Any, preset: str | None, result: RunResult) -> RunResult:
    """The rules every experiment's verdict obeys, applied once here: a smoke-test preset's verdict is "smoke test
    passed/failed" (never "reproduced"); a run at a threshold other than the published one says which in its
    reason; metrics record both."""
    verdict = result.verdict
    changed = changed_thresholds(config)
    if changed and verdict.status != "not checked":
        verdict = dataclasses.replace(verdict, reason=f"{verdict.reason} (at {_bars(changed)})")
    if is_smoke_test(exp_cls, preset):
        verdict = verdict.as_smoke_test()
    metrics = dict(result.metrics)
    if changed:
        metrics["thresholds_changed"] = {k: {"here": v, "published": d} for k, v, d in changed}
    return dataclasses.replace(result, verdict=verdict, metrics=metrics)


def _bars(changed: list[tuple[str, Any, Any]]) -> str:
    return "; ".join(f"{k} = {_fmt(v)} instead of the published {_fmt(d)}" for k, v, d in changed)


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def _write_result(staging: Path, exp_cls: type[Experiment], config: Any, config_json: dict[str, Any],
                  preset: str | None, result: RunResult, ctx: RunContext, started: datetime, wall: float) -> None:

    _write_json(staging / "config.json", config_json)
    _write_json(staging / "metrics.json", {**result.metrics, "verdict": result.verdict.to_dict()})
    figure_status = save_figures(result.figures, staging / "figures")
    (staging / "summary.md").write_text(_summary(exp_cls, result, figure_status, preset,
                                                 changed_thresholds(config)))
    _write_json(staging / "metadata.json", {
        "experiment": exp_cls.name, "title": exp_cls.title, "preset": preset,
        "smoke_test": is_smoke_test(exp_cls, preset),
        "finding": dataclasses.asdict(exp_cls.finding) if exp_cls.finding else None,
        "verdict": result.verdict.status, "seed": ctx.seed, "device": ctx.device, "backend": ctx.backend,
        "models": ctx.models,
        "started_at": started.isoformat(timespec="seconds"), "wall_time_s": round(wall, 3),
        "git_commit": git_commit(), **library_versions(), "platform": platform.platform(),
        "command": " ".join(sys.argv), "figures": figure_status,
    })


def _check_table(checks: list[Check]) -> list[str]:
    lines = ["| claim | result | detail |", "|---|---|---|"]
    for c in checks:
        mark = {True: "pass", False: "FAIL", None: "not checked"}[c.passed]
        lines.append(f"| {c.claim} | {mark} | {c.detail} |")
    return lines + [""]


def _summary(exp_cls: type[Experiment], result: RunResult, figure_status: dict[str, Any], preset: str | None = None,
             changed: list[tuple[str, Any, Any]] | None = None) -> str:
    v = result.verdict
    lines = [f"# {exp_cls.title}", ""]
    if is_smoke_test(exp_cls, preset):
        lines += [f"> **Smoke test** (preset `{preset}`): tiny settings that check the code runs end to end. Its "
                  "verdict says whether the checks passed at this scale, not whether the finding reproduces; only "
                  "a full run speaks to the finding.", ""]
    if changed:
        lines += [f"> **Thresholds changed from the published setting:** {_bars(changed)}.", ""]
    if exp_cls.finding:
        f = exp_cls.finding
        lines += [f"**Finding checked:** {f.claim}", "", f"**Source:** {f.source}" + (f" ({f.url})" if f.url else "")]
        if f.published:
            lines += ["", f"**Published numbers:** {f.published}"]
        lines.append("")
    lines += [f"## Verdict: {v.status}", "", v.reason, ""]
    if v.preconditions:
        lines += ["### Preconditions (what must hold for the checks to mean anything)", ""]
        lines += _check_table(v.preconditions)
    if v.checks:
        if any(p.passed is not True for p in v.preconditions):
            lines += ["### Checks (shown for reference; they do not count because a precondition failed)", ""]
        elif v.preconditions:
            lines += ["### Checks", ""]
        lines += _check_table(v.checks)
    lines += [result.summary.strip(), ""]
    if figure_status:
        lines += ["## Figures", ""] + [f"- `figures/{n}.html`" + ("" if s.get("png") else " (PNG not exported: "
                                       f"{s.get('png_error', 'unknown')})") for n, s in figure_status.items()]
    return "\n".join(lines) + "\n"


def _swap_into_place(staging: Path, out_dir: Path) -> None:
    """Rename the finished staging folder to ``out_dir``; an old result is moved aside first, then deleted."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
        os.replace(out_dir, old)
    os.replace(staging, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _clean_stale_staging(out_dir: Path) -> None:
    """Remove staging/old folders left by killed runs (their process is gone)."""
    if not out_dir.parent.is_dir():
        return
    for p in out_dir.parent.glob(f".{out_dir.name}.*-*"):
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _pid_alive(int(pid)):
            if ".old-" in p.name and not out_dir.exists():
                os.replace(p, out_dir)  # killed between the two renames: restore the previous result
            else:
                shutil.rmtree(p, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False
