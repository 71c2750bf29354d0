"""Bundled models are read-only to analyses: every registered experiment's ci preset leaves models/ byte-identical
(unless the user names an output there, which no preset does)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from experiments import all_experiments
from experiments.core import runner
from interp.loading import BUNDLED_DIR


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file (and "dir" for every folder) under ``root``."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


CI_EXPERIMENTS = sorted(name for name, exp in all_experiments().items() if "ci" in exp.presets)


@pytest.mark.slow
@pytest.mark.parametrize("name", CI_EXPERIMENTS)
def test_ci_preset_leaves_bundled_models_byte_identical(name, tmp_path):
    if not BUNDLED_DIR.is_dir():
        pytest.skip("no bundled models/ folder")
    before = tree_digest(BUNDLED_DIR)
    runner.run_experiment(name, preset="ci", out=tmp_path / "r", force=True)
    after = tree_digest(BUNDLED_DIR)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"{name} --preset ci changed models/: {changed[:10]}"
