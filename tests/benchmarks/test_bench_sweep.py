"""benchmarks/bench_sweep.py --quick: a sweep on a fresh local Ray cluster vs the same cells in sequence."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow  # starts its own Ray cluster (its start-up is one of the numbers) and trains 2 + 2 tiny cells
def test_quick_benchmark_reports_speedup_and_ray_fixed_cost(tmp_path):
    env = {**os.environ, "WORKBENCH_CACHE": str(tmp_path / "cache"), "WORKBENCH_RESULTS": str(tmp_path / "results")}
    proc = subprocess.run([sys.executable, "benchmarks/bench_sweep.py", "--quick"], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    numbers = json.loads(proc.stdout.strip().splitlines()[-1])
    assert numbers["cells"] == 2 and numbers["sequential_s"] > 0 and numbers["ray_sweep_s"] > 0
    assert numbers["ray_start_s"] > 0 and numbers["speedup"] > 0 and numbers["ideal_speedup"] >= 1
    assert "same numbers as sequential: yes" in proc.stdout
