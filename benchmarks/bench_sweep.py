"""A sweep of N equal ci cells on a local Ray cluster vs the same cells one after another in this process.

Measured in one run, on this machine:
1. ``sequential``: the N cells (``icl-emergence-cell`` ci preset, seeds 0..N-1, one torch thread each) run one
   after another with ``run_experiment`` (after one warm-up cell, so imports are not counted);
2. ``ray_start``: starting the local cluster (``ray.init``), Ray's first fixed cost;
3. ``ray_sweep``: the same N cells as a sweep on that cluster (one CPU per cell), including the workers' start
   and imports, Ray's second fixed cost; ``noop_task``: the round trip of an empty task once warm.
Ratios: speed-up = sequential / ray_sweep (and with the start counted), against the ideal min(N, CPUs);
Ray's fixed cost = ray_start + ray_sweep - sequential / min(N, CPUs) (what the cluster costs beyond perfect
parallelism). The cells' metrics must equal the sequential ones (same seeds, same numbers).

    python benchmarks/bench_sweep.py [--cells 8] [--steps 240] [--cpus 2]
    python benchmarks/bench_sweep.py --quick   # the test suite's run: 2 short cells
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TQDM_DISABLE", "1")

CELL = "icl-emergence-cell"


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=8, help="equal cells (seeds 0..N-1)")
    ap.add_argument("--steps", type=int, default=240, help="training steps per cell (the ci preset: 240)")
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="CPUs of the local Ray cluster")
    ap.add_argument("--quick", action="store_true", help="2 cells of 40 steps (the test suite's run)")
    args = ap.parse_args(argv)
    if args.quick:
        args.cells, args.steps = 2, 40
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        os.environ.setdefault("WORKBENCH_CACHE", str(Path(tmp) / "cache"))  # before the runner is imported
        from experiments.core.runner import run_experiment
        from experiments.distributed.cluster import connected
        from experiments.distributed.sweep import run_sweep

        sets = {"steps": str(args.steps), "threads": "1"}
        seeds = tuple(range(args.cells))
        run_experiment(CELL, preset="ci", overrides={**sets, "steps": "10"}, seed=999, out=Path(tmp) / "warm")
        t0 = time.perf_counter()
        seq = {s: run_experiment(CELL, preset="ci", overrides=sets, seed=s, out=Path(tmp) / "seq" / str(s)).metrics
               for s in seeds}
        sequential = time.perf_counter() - t0
        t0 = time.perf_counter()
        with connected(num_cpus=args.cpus) as cluster:
            ray_start = time.perf_counter() - t0
            t0 = time.perf_counter()
            swept = run_sweep(CELL, {}, seeds, preset="ci", sets=sets, out=Path(tmp) / "sweep")
            ray_sweep = time.perf_counter() - t0
            import ray

            noop = ray.remote(lambda: None).options(num_cpus=0)
            ray.get(noop.remote())
            t0 = time.perf_counter()
            for _ in range(20):
                ray.get(noop.remote())
            noop_task = (time.perf_counter() - t0) / 20
        failed = [c.message for c in swept.cells if c.status != "done"]
        if failed:
            sys.exit(f"a Ray cell did not run: {failed[0]}")
        for c in swept.cells:
            ray_m = json.loads((c.path / "metrics.json").read_text())
            if ray_m["max_induction"] != seq[c.cell.seed]["max_induction"]:
                sys.exit(f"seed {c.cell.seed}: the Ray cell's numbers differ from the sequential run's")
    ideal = min(args.cells, int(cluster.cpus))
    out = {"cells": args.cells, "steps": args.steps, "cpus": cluster.cpus, "sequential_s": sequential,
           "ray_start_s": ray_start, "ray_sweep_s": ray_sweep, "noop_task_ms": noop_task * 1000,
           "speedup": sequential / ray_sweep, "speedup_with_start": sequential / (ray_start + ray_sweep),
           "ideal_speedup": ideal, "ray_fixed_cost_s": ray_start + ray_sweep - sequential / ideal,
           "load_avg_1min": os.getloadavg()[0]}
    print(f"{args.cells} ci cells of {args.steps} steps, {cluster.cpus:g} CPUs "
          f"(load average {out['load_avg_1min']:.1f}):")
    print(f"  one after another      {sequential:8.1f} s")
    print(f"  Ray: start cluster     {ray_start:8.1f} s")
    print(f"  Ray: sweep             {ray_sweep:8.1f} s  (empty task round trip {out['noop_task_ms']:.1f} ms)")
    print(f"  speed-up {out['speedup']:.2f}x (with the start {out['speedup_with_start']:.2f}x; ideal {ideal}x); "
          f"Ray's fixed cost ~{out['ray_fixed_cost_s']:.1f} s per sweep; same numbers as sequential: yes")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}))
    return out


if __name__ == "__main__":
    main()
