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
    assert out.verdict["status"] in (REPRODUCED, NOT_REPRODUCED, NOT_CHECKED) and len(out.verdict["checks"]) == 5
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


def test_checks_and_forecast_on_known_onsets(tmp_path):
    """The cross-share checks and the forecast on cells whose onsets follow onset = 700 * share^-1.5 (no head
    below share 0.3), without training: the verdict is earned by these numbers alone."""
    from experiments.core.registry import make_config
    from experiments.distributed.grid import Cell
    from experiments.distributed.summary import CellOutcome
    from experiments.reproductions.icl_emergence_vs_structure import IclEmergenceVsStructure, onsets_by_share

    exp = IclEmergenceVsStructure
    config = make_config(exp)  # the full run's shares: 0, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0; held out 0.6

    def cell(share: float, seed: int) -> CellOutcome:
        if share < 0.3:
            headline = {"onset_step": None}
        else:
            onset = round(700 * share ** -1.5 * (1 + 0.03 * (seed - 1)))
            headline = {"onset_step": onset, "abruptness_steps": 200.0, "rise_90": onset + 100.0,
                        "icl_drop": 2.0, "final_induction": 0.9, "icl_score_final": -4.0}
        return CellOutcome(Cell((("repeat_share", repr(share)),), seed), tmp_path, "done", {}, headline)

    cells = [cell(s, seed) for s in (*config.shares, config.held_out) for seed in range(3)]
    fitted = onsets_by_share([c for c in cells if dict(c.cell.settings)["repeat_share"] != "0.6"])
    fc = {**forecast(fitted, config.held_out), "made_at": "2026-01-01T00:00:00+00:00"}
    cluster = {"address": "local", "nodes": 1, "cpus": 2.0}
    icl = {s: ([None] * 3 if s < 0.3 else [1000.0] * 3) for s in (*config.shares, config.held_out)}
    result = exp()._result(config, cells, icl, fc, "", tmp_path, cluster)
    assert result.verdict.status == REPRODUCED, result.verdict.reason
    assert result.metrics["threshold_share"] == 0.3 and result.metrics["icl_threshold_share"] == 0.3
    f = result.metrics["forecast"]
    assert f["predicted_onset"] == pytest.approx(700 * 0.6 ** -1.5, rel=0.02)
    assert f["within_spread"] and abs(f["relative_error"]) < 0.03 and "made_at" not in f
    assert "onset_vs_share" in result.figures and "Forecast" in result.summary
    # a gradual rise at one share fails the abruptness check; heads on pure noise fail the threshold check
    slow = [CellOutcome(c.cell, c.path, c.status, {}, {**c.headline, "abruptness_steps": 5000.0})
            if c.headline.get("onset_step") and dict(c.cell.settings)["repeat_share"] == "0.5" else c for c in cells]
    assert exp()._result(config, slow, icl, fc, "", tmp_path, cluster).verdict.status == NOT_REPRODUCED
    noisy = [CellOutcome(c.cell, c.path, c.status, {}, {**cells[-1].headline, "onset_step": 900})
             if dict(c.cell.settings)["repeat_share"] == "0.0" else c for c in cells]
    assert exp()._result(config, noisy, icl, fc, "", tmp_path, cluster).verdict.status == NOT_REPRODUCED
    # copying in context on pure noise (no threshold by behaviour) fails Chan et al.'s claim even without heads
    everywhere = {s: [800.0] * 3 for s in icl}
    assert exp()._result(config, cells, everywhere, fc, "", tmp_path, cluster).verdict.status == NOT_REPRODUCED
