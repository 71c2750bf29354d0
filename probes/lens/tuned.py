"""Tuned-lens evaluation: per-layer KL to the final distribution, top-1 agreement and next-token loss of the logit
lens or a tuned lens (:mod:`learned.tuned_lens`) over held-out text."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from interp.errors import InvalidInput
from interp.model import Model
from learned.tuned_lens import TunedLens
from probes.lens.logit import batch_residual_stack, layer_labels, lens_readout


def check_lens_tokens(handle: Model, tokens: torch.Tensor) -> torch.Tensor:
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2 or tokens.shape[1] < 2 or tokens.shape[0] < 1:
        raise InvalidInput("Tuned-lens text must be a token tensor [sequences, positions] with >= 2 positions.")
    if tokens.shape[1] > handle.info.n_ctx:
        raise InvalidInput(f"Sequences of {tokens.shape[1]} tokens exceed {handle.info.name}'s context "
                           f"({handle.info.n_ctx}).")
    return tokens.long()


@dataclass
class LensEval:
    """Per-layer means over held-out tokens (first position of each sequence excluded), one lens."""

    lens: str
    layer_labels: list[str]
    kl_to_final: list[float]  # mean KL(final || layer), nats
    top1_agreement: list[float]  # fraction of tokens whose lens top-1 equals the final top-1
    next_token_prob: list[float]  # mean probability of the actual next token
    cross_entropy: list[float]  # mean -log p(next token), nats
    n_tokens: int


def evaluate_lens(handle: Model, tokens: torch.Tensor, lens: TunedLens | None = None, *,
                  batch_size: int = 8, name: str | None = None) -> LensEval:
    """Logit lens (``lens=None``) or tuned lens metrics per layer over ``tokens`` [sequences, positions]."""
    tokens = check_lens_tokens(handle, tokens)
    sums: dict[str, torch.Tensor] = {}
    n = 0
    for start in range(0, tokens.shape[0], batch_size):
        batch = tokens[start:start + batch_size].to(handle.device)
        stack = batch_residual_stack(handle, batch)[:, :, :-1]  # positions with a next token
        targets = batch[:, 1:]  # [b, pos-1]
        stack, targets = stack[:, :, 1:], targets[:, 1:]  # drop the first position (no context)
        m = lens_readout(handle, stack.flatten(1, 2), targets.reshape(-1), k=1, lens=lens)
        final_top1 = m["topk_ids"][-1:, :, 0]  # [1, rows]
        parts = {"kl_to_final": m["kl_to_final"], "top1_agreement": (m["topk_ids"][..., 0] == final_top1).float(),
                 "next_token_prob": m["target_prob"], "cross_entropy": -m["target_prob"].clamp_min(1e-30).log()}
        for key, value in parts.items():
            sums[key] = sums.get(key, 0) + value.double().sum(1)
        n += stack.shape[1] * stack.shape[2]
    means = {key: (value / n).tolist() for key, value in sums.items()}
    return LensEval(lens=name or ("logit" if lens is None else "tuned"),
                    layer_labels=layer_labels(handle.info.n_layers), n_tokens=n, **means)


