"""The graph benchmark's quick mode runs and reports finite times and ratios (the targets are checked by the full
run, never in a timed unit test)."""
from __future__ import annotations

import math
import sys

from tests.conftest import ROOT


def test_bench_graph_quick_mode_reports_its_ratios(capsys):
    sys.path.insert(0, str(ROOT))
    from benchmarks.bench_graph import main

    out = main(["--quick"])
    g = out["graph"]
    assert g["features"] == 48 and g["batches"] >= 3
    for key in ("t_graph", "forward_equivalents", "floor", "ratio_to_floor", "naive", "speedup_vs_naive"):
        assert math.isfinite(g[key]) and g[key] > 0, key
    assert all(math.isfinite(t["ratio"]) and t["ratio"] > 0 for t in out["training"])
    text = capsys.readouterr().out
    assert "x the floor" in text and "of the floor" in text
