"""Turn prompts into token tensors, refusing empty or over-long input with a clear message."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from interp import validate
from interp.errors import InvalidInput

if TYPE_CHECKING:  # the model calls tokenize; importing it here at run time would be circular
    from interp.model import Model

Prompts = str | Sequence[str] | torch.Tensor | np.ndarray


@dataclass
class TokenBatch:
    """Right-padded tokens with their real lengths (padding never carries meaning)."""

    tokens: torch.Tensor  # [batch, pos] int64
    lengths: torch.Tensor  # [batch] number of real tokens per row
    truncated: bool = False

    @property
    def attention_mask(self) -> torch.Tensor:  # [batch, pos] 1 for real tokens
        pos = torch.arange(self.tokens.shape[1], device=self.tokens.device)
        return (pos[None, :] < self.lengths[:, None]).long()

    @property
    def padded(self) -> bool:
        return bool((self.lengths != self.tokens.shape[1]).any())


def check_batch(batch: TokenBatch, d_vocab: int, n_ctx: int, model: str = "the model") -> TokenBatch:
    """``batch`` if its tokens are valid ids (see :func:`interp.validate.token_tensor`) and its lengths are one
    whole number per row in 1..width; InvalidInput otherwise (a length past the width would read padding as
    real tokens or index past the row)."""
    tokens = validate.token_tensor(batch.tokens, d_vocab, model)
    if tokens.shape[1] > n_ctx:
        raise InvalidInput(f"The batch is {tokens.shape[1]} tokens wide; {model} reads at most {n_ctx}.")
    lengths = batch.lengths
    if not isinstance(lengths, torch.Tensor) or lengths.dtype.is_floating_point or lengths.dtype == torch.bool \
            or lengths.dtype.is_complex or lengths.shape != (tokens.shape[0],):
        raise InvalidInput(f"TokenBatch.lengths must be one whole number per row ([{tokens.shape[0]}]), got "
                           f"{getattr(lengths, 'dtype', type(lengths).__name__)} of shape "
                           f"{tuple(getattr(lengths, 'shape', ()))}.")
    if int(lengths.min()) < 1 or int(lengths.max()) > tokens.shape[1]:
        raise InvalidInput(f"TokenBatch.lengths must lie in 1..{tokens.shape[1]} (the batch's width); got "
                           f"{int(lengths.min())}..{int(lengths.max())}.")
    if tokens is batch.tokens:
        return batch
    return TokenBatch(tokens, lengths.to(tokens.device).long(), batch.truncated)


def tokenize(handle: Model, prompts: Prompts, *, prepend_bos: bool = True,
             truncate: bool = False) -> TokenBatch:
    """Tokenize one prompt, a list of prompts (right-padded) or pass through a token tensor.

    Over-long input (more tokens than the model's context) raises InvalidInput unless
    ``truncate=True``, which keeps the first ``n_ctx`` tokens.
    """
    n_ctx = handle.info.n_ctx
    if isinstance(prompts, (torch.Tensor, np.ndarray)):
        tokens = validate.token_tensor(prompts, handle.info.d_vocab, handle.info.name)  # [batch, pos]
        rows = [tokens[i] for i in range(tokens.shape[0])]
    else:
        texts = validate.prompt_list(prompts)
        rows = []
        for text in texts:
            ids = handle.tokenizer(text, add_special_tokens=False)["input_ids"]
            if prepend_bos and handle.bos_token_id is not None:
                ids = [handle.bos_token_id] + ids
            if not ids:
                raise InvalidInput(f"The prompt {text[:40]!r} gives no tokens.", "Type some text to analyse.")
            rows.append(torch.tensor(ids, dtype=torch.long))
    longest = max(len(r) for r in rows)
    truncated = longest > n_ctx
    if truncated and not truncate:
        raise InvalidInput(
            f"The prompt is {longest} tokens long, but {handle.info.name} reads at most {n_ctx} tokens.",
            "Shorten it, or ask for truncation (keeps the first tokens).",
        )
    rows = [r[:n_ctx] for r in rows]
    lengths = torch.tensor([len(r) for r in rows])
    pad = handle.tokenizer.pad_token_id if handle.tokenizer.pad_token_id is not None else (handle.bos_token_id or 0)
    tokens = torch.full((len(rows), int(lengths.max())), pad, dtype=torch.long)  # [batch, pos]
    for i, r in enumerate(rows):
        tokens[i, : len(r)] = r
    return TokenBatch(tokens=tokens.to(handle.device), lengths=lengths.to(handle.device), truncated=truncated)
