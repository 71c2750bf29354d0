"""train-text-lm ci preset: trains a loadable model that learns, continues from saved weights, refuses mismatches."""
import json
import math

import pytest
import torch

import interp
from experiments.core import runner
from interp import InvalidInput


@pytest.mark.slow
def test_ci_preset_trains_a_loadable_model_that_learns(ci_text_lm):
    """The ci model is too small to beat the unigram baseline (the full run's check); it must still learn:
    held-out loss falls during training and ends well below the uniform log(V), and the verdict's check says
    exactly whether it beat the unigram baseline by > 1 nat."""
    outcome, out, model = ci_text_lm
    assert not outcome.skipped
    m = json.loads((out / "metrics.json").read_text())
    assert m["eval_loss"][-1] < m["eval_loss"][0]
    assert m["heldout_loss"] < math.log(512) - 0.5
    (check,) = m["verdict"]["checks"]
    assert "unigram" in check["claim"]
    assert check["passed"] == (m["heldout_loss"] < m["unigram_baseline_loss"] - 1)
    assert m["verdict"]["status"] == ("smoke test passed" if check["passed"] else "smoke test failed")
    cfg = json.loads((model / "config.json").read_text())
    assert cfg["bos_token_id"] is not None
    handle = interp.load_model(str(model))
    assert handle.info.n_layers == 2 and handle.info.d_vocab == 512


@pytest.mark.slow
def test_ci_preset_continues_from_a_saved_model(ci_text_lm, tmp_path):
    """init_from: the run starts from the saved weights (and tokenizer) and its card records where they came from."""
    from transformers import GPT2LMHeadModel

    from training.lm import load_initial_weights

    _, _, m1_dir = ci_text_lm
    m1 = GPT2LMHeadModel.from_pretrained(str(m1_dir))
    fresh = GPT2LMHeadModel(m1.config)
    info = load_initial_weights(fresh, m1_dir)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), m1.state_dict().values()))
    assert len(info.sha256) == 64 and info.how_made.startswith("- Command:")
    second = runner.run_experiment("train-text-lm", preset="ci", out=tmp_path / "b",
                                   overrides={"out_model": str(tmp_path / "m2"), "init_from": str(m1_dir),
                                              "seed": "1", "steps": "10"})
    card = (tmp_path / "m2" / "README.md").read_text()
    assert f"Continued from the weights in `{m1_dir}` (sha256 `{info.sha256}`)" in card
    assert second.metrics["init_from"]["sha256"] == info.sha256


def test_init_from_a_mismatched_model_is_a_clear_error(tmp_path, tiny_gpt2_dir):
    from transformers import GPT2Config, GPT2LMHeadModel

    from training.lm import load_initial_weights

    with pytest.raises(InvalidInput, match="does not match"):
        load_initial_weights(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50)),
                             tiny_gpt2_dir)
    with pytest.raises(InvalidInput, match="not a model directory"):
        load_initial_weights(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2)), tmp_path)
