"""``python -m experiments sweep NAME --grid KEY=V1,V2 ... --seeds 0-4 [--address ADDR]``: the arguments and
the command (kept here so the main CLI only registers it)."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from interp.errors import InvalidInput

EPILOG = """examples:
  python -m experiments sweep induction-phase-change --preset ci --grid lr=1e-3,3e-3 --seeds 0-2
  python -m experiments sweep icl-emergence-cell --grid repeat_share=0,0.5,1 --seeds 0-4 --address auto

With no --address a local Ray cluster starts on this machine for the sweep and stops after it (~15 s, ~1 GiB);
with --address the cells run on that cluster (every node needs this repository at the same path, the pinned
requirements and the results folder on a shared filesystem). Re-running a sweep reuses finished cells."""


def add_parser(sub: Any) -> None:
    """Register ``sweep`` on the main CLI's subcommands."""
    p = sub.add_parser("sweep", help="run an experiment over a grid of settings and seeds on a Ray cluster",
                       description=__doc__.splitlines()[0].strip("`: "), epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name")
    p.add_argument("--grid", action="extend", nargs="+", metavar="KEY=V1,V2",
                   help="a setting and its values (repeatable; cells are every combination)")
    p.add_argument("--seeds", help="seeds: a range 0-4, a list 0,3,7 or both (default 0)")
    p.add_argument("--address", help="an existing Ray cluster: auto, HOST:PORT or ray://HOST:PORT "
                                     "(default: a local cluster on this machine)")
    p.add_argument("--preset", help="a named config of the experiment every cell starts from, e.g. ci")
    p.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE", help="fix a setting in every cell")
    p.add_argument("--out", help="sweep folder (default results/sweep-NAME/PRESET-HASH)")
    p.add_argument("--cpus", type=int, help="CPUs of the local cluster (default: all of this machine's)")
    p.add_argument("--cpus-per-cell", type=int, default=1, help="CPUs (and torch threads) per cell (default 1)")
    p.add_argument("--force", action="store_true", help="re-run every cell even if a complete result exists")
    p.add_argument("--quiet", action="store_true", help="no line per finished cell")


def run(args: argparse.Namespace) -> int:
    """Check everything, run the sweep, print one line per cell and the summary's place; 1 if a cell failed."""
    from experiments.core.cli import one_line
    from experiments.core.registry import get_experiment, parse_sets
    from experiments.distributed.grid import parse_grid, parse_seeds
    from experiments.distributed.summary import CellOutcome
    from experiments.distributed.sweep import run_sweep

    for flag in ("out", "preset", "address"):
        value = getattr(args, flag)
        if value is not None and not value.strip():
            raise InvalidInput(f"--{flag} is empty.", f"Give a value, or omit --{flag} to use the default.")
    if args.cpus is not None and not 1 <= args.cpus <= 4096:
        raise InvalidInput(f"--cpus {args.cpus} is invalid: expected a whole number in 1 .. 4096.")
    if args.cpus is not None and args.address is not None:
        raise InvalidInput("--cpus sizes a local cluster; an existing cluster (--address) has its own CPUs.",
                           "Drop --cpus, or drop --address.")
    get_experiment(args.name)
    grid, seeds = parse_grid(args.grid), parse_seeds(args.seeds)

    def report(o: CellOutcome, done: int, total: int) -> None:
        if not args.quiet:
            what = o.verdict.get("status", "") if o.status != "failed" else one_line(o.message, 200)
            print(f"[{done}/{total}] {o.cell.label()} seed {o.cell.seed}: {o.status} ({what})", flush=True)

    outcome = run_sweep(args.name, grid, seeds, preset=args.preset, sets=parse_sets(args.sets),
                        address=args.address, out=args.out, force=args.force, cpus=args.cpus,
                        cpus_per_cell=args.cpus_per_cell, progress=report)
    print(outcome.message)
    if outcome.failed:
        print(f"error: {len(outcome.failed)} of {len(outcome.cells)} cells failed (see {outcome.path}/summary.md); "
              "run the same command again to retry them", file=sys.stderr)
        return 1
    return 0
