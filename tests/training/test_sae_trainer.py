"""SAE trainer: learns known features, a stopped and resumed run equals an uninterrupted one, model streaming."""
from __future__ import annotations

import torch

from learned.sae import mmcs
from training.sae import SAETrainSettings, train_sae
from training.sae_data import ModelActivations, SyntheticFeatures, text_windows


def _data():
    return SyntheticFeatures(d=8, n_features=12, mean_active=2.0, batch_size=128, seed=1)


def test_resumed_run_equals_uninterrupted(tmp_path):
    s = SAETrainSettings(architecture="topk", d_sae=16, k=3, steps=8, checkpoint_every=2, log_every=2,
                         dead_tokens=256, lr=3e-3)
    whole = train_sae(_data(), s, log=None)
    calls = {"n": 0}

    def stop_after_5() -> bool:
        calls["n"] += 1
        return calls["n"] > 5

    first = train_sae(_data(), s, checkpoint=tmp_path / "c.pt", should_stop=stop_after_5, log=None)
    assert first.stopped
    resumed = train_sae(_data(), s, checkpoint=tmp_path / "c.pt", log=None)
    assert not resumed.stopped
    for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
        assert torch.equal(getattr(resumed.sae, name), getattr(whole.sae, name)), name
    assert resumed.history.tokens == whole.history.tokens == 8 * 128
    assert resumed.history.mse == whole.history.mse


def test_relu_sae_recovers_known_features():
    data = SyntheticFeatures(d=16, n_features=24, mean_active=2.0, batch_size=512, seed=0)
    s = SAETrainSettings(architecture="standard", d_sae=24, l1_coeff=2.0, steps=300, lr=3e-3, dead_tokens=5000)
    out = train_sae(data, s, log=None)
    assert mmcs(out.sae.W_dec.detach(), data.features) > 0.9


def test_model_activations_are_seeded_by_step(tiny_handle):
    tokens = torch.randint(1, tiny_handle.info.d_vocab, (2000,)).numpy()
    src = ModelActivations(tiny_handle, "blocks.0.hook_resid_post", text_windows(tokens, 3, 10), seed=4)
    a, b, c = src.batch(7), src.batch(7), src.batch(8)
    assert a.shape == (30, tiny_handle.info.d_model)
    assert torch.equal(a, b) and not torch.equal(a, c)
