"""Experiments on the nnsight backend: the same metrics as on the bridge, and the backend recorded in
metadata.json (the run's and each model's), never a key."""
from __future__ import annotations

import json
import math

from experiments.core.runner import run_experiment


def _flat(metrics, prefix: str = "") -> dict[str, float]:
    """Every number in a metrics tree, by its path."""
    out: dict[str, float] = {}
    items = metrics.items() if isinstance(metrics, dict) else enumerate(metrics)
    for k, v in items:
        if isinstance(v, (dict, list)):
            out.update(_flat(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[f"{prefix}{k}"] = float(v)
    return out


def test_an_experiment_on_nnsight_matches_the_bridge_and_records_its_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("NDIF_API_KEY", "secret-key-123")  # present in the environment: must not leak anywhere
    runs = {b: run_experiment("model-anatomy", preset="ci", out=tmp_path / b, backend=b, model="code-gpt2")
            for b in ("bridge", "nnsight")}
    a, b = _flat(runs["bridge"].metrics), _flat(runs["nnsight"].metrics)
    assert a.keys() == b.keys() and len(a) > 5
    for k in a:
        assert math.isclose(a[k], b[k], rel_tol=1e-4, abs_tol=1e-4), (k, a[k], b[k])
    meta = json.loads((tmp_path / "nnsight" / "metadata.json").read_text())
    assert meta["backend"] == "nnsight" and meta["models"][0]["backend"] == "nnsight"
    assert json.loads((tmp_path / "nnsight" / "config.json").read_text())["backend"] == "nnsight"
    for path in (tmp_path / "nnsight").rglob("*"):
        if path.is_file():
            assert b"secret-key-123" not in path.read_bytes(), path
