"""toy-superposition: the ci preset writes a verdict with every part's checks, figures, and seed-stable metrics."""
from __future__ import annotations

import json

import pytest

import experiments.core.runner as runner
from experiments import make_config
from experiments.core.registry import get_experiment
from interp import InvalidInput


def test_ci_preset_writes_verdict_figures_and_identical_metrics(tmp_path):
    a = runner.run_experiment("toy-superposition", preset="ci", out=tmp_path / "a")
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    checks = m["verdict"]["checks"]
    assert m["verdict"]["status"] in ("smoke test passed", "smoke test failed")
    assert [c["claim"][:3] for c in checks] == ["(a)", "(a)", "(b)", "(c)", "(c)", "(c)"]
    assert all(isinstance(c["passed"], bool) for c in checks)
    assert len(m["pentagon_norms"]) == 5 and len(m["dims_per_feature"]) == 3
    assert len(m["phase_labels"]) == 4 and all(len(row) == 4 for row in m["phase_labels"])
    assert 0.0 <= m["phase_agreement"] <= 1.0
    for fig in ("a_columns_2d", "a_norms_gram", "b_phase_diagram", "c_dimensionality"):
        assert (tmp_path / "a" / "figures" / f"{fig}.html").is_file()
    assert "(b) n=2, m=1 phase diagram" in (tmp_path / "a" / "summary.md").read_text()
    b = runner.run_experiment("toy-superposition", preset="ci", out=tmp_path / "b", force=True)
    assert a.metrics == b.metrics


def test_config_refuses_no_compression():
    exp = get_experiment("toy-superposition")
    with pytest.raises(InvalidInput, match="sweep_hidden"):
        make_config(exp, preset="ci", overrides={"sweep_hidden": "30", "sweep_features": "20"})
