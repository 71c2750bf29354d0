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
    assert res.verdict["status"] in ("reproduced", "not reproduced") and len(res.verdict["checks"]) == 5
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
def test_copy_circuit_ci_on_stdlib_and_missing_model_not_checked(tmp_path):
    out = tmp_path / "cc"
    res = runner.run_experiment("copy-circuit", out=out, preset="ci")
    m = _metrics(out)
    assert res.verdict["status"] in ("reproduced", "not reproduced") and m["model"] == "stdlib-gpt2"
    assert len(m["head_out_effect"]) == 4 and m["dataset_effects"][0]["n_pairs"] == 3
    res = runner.run_experiment("copy-circuit", out=tmp_path / "missing", preset="ci",
                                overrides={"model": "no-such-code-model"})
    assert res.verdict["status"] == "not checked" and "not available" in res.verdict["reason"]


def test_ioi_offline_is_not_checked_with_a_reason(tmp_path):
    res = runner.run_experiment("gpt2-ioi-circuit", out=tmp_path / "ioi", preset="ci")
    assert res.verdict["status"] == "not checked" and "Hub" in res.verdict["reason"]


@pytest.mark.slow
def test_ioi_logic_on_gpt2_shape_model_with_real_tokenizer(gpt2_shape_dir, tmp_path):
    out = tmp_path / "ioi-shape"
    res = runner.run_experiment("gpt2-ioi-circuit", model=str(gpt2_shape_dir), out=out, preset="ci")
    m = _metrics(out)
    assert res.verdict["status"] in ("reproduced", "not reproduced") and len(res.verdict["checks"]) == 6
    assert len(m["direct_effect"]) == 12 and len(m["direct_effect"][0]) == 12
    assert all(v is None for v in m["into_name_movers_q"][9][:])  # senders must be before the name movers
    assert len(m["rankings"]["name movers"]) == 10
