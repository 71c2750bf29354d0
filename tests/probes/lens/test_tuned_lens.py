"""Tuned lens: identity at init, training lowers KL, deterministic, frozen model, safe save/load with typed errors."""
import json
import shutil

import pytest
import torch

from interp import InvalidInput, load_model
from interp.backends.bridge import bridge_of
from interp.errors import LensUnavailable, ModelUnavailable
from learned.tuned_lens import TunedLens, default_lens_dir, find_tuned_lens, load_tuned_lens, save_tuned_lens
from probes.lens.logit import lens_from_stack, residual_stack
from probes.lens.tuned import evaluate_lens
from training.tuned_lens import train_tuned_lens

PROMPT = "def add(a, b):\n    return a + b\n"


@pytest.fixture(scope="module")
def windows(tiny_handle):
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, tiny_handle.info.d_vocab, (16, 24), generator=gen)  # [seq, pos]


@pytest.fixture(scope="module")
def trained(tiny_handle, windows):
    return train_tuned_lens(tiny_handle, windows, steps=25, batch_size=4, lr=1e-2, seed=0)


def test_untrained_lens_is_the_logit_lens(tiny_handle):
    stack = residual_stack(tiny_handle, PROMPT)
    lens = TunedLens.for_model(tiny_handle)
    assert lens.n_layers == tiny_handle.info.n_layers and lens.d_model == tiny_handle.info.d_model
    a = lens_from_stack(tiny_handle, stack)
    b = lens_from_stack(tiny_handle, stack, lens=lens)
    assert b.lens == "tuned"
    for key in ("target_prob", "kl_to_final", "entropy", "target_rank"):
        torch.testing.assert_close(getattr(a, key), getattr(b, key))


def test_training_lowers_kl_and_leaves_the_model_untouched(tiny_handle, windows, trained):
    lens, log = trained
    assert log.loss[-1] < log.loss[0] and len(log.steps) == 25 and log.tokens_seen == 25 * 4 * 23
    before = evaluate_lens(tiny_handle, windows[:8])
    after = evaluate_lens(tiny_handle, windows[:8], lens)
    assert all(t < b for t, b in zip(after.kl_to_final[:-1], before.kl_to_final[:-1]))
    assert after.kl_to_final[-1] == pytest.approx(0, abs=1e-4)
    assert all(p.grad is None for p in bridge_of(tiny_handle).parameters())


def test_training_is_deterministic(tiny_handle, windows, trained):
    again, log = train_tuned_lens(tiny_handle, windows, steps=25, batch_size=4, lr=1e-2, seed=0)
    assert log.loss == trained[1].loss
    for a, b in zip(again.state_dict().values(), trained[0].state_dict().values()):
        assert torch.equal(a, b)


def test_bad_training_inputs(tiny_handle):
    with pytest.raises(InvalidInput, match="token tensor"):
        train_tuned_lens(tiny_handle, torch.zeros(5, dtype=torch.long), steps=1)
    with pytest.raises(InvalidInput, match="exceed"):
        train_tuned_lens(tiny_handle, torch.zeros(2, 100, dtype=torch.long), steps=1)


@pytest.fixture
def model_copy(tiny_gpt2_dir, tmp_path):
    """A private copy of the tiny model directory, so saving a lens beside it touches no shared fixture."""
    return shutil.copytree(tiny_gpt2_dir, tmp_path / "model")


def test_save_find_load_roundtrip_beside_model(model_copy, trained, monkeypatch):
    handle = load_model(model_copy)
    assert default_lens_dir(handle) == model_copy / "tuned_lens"
    assert find_tuned_lens(handle) is None
    with pytest.raises(LensUnavailable, match="has no tuned lens.*\n.*python -m experiments run tuned-lens"):
        load_tuned_lens(handle)
    lens, _ = trained
    lens.meta["model_sha256"] = handle.info.sha256
    save_tuned_lens(lens, default_lens_dir(handle), {"note": "test"})
    assert find_tuned_lens(handle) == model_copy / "tuned_lens"
    assert sorted(p.name for p in (model_copy / "tuned_lens").iterdir()) == ["config.json", "params.safetensors"]
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load must never be used"))
    loaded = load_tuned_lens(handle)
    assert loaded.meta["note"] == "test"
    x = torch.randn(3, handle.info.d_model)
    for i in range(lens.n_layers + 1):
        torch.testing.assert_close(loaded(x, i), lens(x, i))
    save_tuned_lens(lens, default_lens_dir(handle))  # overwriting an existing lens works and leaves no staging
    assert [p.name for p in model_copy.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("damage, match", [
    (lambda d: (d / "config.json").write_text("{not json"), "not valid JSON"),
    (lambda d: (d / "config.json").write_text(json.dumps({"format": "other"})), "not a workbench tuned lens"),
    (lambda d: _edit_config(d, d_model=64), "d_model 64"),
    (lambda d: _edit_config(d, model_sha256="0" * 64), "trained for other weights"),
    (lambda d: (d / "params.safetensors").write_bytes((d / "params.safetensors").read_bytes()[:100]), "corrupt"),
    (lambda d: (d / "params.safetensors").unlink() or (d / "params.pt").write_bytes(b"pickle"), "no params"),
    (lambda d: _swap_weights(d), "do not fit"),
])
def test_corrupt_or_mismatched_lens_is_a_typed_error(model_copy, trained, damage, match):
    handle = load_model(model_copy)
    lens = trained[0]
    lens.meta["model_sha256"] = handle.info.sha256
    d = save_tuned_lens(lens, default_lens_dir(handle))
    damage(d)
    with pytest.raises(LensUnavailable, match=match) as err:
        load_tuned_lens(handle)
    assert isinstance(err.value, ModelUnavailable) and "tuned-lens" in str(err.value)


def _edit_config(d, **fields):
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(fields)
    (d / "config.json").write_text(json.dumps(cfg))


def _swap_weights(d):
    from safetensors.torch import save_file

    save_file({"translators.0.weight": torch.zeros(3, 3)}, str(d / "params.safetensors"))
