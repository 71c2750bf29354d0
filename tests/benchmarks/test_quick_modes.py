"""Every benchmark's quick mode runs to the end (tiny sizes, one repetition), so none can rot unseen: a benchmark
file without a working ``--quick`` fails here. The numbers a quick mode prints mean nothing; the full runs are
``python benchmarks/bench_NAME.py``."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
#: Every benchmark, except those with a test file of their own here (test_bench_NAME.py runs its quick mode).
BENCHMARKS = sorted(b for b in (ROOT / "benchmarks").glob("bench_*.py") if not (HERE / f"test_{b.stem}.py").exists())


def test_there_are_benchmarks():
    assert len(BENCHMARKS) >= 7


@pytest.mark.slow
@pytest.mark.parametrize("bench", BENCHMARKS, ids=[b.stem for b in BENCHMARKS])
def test_quick_mode_runs(bench, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TQDM_DISABLE="1", TMPDIR=str(tmp_path))
    proc = subprocess.run([sys.executable, str(bench), "--quick"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"{bench.name} --quick failed:\n{proc.stderr[-2000:]}"
    assert proc.stdout.strip(), f"{bench.name} --quick printed nothing"
