"""Fixtures shared by the experiment tests: models trained once per test session, not once per test."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def ci_text_lm(tmp_path_factory) -> tuple[object, Path, Path]:
    """The train-text-lm ci preset, run once: (RunOutcome, results folder, model directory)."""
    from experiments.core import runner

    root = tmp_path_factory.mktemp("ci-text-lm")
    out, model = root / "r", root / "m"
    outcome = runner.run_experiment("train-text-lm", out=out, preset="ci", overrides={"out_model": str(model)})
    return outcome, out, model
