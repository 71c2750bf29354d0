"""The reliability sweep's shared shape: generated bad inputs (``Case``) and what became of each (``Outcome``).

Each part (``library``, ``cli``, ``app``) is a module ``tests/fuzz/<part>_cases.py`` exposing

- ``cases() -> Iterable[Case]``: deterministic (same names, same params on every call), so a child process
  can rebuild a case from its name;
- ``run_case(case) -> Outcome``: runs one case in this process and judges it (``judge`` below does the usual
  judging of "call this, expect that").

``scripts/sweep.py --part library|cli|app|all`` runs them; a case with ``isolate=True`` (one that could hang or
segfault) runs in a child process via ``run_isolated`` so a crash or hang is counted, not suffered. The fast
subsets in the test suite call the same functions.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

# What a case must end in. "InvalidInput"/"ModelUnavailable"/"WorkbenchError": that typed error (a subclass
# counts); "ok": a result, checked by the part's own check; "exit2": a CLI exit status 2 with a one-line
# message and no traceback; "clear_error": the part's own notion of a clear message (e.g. an app st.error).
Expected = Literal["InvalidInput", "ModelUnavailable", "WorkbenchError", "ok", "exit2", "clear_error"]

# pass: ended as expected. raw_exception: an untyped exception or a traceback reached the user. crash: the
# process died (signal, segfault). hang: past the timeout. silent_wrong: a bad input was accepted, or a result
# is wrong (NaN, mis-shaped, differs from the reference). wrong_error: a typed error of the wrong kind, or a
# good input refused.
Status = Literal["pass", "raw_exception", "crash", "hang", "silent_wrong", "wrong_error"]
STATUSES: tuple[Status, ...] = ("pass", "raw_exception", "crash", "hang", "silent_wrong", "wrong_error")

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Case:
    """One generated input. ``params`` is JSON-able data the part's ``run_case`` interprets by ``group``."""

    part: str                      # "library" | "cli" | "app"
    group: str                     # family of the input, e.g. "index.layer", "loading.missing_keys"
    name: str                      # unique within the part, stable across calls
    expect: Expected
    params: dict[str, Any] = field(default_factory=dict)
    isolate: bool = False          # run in a child process with a timeout (may hang or segfault)
    timeout_s: float = 120.0
    fast: bool = False             # in the test suite's fast subset


@dataclass(frozen=True)
class Outcome:
    """What became of one case."""

    case: Case
    status: Status
    detail: str = ""               # the error message (capped) or why it is judged wrong
    seconds: float = 0.0


def cap(text: str, n: int = 300) -> str:
    """One line, at most n characters: for Outcome.detail."""
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def judge(case: Case, fn: Callable[[], Any], check: Callable[[Any], str | None] | None = None) -> Outcome:
    """Run ``fn`` and judge it against ``case.expect``. ``check(result)`` returns None when a result is right,
    else why it is wrong (only used when a result comes back)."""
    from interp.errors import InvalidInput, ModelUnavailable, WorkbenchError

    kinds = {"InvalidInput": InvalidInput, "ModelUnavailable": ModelUnavailable, "WorkbenchError": WorkbenchError}
    t0 = time.perf_counter()
    try:
        result = fn()
    except WorkbenchError as e:
        dt = time.perf_counter() - t0
        want = kinds.get(case.expect)
        if want is not None and isinstance(e, want):
            return Outcome(case, "pass", cap(f"{type(e).__name__}: {e}"), dt)
        return Outcome(case, "wrong_error", cap(f"expected {case.expect}, got {type(e).__name__}: {e}"), dt)
    except Exception as e:  # noqa: BLE001 - counting untyped errors is the point
        return Outcome(case, "raw_exception", cap(f"{type(e).__name__}: {e}"), time.perf_counter() - t0)
    dt = time.perf_counter() - t0
    if case.expect != "ok":
        return Outcome(case, "silent_wrong", cap(f"expected {case.expect}, got a result: {result!r}"), dt)
    why = check(result) if check is not None else None
    if why:
        return Outcome(case, "silent_wrong", cap(why), dt)
    return Outcome(case, "pass", "", dt)


def run_isolated(case: Case) -> Outcome:
    """Run one case in a child process (``python -m tests.fuzz.child PART NAME``): a signal is a crash, the
    timeout a hang; otherwise the child's own Outcome."""
    cmd = [sys.executable, "-m", "tests.fuzz.child", case.part, case.name]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=case.timeout_s)
    except subprocess.TimeoutExpired:
        return Outcome(case, "hang", f"no answer after {case.timeout_s:.0f} s", time.perf_counter() - t0)
    dt = time.perf_counter() - t0
    if proc.returncode < 0:
        return Outcome(case, "crash", f"killed by signal {-proc.returncode}", dt)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("OUTCOME ")]
    if not lines:
        return Outcome(case, "crash", cap(f"exit {proc.returncode}, no outcome: {proc.stderr[-300:]}"), dt)
    data = json.loads(lines[-1][len("OUTCOME "):])
    return Outcome(case, data["status"], data["detail"], dt)


def part_module(part: str):
    """The module ``tests.fuzz.<part>_cases``."""
    import importlib

    return importlib.import_module(f"tests.fuzz.{part}_cases")


def run_cases(part: str, cases: Iterable[Case] | None = None, *, isolate: bool = True,
              on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Run a part's cases (all, or the given ones); ``isolate=False`` runs even isolated cases in-process."""
    mod = part_module(part)
    out: list[Outcome] = []
    for case in (cases if cases is not None else mod.cases()):
        if case.isolate and isolate:
            o = run_isolated(case)
        else:
            try:
                o = mod.run_case(case)
            except Exception as e:  # noqa: BLE001 - a run_case that raises is itself an untyped error
                o = Outcome(case, "raw_exception", cap(f"{type(e).__name__}: {e}"))
        out.append(o)
        if on_outcome is not None:
            on_outcome(o)
    return out


def counts(outcomes: Iterable[Outcome]) -> dict[str, int]:
    """Status -> count, every status present (zeros included)."""
    c = Counter(o.status for o in outcomes)
    return {s: c.get(s, 0) for s in STATUSES}
