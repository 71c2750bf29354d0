"""Turn prompts into token tensors, refusing empty or over-long input with a clear message."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .errors import InvalidInput
from .handle import ModelHandle

Prompts = str | Sequence[str] | torch.Tensor


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


def tokenize(handle: ModelHandle, prompts: Prompts, *, prepend_bos: bool = True,
             truncate: bool = False) -> TokenBatch:
    """Tokenize one prompt, a list of prompts (right-padded) or pass through a token tensor.

    Over-long input (more tokens than the model's context) raises InvalidInput unless
    ``truncate=True``, which keeps the first ``n_ctx`` tokens.
    """
    n_ctx = handle.info.n_ctx
    if isinstance(prompts, torch.Tensor):
        tokens = prompts.long()
        if tokens.ndim == 1:
            tokens = tokens[None]
        if tokens.ndim != 2 or tokens.shape[1] == 0:
            raise InvalidInput(f"Token tensor must be [batch, pos] with pos >= 1, got shape {tuple(prompts.shape)}.")
        if int(tokens.min()) < 0 or int(tokens.max()) >= handle.info.d_vocab:
            raise InvalidInput(f"Token ids must lie in 0..{handle.info.d_vocab - 1} for {handle.info.name}.")
        rows = [tokens[i] for i in range(tokens.shape[0])]
    else:
        texts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not texts:
            raise InvalidInput("No prompts given.")
        rows = []
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise InvalidInput(f"Prompt {i} is a {type(text).__name__}, not text.")
            if not text.strip():
                raise InvalidInput("The prompt is empty." if len(texts) == 1 else f"Prompt {i} is empty.",
                                   "Type some text to analyse.")
            ids = handle.tokenizer(text, add_special_tokens=False)["input_ids"]
            if prepend_bos and handle.bos_token_id is not None:
                ids = [handle.bos_token_id] + ids
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
