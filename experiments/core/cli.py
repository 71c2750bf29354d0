"""`python -m experiments list | run NAME [...] | show DIR`: typed errors print as one message, exit 2."""
from __future__ import annotations

import argparse
import sys

from interp.errors import WorkbenchError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="registered experiments and the findings they reproduce")
    run = sub.add_parser("run", help="run an experiment into a results folder")
    run.add_argument("name")
    run.add_argument("--model", help="bundled name, Hugging Face name, or model directory")
    run.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE", help="override a config field")
    run.add_argument("--preset", help="a named small config, e.g. ci")
    run.add_argument("--out", help="results folder (default results/NAME/PRESET-HASH)")
    run.add_argument("--seed", type=int)
    run.add_argument("--device", help="cpu, cuda, cuda:0 ...")
    run.add_argument("--force", action="store_true", help="re-run even if a complete result exists")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    show = sub.add_parser("show", help="print a results folder's summary")
    show.add_argument("dir")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "list":
            return _list()
        if args.cmd == "run":
            return _run(args)
        from .results import read_result

        print(read_result(args.dir).summary)
        return 0
    except WorkbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: no partial result was written", file=sys.stderr)
        return 130


def _list() -> int:
    from .registry import all_experiments

    for name, exp in all_experiments().items():
        presets = ", ".join(exp.presets) or "-"
        print(f"{name}\n  {exp.title}\n  presets: {presets}")
        if exp.finding:
            print(f"  finding: {exp.finding.claim}\n  source: {exp.finding.source}")
            if exp.finding.published:
                print(f"  published: {exp.finding.published}")
        print()
    return 0


def _run(args: argparse.Namespace) -> int:
    from .registry import parse_sets
    from .runner import run_experiment

    bar = None
    progress = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=1000, desc=args.name, bar_format="{l_bar}{bar}| {elapsed} {postfix}", file=sys.stderr)

        def progress(frac: float, msg: str) -> None:
            bar.n = int(frac * 1000)
            bar.set_postfix_str(msg[:60], refresh=True)
    try:
        outcome = run_experiment(args.name, preset=args.preset, overrides=parse_sets(args.sets), model=args.model,
                                 out=args.out, force=args.force, progress=progress, seed=args.seed,
                                 device=args.device)
    finally:
        if bar is not None:
            bar.close()
    print(outcome.message)
    return 0
