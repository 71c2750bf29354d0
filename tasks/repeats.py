"""Token batches with known repeat structure: the standard inputs for induction and prefix-matching scores."""
from __future__ import annotations

import torch

from interp.errors import InvalidInput


def repeated_random_tokens(n_batch: int, seq_len: int, vocab: int, *, seed: int = 0, bos: int | None = 0,
                           low: int = 1) -> torch.Tensor:
    """[batch, (1 +) 2 * seq_len]: BOS (if given), then a random segment of ``seq_len`` tokens, then the same again.

    Tokens are drawn from [low, vocab), so BOS/special ids (below ``low``) never occur inside the segment.
    """
    gen = torch.Generator().manual_seed(seed)
    seg = torch.randint(low, vocab, (n_batch, seq_len), generator=gen)
    parts = [seg, seg]
    if bos is not None:
        parts.insert(0, torch.full((n_batch, 1), bos, dtype=torch.long))
    return torch.cat(parts, dim=1)


def tiled_random_segments(n_batch: int, total_len: int, vocab: int, *, seg_min: int = 8, seg_max: int = 64,
                          gen: torch.Generator | None = None, bos: int = 0, low: int = 1) -> torch.Tensor:
    """[batch, total_len]: BOS then a random segment (length in [seg_min, seg_max]) tiled to fill the row.

    Training data for the induction reproduction: predicting tokens after the first copy needs induction.
    """
    gen = gen or torch.Generator().manual_seed(0)
    out = torch.empty(n_batch, total_len, dtype=torch.long)
    out[:, 0] = bos
    lengths = torch.randint(seg_min, seg_max + 1, (n_batch,), generator=gen)
    for i, seg_len in enumerate(lengths.tolist()):
        seg = torch.randint(low, vocab, (seg_len,), generator=gen)
        reps = (total_len - 1 + seg_len - 1) // seg_len
        out[i, 1:] = seg.repeat(reps)[: total_len - 1]
    return out


def random_tokens_with_repeats(n_batch: int, seq_len: int, pool: int, vocab: int, *, seed: int = 0,
                               bos: int = 0, low: int = 1) -> torch.Tensor:
    """[batch, 1 + seq_len]: random tokens drawn from a small per-row pool, so tokens recur at random gaps
    (not as a copied block): the input for a general prefix-matching score."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n_batch):
        choices = torch.randperm(vocab - low, generator=gen)[:pool] + low
        rows.append(choices[torch.randint(0, pool, (seq_len,), generator=gen)])
    return torch.cat([torch.full((n_batch, 1), bos, dtype=torch.long), torch.stack(rows)], dim=1)


def noise_with_repeats(n_batch: int, total_len: int, vocab: int, *, share: float, span_len: int,
                       gen: torch.Generator | None = None, bos: int = 0, low: int = 1) -> torch.Tensor:
    """[batch, total_len]: BOS then uniform random tokens; each row, with probability ``share``, also holds one
    random span of ``span_len`` tokens written twice (second copy at a random later place, not overlapping).

    The dial from pure noise (``share`` 0: nothing in a row can be predicted from its context) to structured
    data (``share`` 1: every row has a repeat an induction head can copy), for the ICL-vs-structure sweep.
    """
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= share <= 1.0:
        raise InvalidInput(f"share={share!r} is invalid: expected a number in 0 .. 1.")
    if isinstance(span_len, bool) or not isinstance(span_len, int) or span_len < 1 or 2 * span_len > total_len - 1:
        raise InvalidInput(f"span_len={span_len!r} is invalid: two copies must fit in {total_len - 1} tokens.")
    if vocab <= low:
        raise InvalidInput(f"vocab={vocab} leaves no token ids at or above {low}.")
    gen = gen or torch.Generator().manual_seed(0)
    out = torch.randint(low, vocab, (n_batch, total_len), generator=gen)  # [batch, pos]
    out[:, 0] = bos
    structured = torch.rand(n_batch, generator=gen) < share  # [batch]
    free = total_len - 1 - 2 * span_len  # tokens of noise around and between the two copies
    for i in torch.nonzero(structured).flatten().tolist():
        # gaps before the first copy and between the copies: two sorted draws from [0, free]
        a, b = sorted(torch.randint(0, free + 1, (2,), generator=gen).tolist())
        first = 1 + a
        second = first + span_len + (b - a)
        out[i, second: second + span_len] = out[i, first: first + span_len]
    return out
