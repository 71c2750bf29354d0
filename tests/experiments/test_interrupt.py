"""One Ctrl-C ends a run: during training, and during the PNG export (kaleido renders in a thread driving a
Chromium, which used to keep the interpreter alive for every remaining figure and its profile clean-up)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import sys, time
sys.path.insert(0, {root!r})
import plotly.graph_objects as go
from experiments.core.cli import exit_now
from experiments.core.figures import save_figures
from pathlib import Path
figs = {{f"f{{i}}": go.Figure(go.Heatmap(z=[[i, 2], [3, 4]])) for i in range(40)}}
print("exporting", flush=True)
try:
    save_figures(figs, Path({out!r}))
    print("done", flush=True)
except KeyboardInterrupt:
    exit_now(130)
"""


def _interrupt(proc: subprocess.Popen, after_s: float) -> float:
    """Ctrl-C as a terminal sends it (SIGINT to the whole process group) after ``after_s``; seconds to exit."""
    time.sleep(after_s)
    t0 = time.perf_counter()
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return float("inf")
    return time.perf_counter() - t0


@pytest.mark.skipif(not shutil.which("chromium") and not Path("/usr/bin/chromium").exists(),
                    reason="PNG export needs a Chromium")
def test_one_ctrl_c_during_the_png_export_exits_at_once(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", CHILD.format(root=str(ROOT), out=str(tmp_path / "figs"))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout.readline().strip() == "exporting"
    seconds = _interrupt(proc, 2.0)
    if proc.returncode == 0:
        pytest.skip("the export finished before the interrupt (a fast machine)")
    assert proc.returncode == 130 and seconds < 5, (proc.returncode, seconds, proc.stderr.read()[-500:])


@pytest.mark.slow
def test_one_ctrl_c_during_induction_phase_change_ci_exits(tmp_path):
    env = dict(os.environ, WORKBENCH_RESULTS=str(tmp_path / "r"), WORKBENCH_CACHE=str(tmp_path / "c"),
               PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "experiments", "run", "induction-phase-change", "--preset", "ci",
                             "--out", str(tmp_path / "out")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    seconds = _interrupt(proc, 15.0)
    err = proc.stderr.read()
    assert seconds < 10, f"still running {seconds:.0f} s after one Ctrl-C: {err[-300:]}"
    if proc.returncode == 130:
        assert "interrupted: no partial result was written" in err and "Traceback" not in err
        assert not (tmp_path / "out").exists()
