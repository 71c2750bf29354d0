"""icl-emergence-vs-structure: the ci preset runs its cells as a Ray sweep and writes a verdict; the cell
experiment's numbers come from its training history."""
from __future__ import annotations

import json

import pytest

from experiments.core.registry import NOT_CHECKED, NOT_REPRODUCED, REPRODUCED
from experiments.core.runner import run_experiment
from experiments.reproductions.icl_emergence_cell import measure
from experiments.reproductions.icl_emergence_vs_structure import forecast


@pytest.mark.slow  # a Ray cluster and 8 tiny training runs
def test_ci_preset_runs_a_ray_sweep_and_writes_a_verdict(ray_cluster, tmp_path):
    out = run_experiment("icl-emergence-vs-structure", preset="ci", out=tmp_path / "run",
                         overrides={"sweep_out": str(tmp_path / "sweep"), "steps": "120"})
    assert out.verdict["status"] in (REPRODUCED, NOT_REPRODUCED, NOT_CHECKED) and len(out.verdict["checks"]) == 4
    cells = sorted(p.name for p in (tmp_path / "sweep" / "cells").iterdir())
    assert len(cells) == 8 and "repeat_share=0.75_seed=1" in cells  # 3 shares + the held-out one, 2 seeds
    assert json.loads((tmp_path / "sweep" / "metadata.json").read_text())["cells"] == 8
    assert set(out.metrics["onsets"]) == {"0.0", "0.5", "0.75", "1.0"}
    assert (tmp_path / "run" / "figures" / "onset_vs_share.html").is_file()
    again = run_experiment("icl-emergence-vs-structure", preset="ci", out=tmp_path / "run", force=True,
                           overrides={"sweep_out": str(tmp_path / "sweep"), "steps": "120"})
    assert again.metrics["onsets"] == out.metrics["onsets"]  # every cell reused: the same numbers


def test_cell_numbers_come_from_the_history():
    steps = list(range(0, 1100, 100))
    scores = [0.03] * 5 + [0.04, 0.6, 0.88, 0.9, 0.9, 0.9]
    icl = [0.0] * 5 + [-0.2, -3.0, -4.0, -4.0, -4.0, -4.0]
    m = measure(steps, scores, icl)
    assert (m["onset_step"], m["abruptness_steps"], m["rise_90"], m["abrupt"]) == (600, 100, 700, True)
    assert m["icl_drop"] == pytest.approx(1.0) and m["icl_score_final"] == -4.0
    none = measure(steps, [0.03] * 11, [0.0] * 11)
    assert none["onset_step"] is None and none["abruptness_steps"] is None and not none["formed"]


def test_forecast_fits_only_shares_where_every_seed_formed():
    onsets = {0.0: [None, None], 0.3: [5000.0, None], 0.5: [2000.0, 2100.0], 1.0: [700.0, 690.0]}
    fc = forecast(onsets, 0.75)
    assert fc["fitted_shares"] == [0.5, 1.0] and fc["n_points"] == 4
    assert 700 < fc["predicted_onset"] < 2000
