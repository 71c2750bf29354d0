"""Causal check of induction: ablate one head at a time and measure how much worse the model copies.

On BOS + A + A (A of length L at positions 1..L, its copy at L+1..2L):
- the ablation effect is the rise of the mean loss on the second copy *without its first token* (position L+1,
  which nothing earlier predicts), i.e. on tokens L+2..2L: what induction heads make predictable;
- the ICL score is second-copy loss minus first-copy loss (negative = the model uses the earlier copy), kept as a
  second measure. It can mislead for one head: zero-ablating attn-only-2l's induction head 1.2 raises the
  first-copy loss more than the second-copy loss, so its ICL effect is negative although copying got worse.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from interp import validate
from interp.errors import InvalidInput
from interp.model import Model
from interp.sites import Site
from interp.types import Head, Progress, all_heads

AblationMode = Literal["zero", "mean"]  # replace a head's output by zeros or by its mean over the batch


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
    """Second-copy loss (tokens L+2..2L) and ICL score with and without each head (NaN: head not ablated)."""
    baseline_icl: float
    ablated_icl: torch.Tensor  # [n_layers, n_heads] ICL score with the head ablated
    mode: AblationMode
    baseline_second: float = float("nan")  # mean loss on tokens L+2..2L, nothing ablated
    ablated_second: torch.Tensor | None = None  # [n_layers, n_heads] the same with the head ablated
    effect_se: torch.Tensor | None = None  # [n_layers, n_heads] standard error of `effect` over the rows
    icl_effect_se: torch.Tensor | None = None  # [n_layers, n_heads] standard error of `icl_effect` over the rows

    @property
    def effect(self) -> torch.Tensor:  # [n_layers, n_heads]; > 0: the head was helping the model copy
        """THE ablation effect: rise of the second-copy loss (without position L+1) when the head is ablated."""
        if self.ablated_second is None:
            return self.icl_effect
        return self.ablated_second - self.baseline_second

    @property
    def icl_effect(self) -> torch.Tensor:  # [n_layers, n_heads]; rise of the ICL score
        return self.ablated_icl - self.baseline_icl

    def ranking(self) -> list[Head]:
        """Ablated heads by effect, largest first."""
        e = self.effect
        order = torch.argsort(torch.nan_to_num(e.flatten(), nan=-float("inf")), descending=True, stable=True)
        n_heads = e.shape[1]
        return [Head(int(i) // n_heads, int(i) % n_heads) for i in order.tolist()
                if not bool(torch.isnan(e.flatten()[i]))]


def second_copy_loss(logits: torch.Tensor, tokens: torch.Tensor, seq_len: int) -> torch.Tensor:
    """Mean loss per row on the second copy's tokens L+2..2L (L+1 is unpredictable without its predecessor's
    earlier successor): [batch, pos, vocab] + [batch, 1 + 2L] -> [batch]."""
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    nll = -logp.gather(-1, tokens[:, 1:, None]).squeeze(-1)  # [batch, pos-1]; entry p predicts token p+1
    return nll[:, seq_len + 1 : 2 * seq_len].mean(-1)


def per_copy_icl(logits: torch.Tensor, tokens: torch.Tensor, seq_len: int) -> torch.Tensor:
    """ICL score of each row: [batch, pos, vocab] + [batch, 1 + 2L] -> [batch]."""
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    nll = -logp.gather(-1, tokens[:, 1:, None]).squeeze(-1)  # [batch, pos-1]
    return nll[:, seq_len : 2 * seq_len].mean(-1) - nll[:, 1:seq_len].mean(-1)


def ablate_heads(handle: Model, tokens: torch.Tensor, seq_len: int, *, mode: AblationMode = "mean",
                 heads: list[Head] | list[tuple[int, int]] | None = None, max_rows: int = 256,
                 progress: Progress | None = None) -> AblationResult:
    """Second-copy loss and ICL score with each head's output (hook_z) zeroed or mean-ablated.

    Batched per layer: the batch is replicated once per head of the layer and replica ``i`` has head ``i``
    ablated, so a layer costs one forward pass (split in chunks of at most ``max_rows`` rows). Mean
    ablation replaces the head's z by its mean over batch and positions on the clean run.
    ``progress(fraction, message)`` is called after each layer (the app's progress bar).
    """
    if mode not in ("zero", "mean"):
        raise InvalidInput(f"Ablation mode must be 'zero' or 'mean', got {mode!r}.")
    n_layers, n_heads = handle.info.n_layers, handle.info.n_heads
    if heads is None:
        wanted = all_heads(n_layers, n_heads)
    else:
        wanted = [handle.check_head(*_pair(x)) for x in validate.scalar_or_list(heads)]
        if not wanted:
            raise InvalidInput("No heads given to ablate.")
    tokens = validate.token_tensor(tokens, handle.info.d_vocab, handle.info.name).to(handle.device)
    seq_len = validate.count(seq_len, "seq_len", low=2)
    if tokens.shape[1] != 1 + 2 * seq_len:
        raise InvalidInput(f"Tokens of length {tokens.shape[1]} are not BOS + 2 x {seq_len} (seq_len).")
    max_rows = validate.count(max_rows, "max_rows", low=1)
    n_batch = tokens.shape[0]
    layers = sorted({lay for lay, _ in wanted})
    with torch.no_grad():
        run = handle.run(tokens, read=[Site("z", lay) for lay in layers])
        logits = run.logits
        base_icl_rows = per_copy_icl(logits, tokens, seq_len)  # [batch]
        base_second_rows = second_copy_loss(logits, tokens, seq_len)  # [batch]
        base, base_second = float(base_icl_rows.mean()), float(base_second_rows.mean())
        ablated = torch.full((n_layers, n_heads), float("nan"))
        ablated_second = torch.full((n_layers, n_heads), float("nan"))
        se_second = torch.full((n_layers, n_heads), float("nan"))
        se_icl = torch.full((n_layers, n_heads), float("nan"))
        for done, layer in enumerate(layers, start=1):
            head_list = [h for lay, h in wanted if lay == layer]
            means = run[Site("z", layer)].mean(dim=(0, 1))  # [head, d_head]
            per_chunk = max(1, max_rows // n_batch)
            for i in range(0, len(head_list), per_chunk):
                chunk = head_list[i : i + per_chunk]
                reps = tokens.repeat(len(chunk), 1)  # [len(chunk) * batch, pos]
                hook = _replica_hook(chunk, n_batch, means, mode)
                out = handle.run(reps, edit={Site("z", layer): hook}).logits
                icl_rows = per_copy_icl(out, reps, seq_len).view(len(chunk), n_batch)  # [len(chunk), batch]
                second_rows = second_copy_loss(out, reps, seq_len).view(len(chunk), n_batch)
                icl, second = icl_rows.mean(-1), second_rows.mean(-1)  # [len(chunk)]
                # paired over the same rows: the spread of each row's change says how sure the mean change is
                icl_se, second_se = _se(icl_rows - base_icl_rows), _se(second_rows - base_second_rows)
                for j, h in enumerate(chunk):
                    ablated[layer, h], ablated_second[layer, h] = float(icl[j]), float(second[j])
                    se_icl[layer, h], se_second[layer, h] = float(icl_se[j]), float(second_se[j])
            if progress is not None:
                progress(done / len(layers), f"ablated layer {done}/{len(layers)}")
    return AblationResult(base, ablated, mode, base_second, ablated_second, se_second, se_icl)


def _se(diffs: torch.Tensor) -> torch.Tensor:
    """``[heads, rows] -> [heads]``: standard error of the mean over rows (0 for a single row)."""
    n = diffs.shape[-1]
    return diffs.std(dim=-1) / n ** 0.5 if n > 1 else torch.zeros(diffs.shape[0])


def _pair(x) -> tuple:
    if isinstance(x, str):
        return tuple(Head.parse(x))
    try:
        a, b = x
    except (TypeError, ValueError):
        raise InvalidInput(f"{x!r} is not a head; give (layer, head) or 'L.H'.") from None
    return a, b


def _replica_hook(heads: list[int], n_batch: int, means: torch.Tensor, mode: AblationMode) -> Callable:
    def hook(z: torch.Tensor) -> torch.Tensor:  # z: [replicas * batch, pos, head, d_head]
        z = z.clone()
        for r, h in enumerate(heads):
            rows = slice(r * n_batch, (r + 1) * n_batch)
            z[rows, :, h] = 0.0 if mode == "zero" else means[h].to(z.dtype)
        return z
    return hook
