"""Transcoder trainer: learns a planted sparse map, a stopped and resumed run equals an uninterrupted one, and the
model source reads every layer's MLP input and output seeded by step; splicing an exact transcoder costs nothing."""
from __future__ import annotations

import pytest
import torch

from interp import InvalidInput, load_model
from learned.transcoder import Transcoder, TranscoderConfig, transcoder_from_mlp
from probes.graph.replacement import splice_ce
from training.sae_data import text_windows
from training.transcoder import MLPActivations, TranscoderTrainSettings, evaluate_transcoder, train_transcoder


class Planted:
    """x ~ N(0, 1) in [rows, L, d]; y = a fixed TopK transcoder of x (the map a trainer should find)."""

    def __init__(self, kind: str, rows: int = 256, seed: int = 0):
        self.n_layers, self.d_model, self.rows, self.seed = 2, 8, rows, seed  # seed: of the data, not the map
        self.truth = Transcoder(TranscoderConfig(kind, 2, 8, 16, k=3), seed=100)

    @torch.no_grad()
    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        x = torch.randn(self.rows, 2, 8, generator=gen)
        return x, self.truth(x)


@pytest.mark.parametrize("kind", ["per_layer", "cross_layer"])
def test_trainer_learns_a_planted_sparse_map(kind):
    s = TranscoderTrainSettings(kind=kind, d_transcoder=32, k=6, steps=250, lr=3e-3, dead_tokens=5000,
                                log_every=50)
    out = train_transcoder(Planted(kind), s, log=None)
    first, last = out.history.nmse[0], out.history.nmse[-1]
    assert max(last) < 0.25 and max(last) < 0.5 * min(first), (first, last)
    ev = evaluate_transcoder(out.transcoder, Planted(kind, seed=9), n_batches=2)  # raw units: scales folded in
    assert max(ev["nmse"]) < 0.3 and all(5.0 < v <= 6.0 for v in ev["l0"])  # TopK: at most k (ReLU of the top k)


def test_resumed_run_equals_uninterrupted(tmp_path):
    s = TranscoderTrainSettings(kind="cross_layer", d_transcoder=16, k=3, steps=8, checkpoint_every=2, log_every=2,
                                dead_tokens=300, lr=3e-3)
    whole = train_transcoder(Planted("cross_layer"), s, log=None)
    calls = {"n": 0}

    def stop_after_5() -> bool:
        calls["n"] += 1
        return calls["n"] > 5

    first = train_transcoder(Planted("cross_layer"), s, checkpoint=tmp_path / "c.pt", should_stop=stop_after_5,
                             log=None)
    assert first.stopped
    resumed = train_transcoder(Planted("cross_layer"), s, checkpoint=tmp_path / "c.pt", log=None)
    assert not resumed.stopped
    for (name, a), (_, b) in zip(resumed.transcoder.named_parameters(), whole.transcoder.named_parameters()):
        assert torch.equal(a, b), name
    assert resumed.history.nmse == whole.history.nmse and resumed.history.tokens == whole.history.tokens
    assert torch.equal(resumed.since_fired, whole.since_fired)


def test_model_source_reads_every_layer_seeded_by_step(tiny_handle):
    tokens = torch.randint(1, tiny_handle.info.d_vocab, (2000,)).numpy()
    src = MLPActivations(tiny_handle, text_windows(tokens, 3, 10), seed=4)
    (x, y), (x2, _), (x3, _) = src.batch(7), src.batch(7), src.batch(8)
    assert x.shape == y.shape == (30, tiny_handle.info.n_layers, tiny_handle.info.d_model)
    assert torch.equal(x, x2) and not torch.equal(x, x3)
    out = train_transcoder(src, TranscoderTrainSettings(d_transcoder=16, k=4, steps=3, scale_batches=1), log=None)
    assert out.transcoder.cfg.n_layers == tiny_handle.info.n_layers and out.history.tokens == 90


def test_attention_only_models_have_nothing_to_replace():
    with pytest.raises(InvalidInput, match="attention-only"):
        MLPActivations(load_model("attn-only-1l"), text_windows(torch.arange(100).numpy(), 1, 5))


def test_splicing_an_exact_transcoder_recovers_all_of_the_loss(relu_gpt2_dir):
    handle = load_model(relu_gpt2_dir)
    tc = transcoder_from_mlp(handle.weights(), handle.info)
    tokens = torch.randint(1, handle.info.d_vocab, (3, 12))
    out = splice_ce(handle, tc, tokens)
    assert out.ce_transcoder == pytest.approx(out.ce_clean, abs=1e-4) and out.kl < 1e-6
    assert out.ce_recovered == pytest.approx(1.0, abs=1e-3) and max(out.nmse) < 1e-6
    assert out.ce_zero != pytest.approx(out.ce_clean, abs=1e-3)  # zero-ablating the MLPs matters
    with torch.no_grad():
        tc.W_dec[1].mul_(0.0)
    worse = splice_ce(handle, tc, tokens)
    assert worse.ce_recovered < 0.999 and worse.nmse[1] > 0.5
