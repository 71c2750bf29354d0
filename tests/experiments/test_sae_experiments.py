"""sae-ground-truth and train-sae CI presets end to end (run() without the runner's PNG export)."""
from __future__ import annotations

import re

import pytest

import experiments.core.runner as runner
from experiments import make_config
from experiments.core.registry import RunResult, Verdict, get_experiment
from interp.errors import InvalidInput
from tests.experiments.inprocess import run_in_process

_run = run_in_process


@pytest.mark.slow
def test_ground_truth_ci_recovers_the_features(tmp_path):
    metrics, result = _run("sae-ground-truth", tmp_path)
    assert result.verdict.status == "reproduced", result.verdict.reason
    assert metrics["sizes"] == [16, 32, 64]
    for kind in ("standard", "topk"):
        at_n = metrics["results"][kind]["32"]["mmcs"]
        assert at_n >= 0.95 and metrics["results"][kind]["16"]["mmcs"] < at_n
    assert "mmcs_vs_size" in result.figures


def test_train_sae_ci_writes_a_loadable_saelens_folder(tiny_gpt2_dir, tmp_path):
    from learned.sae import SparseAutoencoder
    from learned.sae_files import read_sae_dir

    out = tmp_path / "sae"
    metrics, result = _run("train-sae", tmp_path, model=str(tiny_gpt2_dir),
                           overrides={"hook": "blocks.1.hook_resid_pre", "out": str(out)})
    check = result.verdict.checks[0]  # the verdict is the CE-recovered-at-L0 rule on the run's own numbers
    assert check.passed == (metrics["ce_loss_recovered"] >= 0.8 and metrics["l0"] <= 50)
    assert metrics["d_sae"] == 64 and metrics["l0"] <= 8 + 1e-6 and metrics["tokens_trained"] > 0
    assert 0 <= metrics["dead_fraction"] <= 1 and "ce_loss_recovered" in metrics
    cfg, weights = read_sae_dir(out)
    assert cfg["hook_name"] == "blocks.1.hook_resid_pre" and cfg["architecture"] == "topk" and cfg["k"] == 8
    sae = SparseAutoencoder.from_saelens(cfg, weights)
    assert sae.cfg.extra["tokens_trained"] == metrics["tokens_trained"]
    assert (out / "README.md").read_text().startswith("# SAE on blocks.1.hook_resid_pre")


def test_train_sae_refuses_an_out_inside_models_that_is_not_a_saes_folder():
    from experiments.core.settings import validate

    cls = get_experiment("train-sae")
    with pytest.raises(InvalidInput, match="saes"):
        validate(make_config(cls, overrides={"out": "models/stdlib-gpt2/oops"}))


def test_ground_truth_on_all_zero_data_is_not_checked_and_trains_nothing(tmp_path):
    metrics, result = _run("sae-ground-truth", tmp_path, overrides={"mean_active": "1e-9"})
    assert result.verdict.status == "not checked", result.verdict.reason
    assert re.search(r"all [\d,]+ values are zero", result.verdict.reason) and "results" not in metrics
    assert not list((tmp_path / "work").iterdir())  # no SAE was trained (no checkpoint)


def test_ground_truth_ci_shows_the_published_bar_beside_its_lowered_one(tmp_path, monkeypatch):
    from experiments.core.settings import changed_thresholds

    config = make_config(get_experiment("sae-ground-truth"), preset="ci")
    assert changed_thresholds(config) == [("target", 0.95, 0.99)]
    result = RunResult({}, Verdict.not_checked("x"), "")
    line = runner._summary(get_experiment("sae-ground-truth"), result, {}, "ci", [("target", 0.95, 0.99)])
    assert "target = 0.95 instead of the published 0.99" in line.split("## Verdict")[0]


def test_train_sae_on_a_tokenizer_that_yields_only_bos_is_not_checked(tmp_path):
    from tests.fuzz.model_dirs import bos_only_dir

    out = tmp_path / "sae"
    metrics, result = _run("train-sae", tmp_path, model=str(bos_only_dir()),
                           overrides={"hook": "blocks.1.hook_resid_pre", "out": str(out)})
    assert result.verdict.status == "not checked"
    assert "training tokens are not degenerate" in result.verdict.reason
    assert not out.exists()  # nothing trained, nothing written
