"""Train a tuned lens (Belrose et al. 2023): fit one affine translator per layer by minimising KL(final || lens).

The lens itself, its evaluation and its files are ``probes.lens.tuned``; this is only the optimisation loop.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from interp import validate
from interp.model import Model
from interp.types import Progress
from learned.tuned_lens import TunedLens
from probes.lens.logit import batch_residual_stack
from probes.lens.tuned import check_lens_tokens


@dataclass
class TrainLog:
    """Loss (mean KL(final || tuned lens) over layers and tokens, nats) per step."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    tokens_seen: int = 0


def kl_from_logits(final_logp: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """KL(final || lens) per row, nats: final log-probs [rows, vocab] vs lens logits [rows, vocab] -> [rows]."""
    logp = logits.float().log_softmax(-1)
    return (final_logp.exp() * (final_logp - logp)).sum(-1)


def lens_loss(handle: Model, lens: TunedLens, stack: torch.Tensor) -> torch.Tensor:
    """Mean over translated layers and rows of KL(final || lens); ``stack`` [layers, rows, d_model]."""
    readout = handle.readout
    with torch.no_grad():
        final_logp = readout(stack[-1]).float().log_softmax(-1)  # [rows, vocab]
    losses = [kl_from_logits(final_logp, readout(lens(stack[i], i))).mean() for i in range(lens.n_layers)]
    return torch.stack(losses).mean()


def train_tuned_lens(handle: Model, tokens: torch.Tensor, *, steps: int = 250, batch_size: int = 8,
                     lr: float = 1e-3, weight_decay: float = 0.0, seed: int = 0,
                     progress: Progress | None = None,
                     lens: TunedLens | None = None) -> tuple[TunedLens, TrainLog]:
    """Fit one translator per layer on ``tokens`` [sequences, positions] by minimising KL(final || lens).

    Each step runs the (frozen) model on ``batch_size`` sequences drawn with a generator seeded by ``seed``,
    and takes one Adam step on the mean KL over layers and positions (the first position, which has no context,
    is left out); the learning rate decays linearly to zero. Deterministic on CPU for a given seed.
    """
    tokens = check_lens_tokens(handle, tokens)
    steps = validate.count(steps, "steps", low=1, high=10**8)
    batch_size = validate.count(batch_size, "batch_size", low=1, high=65_536)
    lr = validate.number(lr, "lr", low=0.0, high=10.0, low_open=True)
    weight_decay = validate.number(weight_decay, "weight_decay", low=0.0, high=100.0)
    seed = validate.seed_value(seed)
    lens = lens or TunedLens.for_model(handle)
    lens.to(handle.device).train()
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(lens.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / steps)
    log = TrainLog()
    t0 = time.perf_counter()
    params = list(lens.parameters())
    for step in range(steps):
        rows = torch.randint(0, tokens.shape[0], (min(batch_size, tokens.shape[0]),), generator=gen)
        stack = batch_residual_stack(handle, tokens[rows].to(handle.device))[:, :, 1:]  # [L, b, pos-1, d]
        loss = lens_loss(handle, lens, stack.flatten(1, 2))
        grads = torch.autograd.grad(loss, params)  # only the lens: the model's own .grad stays untouched
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
        sched.step()
        value = float(loss.detach())
        log.steps.append(step)
        log.loss.append(value)
        log.tokens_seen += stack.shape[1] * stack.shape[2]
        if progress is not None and (step % 10 == 0 or step == steps - 1):
            progress((step + 1) / steps, f"tuned lens step {step + 1}/{steps}, KL {value:.3f}")
    log.seconds = time.perf_counter() - t0
    lens.eval()
    lens.meta.update({"train_steps": steps, "train_batch_size": batch_size, "train_lr": lr, "train_seed": seed,
                      "train_tokens_seen": log.tokens_seen, "train_final_loss": log.loss[-1]})
    return lens, log


