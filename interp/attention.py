"""Attention patterns of a prompt and per-token "attends to / attended from" scores (the explorer's data)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from interp import validate
from interp.errors import InvalidInput
from interp.model import Model


@dataclass
class PromptAttention:
    """Every layer's attention pattern for one prompt, stored compactly (float16) for fast re-rendering."""

    tokens: list[str]  # one readable string per position
    token_ids: list[int]
    patterns: np.ndarray  # [layer, head, query_pos, key_pos] float16

    @property
    def n_layers(self) -> int:
        return self.patterns.shape[0]

    @property
    def n_heads(self) -> int:
        return self.patterns.shape[1]

    def head(self, layer: int, head: int) -> np.ndarray:  # [query_pos, key_pos] float32
        """One head's pattern; InvalidInput names the valid range when L.H does not exist (or is not a pair of
        whole numbers: 1.5, None and "1" are refused, never rounded)."""
        layer, head = validate.head_index(layer, head, self.n_layers, self.n_heads, "the prompt's attention")
        return self.patterns[layer, head].astype(np.float32)


def prompt_attention(handle: Model, prompt: str, *, prepend_bos: bool = True) -> PromptAttention:
    """One forward pass capturing only the attention patterns of every layer (it stops after the last one)."""
    patterns = handle.sites("pattern")
    cap = handle.run(prompt, read=patterns, stop_after=patterns[-1], prepend_bos=prepend_bos)
    stacked = torch.stack([cap[s][0] for s in patterns])  # [layer, head, q, k]
    ids = cap.tokens[0].tolist()
    return PromptAttention(tokens=handle.to_str_tokens(cap.tokens[0]), token_ids=ids,
                           patterns=stacked.float().cpu().numpy().astype(np.float16))


def token_scores(pattern: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray]:
    """For position ``index``: what it attends to (row, [key_pos]) and what attends to it (column, [query_pos])."""
    pattern = np.asarray(pattern, dtype=np.float32)
    if pattern.ndim != 2 or pattern.shape[0] != pattern.shape[1] or pattern.shape[0] < 1:
        raise InvalidInput(f"An attention pattern is a square [query, key] array; got shape {pattern.shape}.")
    n = pattern.shape[0]
    i = validate.integer(index, "Token position")
    if not 0 <= i < n:
        raise InvalidInput(f"Token position {i} does not exist: the prompt has {n} tokens (0..{n - 1}).")
    return pattern[i, :].copy(), pattern[:, i].copy()


def downsample(pattern: np.ndarray, max_size: int) -> tuple[np.ndarray, int]:
    """Block-max pool a [query, key] pattern so neither side exceeds ``max_size``; returns (pooled, block)."""
    pattern = np.asarray(pattern, dtype=np.float32)
    n_q, n_k = pattern.shape
    block = max(1, int(np.ceil(max(n_q, n_k) / max_size)))
    if block == 1:
        return pattern, 1
    pq, pk = -n_q % block, -n_k % block
    padded = np.pad(pattern, ((0, pq), (0, pk)))
    pooled = padded.reshape(padded.shape[0] // block, block, padded.shape[1] // block, block).max(axis=(1, 3))
    return pooled, block


