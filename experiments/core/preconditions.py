"""What must hold before a finding can be checked, as :class:`~experiments.core.registry.Check` s.

An analysis of *how* a model does a task means nothing when the model does not do it (normalised patching
effects over a negative clean-corrupted gap, a circuit "found" in a model at 0% accuracy), and a verdict computed
on degenerate data (every token ``<bos>``, every activation zero, NaN) is an artefact. Experiments build their
preconditions with these functions and pass them to ``Verdict.from_checks(..., preconditions=...)``: any that
fails makes the verdict "not checked: <why>". A statistical test that cannot reach significance with this many
samples is said the same way (:func:`significance_reachable`).
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch

from experiments.core.registry import Check
from probes.stats import min_permutation_p, min_samples_for, significance_reachable

__all__ = ["data_not_degenerate", "does_the_task", "min_permutation_p", "min_samples_for", "pairs_differ",
           "significance_reachable", "tokens_not_degenerate"]


def does_the_task(task: str, top1: float, gap: float, *, min_top1: float, min_gap: float) -> Check:
    """The model does ``task``: greedy top-1 accuracy >= ``min_top1`` and mean logit difference (answer - wrong, or
    clean - corrupted) >= ``min_gap``; both numbers finite."""
    ok = math.isfinite(top1) and math.isfinite(gap) and top1 >= min_top1 and gap >= min_gap
    return Check(f"the model does the task ({task}: top-1 >= {min_top1:.0%}, logit difference >= {min_gap:g})",
                 bool(ok), f"top-1 {top1:.0%}, logit difference {gap:+.2f}")


def pairs_differ(gap: float, *, min_gap: float, absolute: bool = False) -> Check:
    """The clean and corrupted prompts differ in the metric (clean - corrupted >= ``min_gap``; with ``absolute``, in
    either direction): patching effects are normalised by this gap, and over a gap near zero or of the wrong sign
    they mean nothing."""
    ok = math.isfinite(gap) and (abs(gap) if absolute else gap) >= min_gap
    what = "|clean - corrupted|" if absolute else "clean - corrupted"
    return Check(f"clean and corrupted prompts differ in the metric ({what} >= {min_gap:g})", bool(ok),
                 f"clean - corrupted {gap:+.2f}")


def _array(values: torch.Tensor | np.ndarray | Iterable[float]) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64)


def data_not_degenerate(what: str, values: torch.Tensor | np.ndarray | Iterable[float]) -> Check:
    """``values`` (activations, features, effects) are non-empty, finite and not all zero (nor all one value)."""
    x = _array(values)
    if x.size == 0:
        why = "it is empty"
    elif not np.isfinite(x).all():
        why = f"{int((~np.isfinite(x)).sum()):,} of {x.size:,} values are NaN or infinite"
    elif not np.any(x):
        why = f"all {x.size:,} values are zero"
    elif x.size > 1 and np.all(x == x.flat[0]):
        why = f"all {x.size:,} values are {x.flat[0]:g}"
    else:
        return Check(f"the {what} are not degenerate (finite, not all zero or one value)", True,
                     f"{x.size:,} values, {float(np.mean(x != 0)):.0%} non-zero")
    return Check(f"the {what} are not degenerate (finite, not all zero or one value)", False, why)


def tokens_not_degenerate(what: str, tokens: torch.Tensor | np.ndarray, *, special: Iterable[int] = (),
                          min_distinct: int = 2) -> Check:
    """``tokens`` hold at least ``min_distinct`` distinct ids that are not special (BOS/EOS/PAD/UNK): a tokenizer
    that turns a corpus into ``<bos>`` or ``<unk>`` gives nothing to learn from or measure on."""
    ids = _array(tokens).astype(np.int64).ravel()
    skip = {int(s) for s in special if s is not None}
    ordinary = ids[~np.isin(ids, list(skip))] if skip else ids
    distinct = len(np.unique(ordinary))
    ok = distinct >= min_distinct
    detail = (f"{ids.size:,} tokens, {distinct:,} distinct ordinary ids" if ids.size else "no tokens")
    if not ok and ids.size:
        share = 1 - ordinary.size / ids.size
        detail += f" ({share:.0%} are special tokens such as <bos>/<unk>)"
    return Check(f"the {what} are not degenerate (at least {min_distinct} distinct ordinary tokens)", ok, detail)
