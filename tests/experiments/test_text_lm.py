"""train-text-lm ci preset: trains, writes a loadable model directory, beats the unigram baseline."""
import json

import pytest
import torch

import interp
from experiments.core import runner
from interp import InvalidInput


@pytest.mark.slow
def test_ci_preset_trains_a_loadable_model(tmp_path):
    out = tmp_path / "r"
    res = runner.run_experiment("train-text-lm", out=out, preset="ci", out_model=str(tmp_path / "m"))
    assert not res.skipped
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["verdict"]["status"] in ("reproduced", "not reproduced")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["bos_token_id"] is not None
    handle = interp.load_model(str(tmp_path / "m"))
    assert handle.info.n_layers == 2 and handle.info.d_vocab == 512


@pytest.mark.slow
def test_ci_preset_continues_from_a_saved_model(tmp_path):
    """init_from: the run starts from the saved weights (and tokenizer) and its card records where they came from."""
    from transformers import GPT2LMHeadModel

    from training.lm import load_initial_weights

    first = runner.run_experiment("train-text-lm", preset="ci", out=tmp_path / "a",
                                  overrides={"out_model": str(tmp_path / "m1")})
    assert first.verdict["status"] in ("reproduced", "not reproduced")
    m1 = GPT2LMHeadModel.from_pretrained(str(tmp_path / "m1"))
    fresh = GPT2LMHeadModel(m1.config)
    info = load_initial_weights(fresh, tmp_path / "m1")
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), m1.state_dict().values()))
    assert len(info.sha256) == 64 and info.how_made.startswith("- Command:")
    second = runner.run_experiment("train-text-lm", preset="ci", out=tmp_path / "b",
                                   overrides={"out_model": str(tmp_path / "m2"), "init_from": str(tmp_path / "m1"),
                                              "seed": "1", "steps": "10"})
    card = (tmp_path / "m2" / "README.md").read_text()
    assert f"Continued from the weights in `{tmp_path / 'm1'}` (sha256 `{info.sha256}`)" in card
    assert second.metrics["init_from"]["sha256"] == info.sha256


def test_init_from_a_mismatched_model_is_a_clear_error(tmp_path, tiny_gpt2_dir):
    from transformers import GPT2Config, GPT2LMHeadModel

    from training.lm import load_initial_weights

    with pytest.raises(InvalidInput, match="does not match"):
        load_initial_weights(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50)),
                             tiny_gpt2_dir)
    with pytest.raises(InvalidInput, match="not a model directory"):
        load_initial_weights(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2)), tmp_path)
