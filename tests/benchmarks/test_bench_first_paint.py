"""benchmarks/bench_first_paint.py's quick mode runs: a cold server's first page and the floor (Streamlit and the
browser alone) are both measured and reported (the 5 s target is judged by the full benchmark, never here)."""
from __future__ import annotations

import math
import os

import pytest

from tests.app.browser import CHROMIUM

pytestmark = pytest.mark.browser


def test_quick_mode_reports_the_landing_page_against_the_floor(capsys):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    pytest.importorskip("playwright.sync_api")
    from benchmarks import bench_first_paint

    out = bench_first_paint.main(["--quick"])
    text = capsys.readouterr().out
    assert "floor" in text and "landing" in text and "wall / floor" in text
    for key in ("floor_wall", "landing_wall", "landing_cpu", "landing_ratio"):
        assert math.isfinite(out[key]) and out[key] > 0, key
