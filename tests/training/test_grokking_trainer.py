"""The grokking trainer: its fast last-position forward is the bundled model's, and resuming equals not stopping."""
from __future__ import annotations

import torch

from training.grokking import (
    GrokConfig,
    all_pairs,
    build_model,
    fast_logits,
    list_snapshots,
    load_snapshot,
    save_trained,
    split_indices,
    train_grokking,
)

TINY = dict(p=11, d_model=32, n_heads=4, d_mlp=64, log_every=5, snapshot_every=10, checkpoint_every=10)


def test_fast_forward_matches_saved_model_through_the_bridge(tmp_path):
    from interp.loading import load_model

    out = train_grokking(GrokConfig(epochs=20, **TINY), log=None)
    with torch.no_grad():  # give the frozen biases values so the test also covers them
        for name, prm in out.model.named_parameters():
            if name.endswith(".bias"):
                prm.normal_()
    save_trained(out, tmp_path / "m", "card")
    handle = load_model(tmp_path / "m")
    tokens, _ = all_pairs(11)
    with torch.no_grad():
        ours = fast_logits(out.model, tokens)  # [p*p, vocab]
        bridge = handle.logits(tokens)[:, -1]  # [p*p, vocab]
        native = out.model(tokens)[:, -1]
    assert torch.allclose(ours, native, atol=1e-5)
    assert torch.allclose(ours, bridge, atol=1e-5)
    assert handle.tokenizer("3 5 =")["input_ids"] == [3, 5, 11]
    assert handle.bos_token_id is None  # prompts are exactly [a, b, =]: no BOS is prepended


def test_resume_equals_uninterrupted(tmp_path):
    full = train_grokking(GrokConfig(epochs=30, **TINY), work_dir=tmp_path / "a", log=None)
    half = train_grokking(GrokConfig(epochs=20, **TINY), work_dir=tmp_path / "b", log=None)
    assert not half.stopped
    rest = train_grokking(GrokConfig(epochs=30, **TINY), work_dir=tmp_path / "b", log=None)
    assert rest.resumed_from == 20
    for (k, v), (_, w) in zip(full.model.state_dict().items(), rest.model.state_dict().items()):
        assert torch.equal(v, w), k
    assert rest.history.test_loss == full.history.test_loss
    assert list_snapshots(tmp_path / "b") == [0, 10, 20, 30]


def test_snapshot_holds_the_weights_in_half_precision(tmp_path):
    out = train_grokking(GrokConfig(epochs=10, **TINY), work_dir=tmp_path, log=None)
    snap = load_snapshot(tmp_path, 10, out.config)
    w, s = out.model.tok_embed.weight, snap.tok_embed.weight
    assert torch.allclose(w, s, atol=2e-3 * float(w.abs().max()))


def test_split_is_the_training_fraction_and_disjoint():
    c = GrokConfig(p=113)
    tr, te = split_indices(c)
    assert len(tr) == round(0.3 * 113 * 113) and len(set(tr.tolist()) | set(te.tolist())) == 113 * 113
    model, _ = build_model(c)
    assert all(not q.requires_grad for n, q in model.named_parameters() if n.endswith(".bias"))
