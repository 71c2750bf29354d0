"""logit-lens and tuned-lens experiments end to end on the tiny GPT-2: files, verdicts, saved lens, determinism."""
import json
import shutil

import numpy as np
import pytest

import experiments.core.runner as runner
from experiments import make_config
from experiments.core.registry import get_experiment
from experiments.reproductions.logit_lens import LogitLens, convergence_checks
from experiments.reproductions.tuned_lens import TunedLensExperiment, per_layer_checks
from interp import load_model
from learned.tuned_lens import find_tuned_lens, load_tuned_lens
from probes.lens.tuned import LensEval


def _run_direct(name, model, tmp_path, preset=None, overrides=None):
    """The experiment's run() without the runner's file writing (no PNG export): metrics as the runner stores them."""
    cls = get_experiment(name)
    config = make_config(cls, preset=preset, overrides=overrides, model=str(model))
    (tmp_path / "direct").mkdir(exist_ok=True)
    ctx = runner.RunContext(experiment=name, seed=config.seed, device="cpu", out_dir=tmp_path / "direct",
                            cache_root=tmp_path / "cache",
                            work_dir=tmp_path / "direct")
    runner.seed_everything(config.seed)
    result = cls().run(config, ctx)
    return json.loads(json.dumps(runner.to_jsonable(result.metrics))), result


def _metrics(out):
    for f in ("config.json", "metrics.json", "summary.md", "metadata.json"):
        assert (out / f).is_file(), f
    return json.loads((out / "metrics.json").read_text())


def test_both_registered_with_findings_and_ci_presets():
    for name, cls in (("logit-lens", LogitLens), ("tuned-lens", TunedLensExperiment)):
        assert get_experiment(name) is cls and "ci" in cls.presets and cls.finding.source
        assert make_config(cls, preset="ci").seed == 0


def test_logit_lens_ci_on_tiny_model_is_complete_and_deterministic(tiny_gpt2_dir, tmp_path):
    out = tmp_path / "ll"
    res = runner.run_experiment("logit-lens", model=str(tiny_gpt2_dir), out=out, preset="ci")
    m = _metrics(out)
    assert m["layers"] == ["resid_pre 0", "resid_pre 1", "resid_post 1"] and len(m["kl_to_final"]) == 3
    assert m["kl_to_final"][-1] == pytest.approx(0, abs=1e-4)
    assert m["n_tokens"] == 8 * 62  # 64-token windows without the first and the last position
    spearman, closer = res.verdict["checks"]
    assert "Spearman" in spearman["claim"]
    kl = m["kl_to_final"][:-1]  # resid_pre 0..n-1 (the last entry is the output itself)
    assert closer["passed"] == (kl[-1] < kl[0])
    rho = np.corrcoef(np.argsort(np.argsort(kl)), np.arange(len(kl)))[0, 1]
    assert spearman["passed"] == (round(rho, 9) <= -0.8)
    assert m["prompts"][0]["tokens"] and len(m["prompts"][0]["top1"]) == 3
    assert {"grid_prob_0", "grid_kl_0", "kl_by_layer"} <= {p.stem for p in (out / "figures").glob("*.html")}
    assert "Test applied" in (out / "summary.md").read_text()
    m2, _ = _run_direct("logit-lens", tiny_gpt2_dir, tmp_path, preset="ci")
    assert m2["kl_to_final"] == m["kl_to_final"] and m2["prompts"] == m["prompts"]


def test_tuned_lens_ci_saves_beside_the_model_and_is_deterministic(tiny_gpt2_dir, tmp_path):
    model = shutil.copytree(tiny_gpt2_dir, tmp_path / "model")
    out = tmp_path / "tl"
    res = runner.run_experiment("tuned-lens", model=str(model), out=out, preset="ci",
                                overrides={"lens_dir": "model"})  # asked for: beside the model
    m = _metrics(out)
    assert len(res.verdict["checks"]) == 2  # one per translated layer of the 2-layer model
    assert all("tuned lens KL below logit lens KL" in c["claim"] for c in res.verdict["checks"])
    assert len(m["kl_logit"]) == len(m["kl_tuned"]) == 3 and len(m["train_loss"]) == 30
    assert m["lens_saved_to"] == str(model / "tuned_lens")
    handle = load_model(model)
    assert find_tuned_lens(handle) == model / "tuned_lens"
    lens = load_tuned_lens(handle)
    assert lens.meta["heldout_kl_tuned"] == m["kl_tuned"] and lens.meta["model_sha256"] == handle.info.sha256
    assert (out / "tuned_lens" / "params.safetensors").is_file()
    figures = {p.stem for p in (out / "figures").glob("*.html")}
    assert {"kl_by_layer", "training_loss", "grid_logit", "grid_tuned"} <= figures
    (model / "tuned_lens" / "config.json").unlink()
    m2, _ = _run_direct("tuned-lens", model, tmp_path, preset="ci", overrides={"lens_dir": "none"})
    assert m2["kl_tuned"] == m["kl_tuned"] and m2["train_loss"] == m["train_loss"]
    assert not (model / "tuned_lens" / "config.json").exists()
    assert m2["lens_saved_to"].startswith("results folder only")


@pytest.mark.parametrize("name", ["logit-lens", "tuned-lens"])
def test_default_presets_run_on_tiny_model(tiny_gpt2_dir, tmp_path, name):
    """The full (default) configs, shrunk only in text size and steps so the test stays fast."""
    small = {"logit-lens": {"n_windows": "4", "max_chars": "200000"},
             "tuned-lens": {"steps": "5", "train_windows": "16", "eval_windows": "4", "max_chars": "200000",
                            "lens_dir": str(tmp_path / "lens")}}[name]
    assert make_config(get_experiment(name), overrides=small).seq_len == 128
    metrics, result = _run_direct(name, tiny_gpt2_dir, tmp_path, overrides=small)
    assert result.verdict.checks and all(c.passed is not None for c in result.verdict.checks)
    assert metrics["seq_len"] == 64  # the default 128 clipped to the tiny model's context


def _eval(kl):
    n = len(kl)
    return LensEval("logit", [f"l{i}" for i in range(n)], kl, [0.0] * n, [0.0] * n, [0.0] * n, 10)


def test_verdict_tests_as_stated():
    assert all(c.passed for c in convergence_checks(_eval([9.0, 3.0, 1.0, 0.5, 0.0])))
    one_swap = convergence_checks(_eval([9.0, 1.0, 3.0, 0.5, 0.0]))  # rho = -0.8: still passes
    assert one_swap[0].passed and "falls at 2 of 3" in one_swap[0].detail
    rising = convergence_checks(_eval([0.5, 1.0, 3.0, 9.0, 0.0]))
    assert not rising[0].passed and not rising[1].passed
    checks = per_layer_checks(_eval([9.0, 3.0, 0.0]), _eval([2.0, 3.5, 0.0]))
    assert [c.passed for c in checks] == [True, False]
