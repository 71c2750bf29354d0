"""Causal check of induction: ablate one head at a time and measure the in-context-learning (ICL) effect.

ICL score on BOS + A + A: mean loss on the second copy minus mean loss on the first copy (negative = the
model uses the earlier copy). A head whose ablation raises the ICL score toward 0 carries that effect.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from interp.errors import InvalidInput
from interp.handle import ModelHandle
from interp.types import AblationMode


def copy_losses(logits: torch.Tensor, tokens: torch.Tensor, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean next-token loss on the first copy (tokens 2..L; token 1 is unpredictable) and the second copy
    (tokens L+1..2L). ``logits`` [batch, pos, vocab], ``tokens`` [batch, 1 + 2L] -> two scalars."""
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    nll = -logp.gather(-1, tokens[:, 1:, None]).squeeze(-1)  # [batch, pos-1]; entry p predicts token p+1
    L = seq_len
    return nll[:, 1:L].mean(), nll[:, L : 2 * L].mean()


def icl_score(logits: torch.Tensor, tokens: torch.Tensor, seq_len: int) -> float:
    first, second = copy_losses(logits, tokens, seq_len)
    return float(second - first)


@dataclass
class AblationResult:
    """ICL score (second-copy loss minus first-copy loss) with and without each head."""

    baseline_icl: float
    ablated_icl: torch.Tensor  # [n_layers, n_heads]; NaN for heads not ablated
    mode: AblationMode

    @property
    def effect(self) -> torch.Tensor:  # [n_layers, n_heads]; > 0: the head was helping in-context learning
        return self.ablated_icl - self.baseline_icl


def per_copy_icl(logits: torch.Tensor, tokens: torch.Tensor, seq_len: int) -> torch.Tensor:
    """ICL score of each row: [batch, pos, vocab] + [batch, 1 + 2L] -> [batch]."""
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    nll = -logp.gather(-1, tokens[:, 1:, None]).squeeze(-1)  # [batch, pos-1]
    return nll[:, seq_len : 2 * seq_len].mean(-1) - nll[:, 1:seq_len].mean(-1)


def ablate_heads(handle: ModelHandle, tokens: torch.Tensor, seq_len: int, *, mode: AblationMode = "mean",
                 heads: list[tuple[int, int]] | None = None, max_rows: int = 256,
                 progress: Callable[[int, int], None] | None = None) -> AblationResult:
    """ICL score with each head's output (hook_z) zeroed or mean-ablated.

    Batched per layer: the batch is replicated once per head of the layer and replica ``i`` has head ``i``
    ablated, so a layer costs one forward pass (split in chunks of at most ``max_rows`` rows). Mean
    ablation replaces the head's z by its mean over batch and positions on the clean run.
    ``progress(layers_done, n_layers_ablated)`` is called after each layer (the app's progress bar).
    """
    if mode not in ("zero", "mean"):
        raise InvalidInput(f"Ablation mode must be 'zero' or 'mean', got {mode!r}.")
    n_layers, n_heads = handle.info.n_layers, handle.info.n_heads
    wanted = heads or [(l, h) for l in range(n_layers) for h in range(n_heads)]
    for l, h in wanted:
        handle.check_head(l, h)
    tokens = tokens.to(handle.device)
    n_batch = tokens.shape[0]
    layers = sorted({l for l, _ in wanted})
    z_names = [f"blocks.{l}.attn.hook_z" for l in layers]
    with torch.no_grad():
        logits, cache = handle.bridge.run_with_cache(tokens, names_filter=z_names)
        base = float(per_copy_icl(logits, tokens, seq_len).mean())
        ablated = torch.full((n_layers, n_heads), float("nan"))
        for done, layer in enumerate(layers, start=1):
            head_list = [h for l, h in wanted if l == layer]
            means = cache[f"blocks.{layer}.attn.hook_z"].mean(dim=(0, 1))  # [head, d_head]
            per_chunk = max(1, max_rows // n_batch)
            for i in range(0, len(head_list), per_chunk):
                chunk = head_list[i : i + per_chunk]
                reps = tokens.repeat(len(chunk), 1)  # [len(chunk) * batch, pos]
                hook = _replica_hook(chunk, n_batch, means, mode)
                out = handle.bridge.run_with_hooks(reps, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", hook)])
                icl = per_copy_icl(out, reps, seq_len).view(len(chunk), n_batch).mean(-1)  # [len(chunk)]
                for h, v in zip(chunk, icl.tolist()):
                    ablated[layer, h] = v
            if progress is not None:
                progress(done, len(layers))
    return AblationResult(base, ablated, mode)


def _replica_hook(heads: list[int], n_batch: int, means: torch.Tensor, mode: AblationMode) -> Callable:
    def hook(z: torch.Tensor, hook=None) -> torch.Tensor:  # z: [replicas * batch, pos, head, d_head]
        z = z.clone()
        for r, h in enumerate(heads):
            rows = slice(r * n_batch, (r + 1) * n_batch)
            z[rows, :, h] = 0.0 if mode == "zero" else means[h].to(z.dtype)
        return z
    return hook
