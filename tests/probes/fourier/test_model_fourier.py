"""model_fourier reads the grokking analysis through the model interface: it reproduces the bundled grokking-p113
run's recorded spectra, key frequencies and progress measures, finds a planted frequency, and refuses bad input."""
from __future__ import annotations

import json

import pytest
import torch

from interp import InvalidInput, load_model
from interp.loading import REPO_ROOT
from probes.fourier.modular import model_fourier, pair_tokens
from tests.builders import modular_gpt2_dir
from training.grokking import GrokConfig, all_pairs, split_indices


def test_pair_tokens_match_the_trainer():
    tokens, labels = pair_tokens(7)
    want_tokens, want_labels = all_pairs(7)
    assert torch.equal(tokens, want_tokens) and torch.equal(labels, want_labels)


def test_bundled_grokking_model_reproduces_its_training_log():
    log = json.loads((REPO_ROOT / "models" / "grokking-p113" / "training_log.json").read_text())
    model = load_model("grokking-p113")
    train_rows, _ = split_indices(GrokConfig())  # the bundled run's split (p 113, data seed 598)
    train = torch.zeros(113 * 113, dtype=torch.bool)
    train[train_rows] = True
    f = model_fourier(model, 113, masks={"train": train, "test": ~train})
    assert f.key == log["key_frequencies"] == [1, 2, 29, 44]
    assert {str(k): v for k, v in f.clusters.counts().items()} == log["neuron_counts"]
    torch.testing.assert_close(f.embed_norms, torch.tensor(log["final_embed_norms"]))
    torch.testing.assert_close(f.unembed_norms, torch.tensor(log["final_unembed_norms"]))
    last = {k: v[-1] for k, v in log["measures"].items()}  # the last analysed snapshot is the final model
    for part in ("train", "test"):
        got = f.losses[part]
        for value, key in ((got.loss, f"{part}_loss"), (got.restricted, f"restricted_{part}"),
                           (got.excluded, f"excluded_{part}")):
            assert value == pytest.approx(last[key], rel=1e-3), key
    for key in ("embed_gini", "embed_key_share", "logit_key_share"):
        assert getattr(f, key) == pytest.approx(last[key], rel=1e-5), key
    assert f.logits.shape == (113 * 113, 113) and f.acts.shape == (113 * 113, 512)
    assert float((f.logits.argmax(-1) == pair_tokens(113)[1]).float().mean()) == 1.0  # it does the task


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return load_model(modular_gpt2_dir(tmp_path_factory.mktemp("mod"), 11, freq=3))


def test_a_planted_frequency_is_found(planted):
    f = model_fourier(planted, 11, chunk=50)  # several runs, concatenated in pair order
    assert f.key == [3] and f.top90 == [3] and f.embed_key_share == pytest.approx(1.0, abs=1e-5)
    assert f.neuron_table.shape == (5, planted.info.d_mlp) and bool((f.clusters.freq == 3).all())
    whole = model_fourier(planted, 11)
    torch.testing.assert_close(f.acts, whole.acts)


@pytest.mark.parametrize("kwargs, match", [
    ({"p": 4}, "odd"), ({"p": 1}, "odd"), ({"p": 7.0}, "whole number"), ({"p": "7"}, "whole number"),
    ({"p": None}, "missing"), ({"p": True}, "boolean"), ({"p": 13}, "needs tokens 0..13"),
    ({"layer": 1}, "Layer 1 does not exist"), ({"layer": 0.5}, "whole number"),
    ({"threshold": float("nan")}, "finite"), ({"threshold": 1.5}, "<= 1"), ({"chunk": 0}, "chunk"),
    ({"masks": {}}, "at least one"), ({"masks": {"a": torch.ones(121)}}, "bool mask"),
    ({"masks": {"a": torch.zeros(121, dtype=torch.bool)}}, "non-empty"),
    ({"masks": {"a": torch.ones(120, dtype=torch.bool)}}, "bool mask"),
])
def test_bad_arguments_are_refused(planted, kwargs, match):
    kwargs = {"p": 11, **kwargs}
    with pytest.raises(InvalidInput, match=match):
        model_fourier(planted, **kwargs)


def test_a_model_without_mlp_neurons_is_refused():
    with pytest.raises(InvalidInput, match="attention-only"):
        model_fourier(load_model("attn-only-1l"), 7)
