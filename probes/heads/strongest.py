"""Which head to show first on a prompt: the one that moves the most information between positions.

A head's "sharpness" on a prompt is the attention each token puts on its single most-read *other earlier* token,
neither the first token (where resting heads park their attention, usually a BOS) nor itself, averaged over the
tokens that have such a token. Previous-token heads, induction heads and duplicate-token heads score high; heads
resting on the first token or attending to themselves score low. Pure: attention patterns in, a choice and its
reason out (the Attention page opens on it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from interp.errors import InvalidInput
from interp.types import Head


@dataclass(frozen=True)
class StrongestHead:
    head: Head
    score: float  # mean attention on the most-read other earlier token
    scores: np.ndarray  # [layer, head]
    why: str  # a sentence for the page


def sharpness(patterns: np.ndarray, skip_first: bool = True) -> np.ndarray:
    """``patterns [layer, head, query, key]`` -> ``[layer, head]``: mean over queries of the largest attention on a
    key that is earlier than the query and (``skip_first``) not position 0. NaN-free; 0 when no query has one."""
    p = np.asarray(patterns, dtype=np.float32)
    if p.ndim != 4 or p.shape[-1] != p.shape[-2]:
        raise InvalidInput(f"Attention patterns must be [layer, head, query, key], got shape {p.shape}.")
    n = p.shape[-1]
    first = 1 if skip_first else 0
    allowed = np.tril(np.ones((n, n), dtype=bool), k=-1)  # [query, key]: strictly earlier keys
    allowed[:, :first] = False
    rows = allowed.any(-1)  # queries that have such a key
    if not rows.any():
        return np.zeros(p.shape[:2], dtype=np.float32)
    best = np.where(allowed, p, 0.0).max(-1)  # [layer, head, query]
    return best[..., rows].mean(-1)


def strongest_head(patterns: np.ndarray, skip_first: bool = True,
                   first_token: str = "the first token") -> StrongestHead:
    """The sharpest head (ties: the earliest) with a sentence saying why; head 0.0 with the reason when the prompt
    is too short for any head to read another earlier token."""
    scores = sharpness(patterns, skip_first)
    n_layers, n_heads = scores.shape
    flat = int(np.argmax(scores))
    head = Head(flat // n_heads, flat % n_heads)
    score = float(scores.flat[flat])
    if score <= 0:
        why = ("The prompt is too short for any head to read an earlier token other than "
               f"{first_token}; showing head 0.0.")
        return StrongestHead(Head(0, 0), 0.0, scores, why)
    kind = _kind(np.asarray(patterns, dtype=np.float32)[head.layer, head.head], 1 if skip_first else 0)
    order = np.argsort(-scores, axis=None, kind="stable")
    runners = ", ".join(f"{Head(int(i) // n_heads, int(i) % n_heads)} ({scores.flat[int(i)]:.0%})"
                        for i in order[1:3])
    why = (f"Head {head} attends most sharply to other earlier tokens on this prompt: on average each token puts "
           f"{score:.0%} of its attention on one earlier token other than {first_token} and itself (next: "
           f"{runners}; the median head {float(np.median(scores)):.0%}). Heads that park their attention on "
           f"{first_token} or on the token itself move little information.{kind}")
    return StrongestHead(head, score, scores, why)


def _kind(pattern: np.ndarray, first: int) -> str:
    """A sentence naming a previous-token head when >= 80% of the queries read the token right before them most,
    else nothing."""
    n = pattern.shape[-1]
    allowed = np.tril(np.ones((n, n), dtype=bool), k=-1)
    allowed[:, :first] = False
    rows = np.nonzero(allowed.any(-1))[0]
    if rows.size == 0:
        return ""
    best = np.where(allowed, pattern, -1.0)[rows].argmax(-1)
    share = float((best == rows - 1).mean())
    return (f" {share:.0%} of its tokens read the token right before them most: a previous-token head."
            if share >= 0.8 else "")
