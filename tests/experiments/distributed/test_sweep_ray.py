"""Sweeps on a real local Ray cluster (the session's ``ray_cluster``): one results folder per cell, reuse on a
re-run, a worker killed mid-cell whose cell is re-run, a summary with 95% CIs, the CLI."""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from experiments.core import cli
from experiments.distributed.grid import parse_grid
from experiments.distributed.sweep import run_sweep
from interp.errors import InvalidInput

pytestmark = pytest.mark.slow  # starts (or joins) a Ray cluster; cells train models

CELL = "icl-emergence-cell"
FAST = {"steps": "40", "eval_every": "10"}  # the ci preset, shorter: the sweep is under test, not the training


def _complete(path) -> bool:
    return all((path / f).is_file() for f in ("metadata.json", "config.json", "metrics.json", "summary.md"))


def test_two_cells_by_two_seeds_folders_reuse_and_summary(ray_cluster, tmp_path):
    out = tmp_path / "sweep"
    argv = ["sweep", CELL, "--preset", "ci", "--grid", "repeat_share=0,1", "--seeds", "0-1", "--out", str(out)]
    argv += [a for k, v in FAST.items() for a in ("--set", f"{k}={v}")]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert cli.main(argv) == 0
    lines = stdout.getvalue().splitlines()
    assert sum(": done (" in ln for ln in lines) == 4 and "4 done" in lines[-1]
    cells = sorted(p.name for p in (out / "cells").iterdir())
    assert cells == ["repeat_share=0_seed=0", "repeat_share=0_seed=1", "repeat_share=1_seed=0", "repeat_share=1_seed=1"]
    for name in cells:
        config = json.loads((out / "cells" / name / "config.json").read_text())
        assert _complete(out / "cells" / name)
        assert (config["seed"], config["repeat_share"], config["steps"], config["threads"]) == (
            int(name[-1]), float(name.split("=")[1].split("_")[0]), 40, 1)
    metrics = json.loads((out / "metrics.json").read_text())
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["kind"] == "sweep" and meta["cells"] == 4 and meta["cluster"]["cpus"] == 2.0
    final = {g["settings"]["repeat_share"]: g for g in metrics["groups"] if g["metric"] == "final_induction"}
    assert final["1"]["n"] == 2 and final["1"]["ci95"] > 0 and len(final["1"]["values"]) == 2
    assert (out / "figures" / "sweep_final_induction.html").is_file()
    assert " ± " in (out / "summary.md").read_text() and "95% t interval" in (out / "summary.md").read_text()
    # a re-run reuses every cell: nothing trains, the folders are untouched
    stamps = {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*/metadata.json")}
    again = run_sweep(CELL, parse_grid(["repeat_share=0,1"]), (0, 1), preset="ci", sets=FAST, out=out)
    assert [o.status for o in again.cells] == ["reused"] * 4
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    # widening the sweep runs only the new cells
    wider = run_sweep(CELL, parse_grid(["repeat_share=0,1"]), (0, 1, 2), preset="ci", sets=FAST, out=out)
    assert sorted(o.status for o in wider.cells) == ["done", "done"] + ["reused"] * 4


def test_more_cpus_per_cell_than_any_node_has_is_refused_not_a_hang(ray_cluster, tmp_path):
    with pytest.raises(InvalidInput, match="no node of the cluster has that many CPUs"):
        run_sweep(CELL, {"repeat_share": ("1",)}, (0,), preset="ci", sets=FAST, out=tmp_path / "s", cpus_per_cell=3)


def test_a_worker_killed_mid_cell_leaves_nothing_half_written_and_its_cell_is_re_run(ray_cluster, tmp_path):
    out = tmp_path / "sweep"
    result: dict = {}
    sets = {"steps": "400", "eval_every": "20"}
    t = threading.Thread(target=lambda: result.update(o=run_sweep(CELL, {"repeat_share": ("1",)}, (5,),
                                                                  preset="ci", sets=sets, out=out)))
    t.start()
    killed, deadline = None, time.monotonic() + 240
    while killed is None and time.monotonic() < deadline and t.is_alive():
        staging = list((out / "cells").glob(".*.tmp-*")) if (out / "cells").is_dir() else []
        if staging:  # the runner's staging folder names the worker's pid
            killed = int(staging[0].name.rsplit("-", 1)[1])
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.02)
    t.join(timeout=400)
    assert killed is not None, "never saw the cell's staging folder"
    outcome = result["o"]
    assert [o.status for o in outcome.cells] == ["done"], outcome.cells[0].message
    cell = out / "cells" / "repeat_share=1_seed=5"
    assert _complete(cell) and json.loads((cell / "config.json").read_text())["steps"] == 400
    assert not list((out / "cells").glob(".*")), "a staging folder of the killed attempt was left behind"
    assert len(json.loads((cell / "metrics.json").read_text())["steps"]) == 400 // 20 + 1  # the whole history


def test_a_cell_that_fails_is_reported_and_the_others_finish(ray_cluster, tmp_path):
    out = tmp_path / "sweep"
    (out / "cells" / "repeat_share=0_seed=0").mkdir(parents=True)
    (out / "cells" / "repeat_share=0_seed=0" / "notes.txt").write_text("not a result")  # this cell cannot be written
    (out / "sweep.json").write_text("{}")
    o = run_sweep(CELL, {"repeat_share": ("0",)}, (0, 1), preset="ci", sets=FAST, out=out)
    assert [c.status for c in o.cells] == ["failed", "done"] and "did not write" in o.cells[0].message
    assert (out / "cells" / "repeat_share=0_seed=0" / "notes.txt").read_text() == "not a result"
    assert "Failed cells" in (out / "summary.md").read_text()


def test_an_existing_cluster_runs_the_same_sweep_through_address(ray_cluster, tmp_path):
    """The CLI in another process joins the session's cluster by its address; the cell is the same as a local one."""
    import subprocess
    import sys

    import ray

    from tests.conftest import ROOT

    address = ray.get_runtime_context().gcs_address
    out = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, "-m", "experiments", "sweep", CELL, "--preset", "ci", "--grid",
                           "repeat_share=1", "--seeds", "0", "--set", "steps=20", "--set", "eval_every=10",
                           "--address", address, "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["cluster"]["address"] == address and meta["cluster"]["started_here"] is False
    assert _complete(out / "cells" / "repeat_share=1_seed=0")
    assert not (Path.home() / ".ray" / "auth_token").exists()  # nothing written that changes a later run
