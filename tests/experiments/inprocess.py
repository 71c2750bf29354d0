"""Run an experiment's ``run()`` in this process on a scratch folder (no runner: no results folder, no skip), for
tests that look at its metrics and verdict directly."""
from __future__ import annotations

import json

import experiments.core.runner as runner
from experiments import make_config
from experiments.core.registry import RunResult, get_experiment


def run_in_process(name, tmp_path, preset="ci", overrides=None, **fields) -> tuple[dict, RunResult]:
    """(metrics as they would be written to metrics.json, the RunResult) of experiment ``name``."""
    cls = get_experiment(name)
    config = make_config(cls, preset=preset, overrides=overrides, **fields)
    (tmp_path / "out").mkdir(exist_ok=True)
    ctx = runner.RunContext(experiment=name, seed=config.seed, device="cpu", out_dir=tmp_path / "out",
                            cache_root=tmp_path / "cache", work_dir=tmp_path / "work")
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    runner.seed_everything(config.seed)
    result = cls().run(config, ctx)
    return json.loads(json.dumps(runner.to_jsonable(result.metrics))), result
