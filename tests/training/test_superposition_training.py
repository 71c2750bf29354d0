"""Batched toy-model trainer: equals a per-model loop, resumes exactly, samples the stated distribution."""
from __future__ import annotations

import torch

from training.superposition import (
    ToyModels,
    ToyTrainConfig,
    best_of_restarts,
    sample_features,
    step_generator,
    train_toy_models,
)

IMP = torch.tensor([[1.0, 0.9, 0.81, 0.73, 0.66], [1.0, 1.0, 1.0, 1.0, 1.0]])
DEN = torch.tensor([[1.0] * 5, [0.1] * 5])


def _one_model_loop(k: int, cfg: ToyTrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Model k trained alone: its own W [m, n], b [n] and AdamW, plain matmuls, its slice of each step's batch."""
    init = ToyModels(IMP, DEN, 2, seed=cfg.seed)
    W = torch.nn.Parameter(init.W.detach()[k].clone())
    b = torch.nn.Parameter(init.b.detach()[k].clone())
    opt = torch.optim.AdamW([W, b], lr=cfg.lr, weight_decay=cfg.weight_decay)
    for step in range(cfg.steps):
        x = sample_features(DEN, cfg.batch_size, step_generator(cfg.seed, step))[k]  # [batch, n]
        out = torch.relu(x @ W.T @ W + b)
        loss = (IMP[k] * (x - out) ** 2).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return W.detach(), b.detach()


def test_batched_trainer_equals_per_model_loop():
    cfg = ToyTrainConfig(steps=40, batch_size=64, seed=3, eval_samples=64)
    batched = train_toy_models(IMP, DEN, 2, cfg)
    for k in range(2):
        W, b = _one_model_loop(k, cfg)
        assert torch.allclose(batched.W[k], W, atol=1e-5), k
        assert torch.allclose(batched.b[k], b, atol=1e-5), k
    assert not torch.allclose(batched.W[0], ToyModels(IMP, DEN, 2, seed=3).W[0])  # it did train


def test_resume_equals_uninterrupted(tmp_path):
    cfg = ToyTrainConfig(steps=40, batch_size=32, log_every=10, checkpoint_every=10, lr_schedule="cosine",
                         eval_samples=64)
    straight = train_toy_models(IMP, DEN, 2, cfg)
    flag = {"stop": False}

    def cb(step, losses, model):
        flag["stop"] = step >= 20

    ck = tmp_path / "toy.pt"
    first = train_toy_models(IMP, DEN, 2, cfg, checkpoint=ck, callback=cb, should_stop=lambda: flag["stop"])
    assert first.stopped_early and ck.is_file()
    resumed = train_toy_models(IMP, DEN, 2, cfg, checkpoint=ck)
    assert resumed.resumed_from == 20
    assert torch.equal(resumed.W, straight.W) and torch.equal(resumed.b, straight.b)
    assert resumed.steps == straight.steps and resumed.loss_history == straight.loss_history


def test_sample_features_density_and_values():
    den = torch.tensor([[0.05, 0.5, 1.0]])
    x = sample_features(den, 200_000, step_generator(0, 0))[0]  # [batch, 3]
    on = x > 0
    assert torch.allclose(on.float().mean(0), den[0], atol=0.01)
    for j in range(3):
        vals = x[on[:, j], j]
        assert 0.48 < float(vals.mean()) < 0.52 and float(vals.max()) < 1.0


def test_best_of_restarts_picks_lowest_loss():
    vals = torch.arange(6.0)[:, None]  # two settings x three restarts
    best, idx = best_of_restarts(vals, torch.tensor([3.0, 1.0, 2.0, 0.5, 4.0, 0.7]), 3)
    assert idx.tolist() == [1, 0] and best[:, 0].tolist() == [1.0, 3.0]
