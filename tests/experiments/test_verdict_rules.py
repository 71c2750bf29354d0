"""The verdict rules every experiment gets from the framework: a smoke test says so (its own words, at the top of
its summary, on the page), a changed threshold is shown beside the published one, a failed precondition (the model
does not do the task, degenerate data) gives "not checked: <why>", and a test that cannot reach significance with
this few samples says so."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch

import experiments.core.registry as registry
from experiments import all_experiments
from experiments.core.preconditions import (
    data_not_degenerate,
    does_the_task,
    min_permutation_p,
    pairs_differ,
    significance_reachable,
    tokens_not_degenerate,
)
from experiments.core.registry import Check, Experiment, RunResult, Verdict
from experiments.core.results import read_result
from experiments.core.runner import run_experiment
from experiments.core.settings import RunSettings, setting


@dataclass
class ToyConfig(RunSettings):
    outcome: str = setting("pass", "what the checks say: pass, fail or none", choices=("pass", "fail", "none"))
    bar: float = setting(0.99, "the published bar", low=0, high=1, threshold=True)
    competent: bool = setting(True, "whether the precondition holds")


class Toy(Experiment):
    name = "toy-verdict"
    title = "A toy experiment for the verdict rules"
    Config = ToyConfig
    presets: ClassVar = {"ci": {"bar": 0.9}, "big": {"outcome": "pass"}}
    precondition = "the toy model does the toy task"

    def run(self, config: ToyConfig, ctx) -> RunResult:
        passed = {"pass": True, "fail": False, "none": None}[config.outcome]
        pre = [Check("the toy model does the toy task", config.competent, "top-1 100%" if config.competent else
                     "top-1 0%")]
        return RunResult({"value": 1.0}, Verdict.from_checks([Check(f"value >= {config.bar}", passed, "1.0")],
                                                             preconditions=pre), "Body of the summary.")


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, Toy.name, Toy)
    return Toy.name


def _run(name, tmp_path, sub, **kw):
    out = tmp_path / sub
    outcome = run_experiment(name, out=out, **kw)
    return outcome, (out / "summary.md").read_text(), json.loads((out / "metadata.json").read_text())


def test_a_ci_run_is_a_smoke_test_in_its_own_words_at_the_top_of_its_summary(toy, tmp_path):
    ok, summary, meta = _run(toy, tmp_path, "ci", preset="ci")
    assert ok.verdict["status"] == "smoke test passed" and meta["smoke_test"] is True
    head = summary.split("## Verdict")[0]
    assert "**Smoke test** (preset `ci`)" in head and "reproduced" not in summary.replace("not whether the finding "
                                                                                          "reproduces", "")
    failed, _, _ = _run(toy, tmp_path, "ci-fail", preset="ci", overrides={"outcome": "fail"})
    assert failed.verdict["status"] == "smoke test failed"
    full, summary_full, meta_full = _run(toy, tmp_path, "full")
    assert full.verdict["status"] == "reproduced" and meta_full["smoke_test"] is False
    assert "Smoke test" not in summary_full
    assert read_result(tmp_path / "ci").verdict["status"] == "smoke test passed"


def test_an_older_ci_result_that_says_reproduced_is_read_as_a_smoke_test(tmp_path):
    d = tmp_path / "old"
    d.mkdir()
    for name, body in (("config.json", {}), ("metrics.json", {"verdict": {"status": "reproduced", "reason": "ok"}}),
                       ("metadata.json", {"experiment": "x", "preset": "ci"})):
        (d / name).write_text(json.dumps(body))
    r = read_result(d)
    assert r.smoke_test and r.verdict["status"] == "smoke test passed"


def test_a_changed_threshold_is_shown_beside_the_published_one(toy, tmp_path):
    out, summary, _ = _run(toy, tmp_path, "ci", preset="ci")
    assert "bar = 0.9 instead of the published 0.99" in summary.split("## Verdict")[0]
    assert "bar = 0.9 instead of the published 0.99" in out.verdict["reason"]
    assert out.metrics["thresholds_changed"] == {"bar": {"here": 0.9, "published": 0.99}}
    same, summary_same, _ = _run(toy, tmp_path, "big", preset="big")
    assert "thresholds_changed" not in same.metrics and "instead of the published" not in summary_same


def test_every_threshold_a_preset_changes_is_declared_a_threshold():
    """A field a check compares against is declared ``threshold=True``, so presets can never change it unseen."""
    bar_like = ("min_", "_min", "target", "_share", "slack", "top_k", "large", "agreement")
    for name, exp in all_experiments().items():
        for f in dataclasses.fields(exp.Config):
            if any(s in f.name for s in bar_like) and f.name not in ("copy_share", "function_share", "random_share",
                                                                      "tiled_share", "seg_min", "sweep_min_density",
                                                                      "repeat_share"):
                assert (f.metadata or {}).get("threshold"), f"{name}.{f.name} looks like a bar but is not declared one"


def test_a_failed_precondition_gives_not_checked_whatever_the_checks_say(toy, tmp_path):
    out, summary, _ = _run(toy, tmp_path, "incompetent", overrides={"competent": "false"})
    assert out.verdict["status"] == "not checked"
    assert out.verdict["reason"] == "not checked: precondition not met: the toy model does the toy task; here top-1 0%"
    assert "### Preconditions" in summary and "do not count because a precondition failed" in summary
    smoke, _, _ = _run(toy, tmp_path, "incompetent-ci", preset="ci", overrides={"competent": "false"})
    assert smoke.verdict["status"] == "not checked"  # never "smoke test passed" on a model that cannot do the task


def test_every_circuit_and_feature_experiment_states_its_precondition():
    circuits = {"copy-circuit", "induction-circuit", "gpt2-ioi-circuit", "attribution-vs-activation-patching",
                "sae-ground-truth", "train-sae"}
    exps = all_experiments()
    for name in circuits:
        assert exps[name].precondition, f"{name} states no precondition"


def test_verdict_from_checks_rules():
    ok, bad, unknown = Check("a", True), Check("b", False), Check("c", None, "too few samples")
    assert Verdict.from_checks([ok]).status == "reproduced"
    assert Verdict.from_checks([ok, bad]).status == "not reproduced"
    v = Verdict.from_checks([ok, unknown])
    assert v.status == "not checked" and "too few samples" in v.reason
    assert Verdict.from_checks([]).status == "not checked"
    assert Verdict.from_checks([ok], preconditions=[Check("model does it", False, "0%")]).status == "not checked"
    assert Verdict.from_checks([ok]).as_smoke_test().status == "smoke test passed"
    assert Verdict.from_checks([bad]).as_smoke_test().status == "smoke test failed"
    assert Verdict.not_checked("x").as_smoke_test().status == "not checked"


def test_competence_and_degenerate_data_checks():
    assert does_the_task("copy", 0.875, 3.3, min_top1=0.5, min_gap=1).passed
    assert not does_the_task("copy", 0.0, -1.72, min_top1=0.5, min_gap=1).passed
    assert not does_the_task("copy", float("nan"), 3.0, min_top1=0.5, min_gap=1).passed
    assert not pairs_differ(-0.01, min_gap=1).passed and pairs_differ(-2.0, min_gap=1, absolute=True).passed
    assert data_not_degenerate("x", torch.randn(10)).passed
    for bad, why in ((torch.zeros(5, 3), "all 15 values are zero"), (np.full(4, 2.0), "all 4 values are 2"),
                     (torch.tensor([1.0, float("nan")]), "NaN"), (np.array([]), "empty")):
        c = data_not_degenerate("x", bad)
        assert not c.passed and why in c.detail
    bos = torch.full((4, 16), 7)
    assert not tokens_not_degenerate("tokens", bos, special=[7]).passed
    assert not tokens_not_degenerate("tokens", torch.full((4, 16), 3)).passed  # all one ordinary token
    assert tokens_not_degenerate("tokens", torch.arange(64).reshape(4, 16), special=[0]).passed


def test_too_few_samples_for_significance_is_said():
    assert min_permutation_p(3) == 0.25 and min_permutation_p(8) == 2 / 256
    assert min_permutation_p(20) == pytest.approx(1 / 1001)
    ok, why = significance_reachable(3)
    assert not ok and "cannot go below 0.25" in why and "at least 6 samples" in why
    ok, why = significance_reachable(8)
    assert ok and "0.0078" in why
