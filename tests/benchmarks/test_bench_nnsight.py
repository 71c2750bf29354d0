"""benchmarks/bench_nnsight.py's quick mode runs and reports every ratio it promises (the timing targets are
judged by the full benchmark, never here)."""
from __future__ import annotations

import math

from benchmarks import bench_nnsight


def test_quick_mode_reports_capture_ratios_and_request_overhead(capsys):
    ratios = bench_nnsight.main(["--quick", "--threads", "1"])
    out = capsys.readouterr().out
    assert "nnsight capture / bridge capture" in out and "remote='local' serialisation per request" in out
    for key in ("capture_patterns", "capture_resid", "local_ratio_patterns", "local_ratio_resid", "worst_capture"):
        assert math.isfinite(ratios[key]) and ratios[key] > 0, key
    assert math.isfinite(ratios["local_overhead_ms_resid"])
