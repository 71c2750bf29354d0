"""The four patching experiments: registered with findings, CI presets write verdicts, offline paths say why."""
import json

import pytest

import experiments.core.runner as runner
from experiments import make_config
from experiments.core.registry import get_experiment

NAMES = ("induction-circuit", "attribution-vs-activation-patching", "copy-circuit", "gpt2-ioi-circuit")


def _metrics(out):
    for f in ("config.json", "metrics.json", "summary.md", "metadata.json"):
        assert (out / f).is_file(), f
    return json.loads((out / "metrics.json").read_text())


def test_registered_with_findings_and_ci_presets():
    for name in NAMES:
        cls = get_experiment(name)
        assert "ci" in cls.presets and cls.finding.source and make_config(cls, preset="ci").seed == 0
    assert make_config(get_experiment("copy-circuit")).model == "code-gpt2"


@pytest.mark.slow
def test_induction_circuit_ci_ranks_1_2_first_and_reports_paths(tmp_path):
    out = tmp_path / "ic"
    res = runner.run_experiment("induction-circuit", out=out, preset="ci")
    m = _metrics(out)
    assert res.verdict["status"] in ("smoke test passed", "smoke test failed") and len(res.verdict["checks"]) == 5
    assert all(p["passed"] for p in res.verdict["preconditions"])  # attn-only-2l does induction
    assert m["ranked_heads"][0] == "1.2" and set(m["path_effect"]) == {"q", "k", "v"}
    assert m["path_share"]["k"] > max(abs(m["path_share"]["q"]), abs(m["path_share"]["v"]))
    assert {"head_out_fresh", "path_qkv", "dla_heads"} <= {p.stem for p in (out / "figures").glob("*.html")}


@pytest.mark.slow
def test_attribution_vs_patching_ci_reports_correlations_per_kind(tmp_path):
    out = tmp_path / "av"
    res = runner.run_experiment("attribution-vs-activation-patching", out=out, preset="ci")
    m = _metrics(out)
    kinds = m["models"]["attn-only-2l"]["by_kind"]
    assert set(kinds) == {"head_out", "attn_out", "resid_pre"}  # attention-only: no MLP sweep
    assert all(-1 <= k["pearson"] <= 1 for k in kinds.values()) and len(res.verdict["checks"]) == 3
    assert m["models"]["attn-only-2l"]["attribution_passes"] == {"forward": 2, "backward": 1}


@pytest.mark.slow
def test_copy_circuit_ci_is_a_passed_smoke_test_on_the_code_model(tmp_path):
    out = tmp_path / "cc"
    res = runner.run_experiment("copy-circuit", out=out, preset="ci")
    m = _metrics(out)
    assert res.verdict["status"] == "smoke test passed", res.verdict["reason"]
    assert m["model"] == "code-gpt2" and m["accuracy"] >= 0.5
    assert len(m["head_out_effect"]) == 4 and m["dataset_effects"][0]["n_pairs"] == 8
    assert [p["passed"] for p in res.verdict["preconditions"]] == [True, True]
    summary = (out / "summary.md").read_text()
    assert summary.index("**Smoke test**") < summary.index("## Verdict: smoke test passed")
    assert "smallest possible p-value is 0.0078" in summary  # the test's power, beside the table


@pytest.mark.slow
def test_copy_circuit_on_a_model_that_cannot_copy_is_not_checked(tmp_path):
    res = runner.run_experiment("copy-circuit", out=tmp_path / "std", preset="ci", model="stdlib-gpt2")
    assert res.verdict["status"] == "not checked"
    assert "precondition not met: the model does the task" in res.verdict["reason"]
    assert "head_out_effect" not in res.metrics  # no circuit analysis of a task the model does not do
    res = runner.run_experiment("copy-circuit", out=tmp_path / "missing", preset="ci",
                                overrides={"model": "no-such-code-model"})
    assert res.verdict["status"] == "not checked" and "not available" in res.verdict["reason"]


def test_ioi_offline_is_not_checked_with_a_reason(tmp_path):
    res = runner.run_experiment("gpt2-ioi-circuit", out=tmp_path / "ioi", preset="ci")
    assert res.verdict["status"] == "not checked" and "Hub" in res.verdict["reason"]


@pytest.mark.slow
def test_ioi_logic_on_gpt2_shape_model_with_real_tokenizer(gpt2_shape_dir, tmp_path):
    out = tmp_path / "ioi-shape"
    untrained = runner.run_experiment("gpt2-ioi-circuit", model=str(gpt2_shape_dir), out=tmp_path / "pre",
                                      preset="ci")
    assert untrained.verdict["status"] == "not checked"  # a random model does not do IOI: nothing is traced
    assert "precondition not met" in untrained.verdict["reason"]
    res = runner.run_experiment("gpt2-ioi-circuit", model=str(gpt2_shape_dir), out=out, preset="ci",
                                overrides={"min_top1": "0", "min_logit_diff": "-100"})  # the logic, on any model
    m = _metrics(out)
    assert res.verdict["status"] in ("smoke test passed", "smoke test failed") and len(res.verdict["checks"]) == 6
    assert "min_top1 = 0 instead of the published 0.5" in (out / "summary.md").read_text()
    assert len(m["direct_effect"]) == 12 and len(m["direct_effect"][0]) == 12
    assert all(v is None for v in m["into_name_movers_q"][9][:])  # senders must be before the name movers
    assert len(m["rankings"]["name movers"]) == 10
