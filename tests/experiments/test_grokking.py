"""grokking experiment: the ci preset end to end (checks, metrics, figures), the model written only on request."""
from __future__ import annotations

import json

import pytest

from experiments.core import runner
from interp.errors import InvalidInput


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("grok") / "r"
    model = out.parent / "grokking-p23"
    res = runner.run_experiment("grokking", preset="ci", out=out, overrides={"out_model": str(model)})
    return res, out, model


def test_ci_preset_reports_five_checks_and_the_fourier_measures(ci_run):
    res, out, _ = ci_run
    checks = res.verdict["checks"]
    assert [c["claim"][:3] for c in checks] == ["(a)", "(b)", "(c)", "(d)", "(e)"]
    m = json.loads((out / "metrics.json").read_text())
    assert m["epochs"] == 800 and 0.0 <= m["logit_key_share"] <= 1.0
    assert checks[4]["passed"] == (m["logit_key_share"] >= 0.9)
    assert checks[1]["passed"] == (0 < m["n_key_frequencies"] <= 8 and m["embed_key_share"] >= 0.9)
    assert all(1 <= k <= 11 for k in m["key_frequencies"])
    figs = {p.stem for p in (out / "figures").glob("*.html")}
    assert {"curves", "embedding_spectrum", "progress_measures", "weight_norm", "neuron_clusters"} <= figs
    summary = (out / "summary.md").read_text()
    assert "| quantity | published | ours |" in summary


def test_model_written_only_when_grokked_and_loads_with_number_prompts(ci_run):
    import torch

    from interp import load_model

    res, _, model = ci_run
    m = res.metrics
    assert (model / "config.json").is_file() == (m["epoch_grokked"] is not None)
    if m["epoch_grokked"] is None:
        pytest.skip("the ci run did not grok on this machine")
    log = json.loads((model / "training_log.json").read_text())
    assert log["key_frequencies"] == m["key_frequencies"] and len(log["epochs"]) == len(log["test_acc"])
    assert "measures" in log and log["measures"]["epochs"][-1] == 800
    card = (model / "README.md").read_text()
    assert "out_model=models/grokking-p23" in card and "Key frequencies" in card
    handle = load_model(model)
    ids = handle.tokenizer("3 5 =")["input_ids"]
    assert ids == [3, 5, 23]
    with torch.no_grad():
        pred = int(handle.logits(torch.tensor([ids]))[0, -1, :23].argmax())
    assert pred == 8


def test_even_p_and_bad_analysis_interval_are_refused(tmp_path):
    with pytest.raises(InvalidInput, match="odd"):
        runner.run_experiment("grokking", preset="ci", out=tmp_path / "x", overrides={"p": "24"})
    with pytest.raises(InvalidInput, match="multiple"):
        runner.run_experiment("grokking", preset="ci", out=tmp_path / "y", overrides={"analyse_every": "150"})
