"""Reliability sweep: run the generated bad inputs of one part (or all) and print counts per outcome.

    .venv/bin/python scripts/sweep.py --part library|surface|cli|app|all [--fast] [--list] [--verbose]

Each part lives in ``tests/fuzz/<part>_cases.py`` (``cases()``, ``run_case(case)``; see tests/fuzz/__init__.py).
Exit status 0 when every case passed, 1 otherwise.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fuzz import STATUSES, counts, part_module, run_cases  # noqa: E402

PARTS = ("library", "surface", "cli", "app")


def available(part: str) -> bool:
    return importlib.util.find_spec(f"tests.fuzz.{part}_cases") is not None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=(*PARTS, "all"), default="all")
    ap.add_argument("--fast", action="store_true", help="only the cases marked fast (the test suite's subset)")
    ap.add_argument("--list", action="store_true", help="list the cases, run nothing")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every case, not only the failures")
    ap.add_argument("--only", default="", help="run only cases whose name contains this text")
    args = ap.parse_args(argv)

    parts = PARTS if args.part == "all" else (args.part,)
    total: dict[str, int] = dict.fromkeys(STATUSES, 0)
    for part in parts:
        if not available(part):
            print(f"[{part}] no tests/fuzz/{part}_cases.py yet: skipped")
            continue
        cases = [c for c in part_module(part).cases()
                 if (c.fast or not args.fast) and args.only in c.name]
        if args.list:
            for c in cases:
                flag = "\tisolated" if c.isolate else ""
                print(f"{part}\t{c.group}\t{c.name}\texpect={c.expect}{flag}")
            continue
        t0 = time.perf_counter()

        def show(o, _part=part):
            if args.verbose or o.status != "pass":
                print(f"[{_part}] {o.status:13s} {o.case.name}: {o.detail}", flush=True)

        outcomes = run_cases(part, cases, on_outcome=show)
        c = counts(outcomes)
        for k, v in c.items():
            total[k] += v
        print(f"[{part}] {len(outcomes)} cases in {time.perf_counter() - t0:.0f} s: "
              + ", ".join(f"{k} {v}" for k, v in c.items()), flush=True)
    if args.list:
        return 0
    print("TOTAL " + ", ".join(f"{k} {v}" for k, v in total.items()) + f" (of {sum(total.values())})")
    return 0 if sum(total.values()) == total["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
