"""Toy models of superposition (Elhage et al. 2022): many tiny ReLU-output models trained as ONE batched tensor.

Each model maps n sparse features through m < n hidden dimensions and back, x' = ReLU(W^T W x + b), and is
trained on importance-weighted squared error L = E_x sum_i I_i (x_i - x'_i)^2. Feature i is 0 with probability
S (the sparsity), else uniform in [0, 1]; this module speaks of the density p = 1 - S, as the paper's plots do.

A sweep (over sparsity, importance, or random restarts of the same setting) is one :class:`ToyModels` whose
weights are ``W [models, m, n]`` and ``b [models, n]``: forward and backward are two batched einsums over the
model axis, and every model has its own importance and density rows, so a grid of a thousand n=2 models is one
training run (the approach of the paper's Colab; there is no Python loop over models anywhere). The loss is summed
over models, so each model's gradient, and with Adam its whole trajectory, is exactly what it would be alone.

Batches are drawn from a generator seeded by (seed, step), so a run resumed from a checkpoint
(``training/checkpoint.py``; Adam moments are in it) equals an uninterrupted one.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from interp import validate
from interp.errors import InvalidInput
from training.checkpoint import resume_or_start, save_checkpoint

LrSchedule = Literal["constant", "cosine"]  # constant lr (the paper's Colab) or cosine decay to 0 (crisper optima)
#: (step, per-model training loss [models], the models) every log_every steps: progress bars, live redraws
StepCallback = Callable[[int, torch.Tensor, "ToyModels"], None]


@dataclass
class ToyTrainConfig:
    """Defaults follow the paper's Colab: AdamW at lr 1e-3, batch 1024, 10k steps."""

    steps: int = 10_000
    batch_size: int = 1024
    lr: float = 1e-3
    lr_schedule: LrSchedule = "constant"
    weight_decay: float = 0.0
    seed: int = 0
    log_every: int = 0  # 0: about 100 records over the run
    checkpoint_every: int = 2000
    eval_samples: int = 16_384  # final per-model loss is measured on this many fresh samples (seeded)

    def check(self) -> None:
        """Every field in range (before any allocation); InvalidInput naming the field."""
        validate.settings(self, {
            "steps": ("int", 1, 10**8), "batch_size": ("int", 1, 1 << 20), "lr": ("real>", 0.0, 10.0),
            "lr_schedule": ("choice", ("constant", "cosine")), "weight_decay": ("real", 0.0, 100.0),
            "seed": ("int", 0, validate.SEED_MAX), "log_every": ("int", 0, 10**9),
            "checkpoint_every": ("int", 1, 10**9), "eval_samples": ("int", 1, 10**8)}, "Toy training setting")


class ToyModels(nn.Module):
    """``n_models`` ReLU-output toy models x' = ReLU(W^T W x + b), one weight tensor for all of them.

    ``importance`` and ``density`` are ``[models, n_features]`` rows (buffers, so a checkpoint carries them);
    columns of ``W[k]`` (``[n_hidden, n_features]``) are model k's feature directions, as in the paper.
    """

    def __init__(self, importance: torch.Tensor, density: torch.Tensor, n_hidden: int, seed: int = 0) -> None:
        super().__init__()
        importance, density = torch.as_tensor(importance, dtype=torch.float32), torch.as_tensor(density,
                                                                                                 dtype=torch.float32)
        if importance.ndim != 2 or importance.shape != density.shape:
            raise InvalidInput(f"importance and density must both be [models, n_features], got "
                               f"{tuple(importance.shape)} and {tuple(density.shape)}.")
        if not ((density > 0) & (density <= 1)).all():
            raise InvalidInput("Feature densities (1 - sparsity) must lie in (0, 1].")
        if not (importance >= 0).all():
            raise InvalidInput("Feature importances must be >= 0.")
        if n_hidden < 1:
            raise InvalidInput(f"n_hidden must be >= 1, got {n_hidden}.")
        n_models, n_features = importance.shape
        self.register_buffer("importance", importance.clone())  # [models, n]
        self.register_buffer("density", density.clone())  # [models, n]
        gen = torch.Generator().manual_seed(int(seed))
        std = math.sqrt(2.0 / (n_hidden + n_features))  # Xavier-normal for each model's m x n matrix
        self.W = nn.Parameter(torch.randn(n_models, n_hidden, n_features, generator=gen) * std)  # [models, m, n]
        self.b = nn.Parameter(torch.zeros(n_models, n_features))  # [models, n]

    @property
    def n_models(self) -> int:
        return self.W.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [models, batch, n]`` -> ``x' [models, batch, n]``."""
        h = torch.einsum("kbn,kmn->kbm", x, self.W)  # [models, batch, m]
        return torch.relu(torch.einsum("kbm,kmn->kbn", h, self.W) + self.b[:, None, :])  # [models, batch, n]

    def losses(self, x: torch.Tensor) -> torch.Tensor:
        """Per-model importance-weighted squared error, mean over the batch: ``[models]``."""
        err = self.importance[:, None, :] * (x - self(x)) ** 2  # [models, batch, n]
        return err.sum(-1).mean(-1)


def step_generator(seed: int, step: int) -> torch.Generator:
    """The generator for one step's batch: a function of (seed, step) only, so resuming replays the same data."""
    return torch.Generator().manual_seed((int(seed) << 32) + int(step) % (1 << 32))


def sample_features(density: torch.Tensor, batch: int, generator: torch.Generator) -> torch.Tensor:
    """``[models, batch, n]`` synthetic features: 0 with probability 1 - density, else uniform in [0, 1).

    One uniform draw u per entry gives both: the feature is on when u < p, and then u / p is uniform in [0, 1).
    """
    p = density[:, None, :]  # [models, 1, n]
    u = torch.rand(density.shape[0], batch, density.shape[1], generator=generator)  # [models, batch, n]
    return torch.where(u < p, u / p, torch.zeros((), dtype=u.dtype))


def lr_factor(schedule: LrSchedule, step: int, steps: int) -> float:
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * step / steps))
    return 1.0


@dataclass
class ToyOutcome:
    """A trained sweep: the models, the per-model loss on a fixed evaluation set, and the training-loss history."""

    model: ToyModels
    eval_loss: torch.Tensor  # [models]
    steps: list[int] = field(default_factory=list)  # steps of the history records
    loss_history: list[list[float]] = field(default_factory=list)  # [records][models] training-batch loss
    resumed_from: int = 0
    stopped_early: bool = False

    @property
    def W(self) -> torch.Tensor:
        return self.model.W.detach()  # [models, m, n]

    @property
    def b(self) -> torch.Tensor:
        return self.model.b.detach()  # [models, n]


@torch.no_grad()
def evaluate_losses(model: ToyModels, n_samples: int, seed: int, chunk: int = 2048) -> torch.Tensor:
    """Per-model loss ``[models]`` on ``n_samples`` fresh samples (drawn from a generator of ``seed`` alone).

    Every model sees the same uniform draws (common random numbers), so restarts of one setting are compared on
    identical data and the lowest-loss restart is picked by its solution, not by luck of the sample."""
    gen = torch.Generator().manual_seed((int(seed) << 32) + (1 << 32) - 1)
    total = torch.zeros(model.n_models)
    done = 0
    while done < n_samples:
        size = min(chunk, n_samples - done)
        u = torch.rand(1, size, model.density.shape[1], generator=gen)  # [1, size, n], shared by all models
        p = model.density[:, None, :]  # [models, 1, n]
        x = torch.where(u < p, u / p, torch.zeros(()))  # [models, size, n]
        total += model.losses(x) * size
        done += size
    return total / n_samples


def train_toy_models(importance: torch.Tensor, density: torch.Tensor, n_hidden: int, config: ToyTrainConfig,
                     *, checkpoint: str | Path | None = None, callback: StepCallback | None = None,
                     should_stop: Callable[[], bool] | None = None) -> ToyOutcome:
    """Train ``len(importance)`` toy models at once (rows of ``importance``/``density`` are the models).

    ``checkpoint``: a file to resume from and save to every ``checkpoint_every`` steps (and at the end).
    ``callback(step, losses, model)`` runs every ``log_every`` steps; ``should_stop()`` ends the run at a step
    boundary.
    """
    config.check()
    model = ToyModels(importance, density, n_hidden, seed=config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    log_every = config.log_every or max(1, config.steps // 100)
    resumed = resume_or_start(checkpoint, model=model, optimizer=opt)
    steps: list[int] = list(resumed.extra.get("steps", []))
    history: list[list[float]] = list(resumed.extra.get("loss_history", []))
    step, stopped = resumed.step, False

    def save() -> None:
        if checkpoint is not None:
            save_checkpoint(checkpoint, step=step, model=model, optimizer=opt,
                            extra={"steps": steps, "loss_history": history})

    while step < config.steps:
        if should_stop is not None and should_stop():
            stopped = True
            break
        for group in opt.param_groups:
            group["lr"] = config.lr * lr_factor(config.lr_schedule, step, config.steps)
        x = sample_features(model.density, config.batch_size, step_generator(config.seed, step))  # [models, b, n]
        losses = model.losses(x)  # [models]
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()  # models do not interact: each gets exactly its own gradient
        opt.step()
        step += 1
        if step % log_every == 0 or step == config.steps:
            steps.append(step)
            history.append([round(float(v), 7) for v in losses.detach()])
            if callback is not None:
                callback(step, losses.detach(), model)
        if checkpoint is not None and step % config.checkpoint_every == 0 and step < config.steps:
            save()
    save()
    eval_loss = evaluate_losses(model, config.eval_samples, config.seed)
    return ToyOutcome(model, eval_loss, steps, history, resumed.step, stopped)


def best_of_restarts(values: torch.Tensor, eval_loss: torch.Tensor, restarts: int) -> tuple[torch.Tensor,
                                                                                             torch.Tensor]:
    """Models laid out as ``[settings * restarts, ...]`` (restarts innermost): per setting, the restart with the
    lowest loss. Returns (``values`` of the best restart ``[settings, ...]``, its index ``[settings]``); the
    paper fits each 2-D model several times and keeps the lowest-loss solution."""
    settings = values.shape[0] // restarts
    idx = eval_loss.reshape(settings, restarts).argmin(-1)  # [settings]
    rows = torch.arange(settings) * restarts + idx
    return values[rows], idx
