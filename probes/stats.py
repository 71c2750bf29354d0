"""Small statistics for reading results honestly: a confidence interval for an accuracy measured on n examples, a
t interval for a mean over a few seeds, and the smallest p-value a sign-flip permutation test over n samples can
give (with 3 pairs it is 0.25: no effect can ever be "significant", and a table should say so rather than show
p = 0.25 beside a CI that excludes 0).

The Wilson score interval (Wilson 1927) is used rather than the normal approximation because probe test sets can
be small and accuracies near 0 or 1, where the normal interval leaves [0, 1]. TransformerLens ships no interval
of this kind (``transformer_lens.utilities`` has none), so it is written here in a few lines; so is the Student-t
quantile table (SciPy is not in the pinned set, and a sweep's seeds are few, where 1.96 would be far too narrow).
"""
from __future__ import annotations

import math

from interp.errors import InvalidInput

#: Below this many test examples the app warns that an accuracy is only a rough number.
SMALL_TEST_SET = 200


def wilson_interval(accuracy: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% (z = 1.96) Wilson interval for an accuracy measured on ``n`` examples."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InvalidInput(f"An accuracy needs at least one example; got n={n!r}.")
    if not (isinstance(accuracy, (int, float)) and 0.0 <= accuracy <= 1.0):
        raise InvalidInput(f"Accuracy must lie in [0, 1]; got {accuracy!r}.")
    denom = 1 + z * z / n
    centre = (accuracy + z * z / (2 * n)) / denom
    half = z * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def min_permutation_p(n: int, *, n_permutations: int = 1000, exact_max_n: int = 12) -> float:
    """The smallest two-sided p-value a paired sign-flip permutation test over ``n`` samples can give: 2 / 2^n when
    it is exact (n <= ``exact_max_n``), else 1 / (``n_permutations`` + 1)."""
    if n < 1:
        return 1.0
    return 2.0 / 2**n if n <= exact_max_n else 1.0 / (n_permutations + 1)


def significance_reachable(n: int, alpha: float = 0.05, **kw: int) -> tuple[bool, str]:
    """(whether a permutation test over ``n`` samples can reach p < ``alpha``, a sentence saying so)."""
    floor = min_permutation_p(n, **kw)
    if floor < alpha:
        return True, f"with {n} samples the smallest possible p-value is {floor:.2g}"
    need = min_samples_for(alpha)
    return False, (f"with {n} samples a permutation p-value cannot go below {floor:.2g}, so no effect can reach "
                   f"p < {alpha:g}" + (f" (it needs at least {need} samples)" if need else ""))


def min_samples_for(alpha: float = 0.05) -> int:
    """The fewest samples with which a two-sided sign-flip test can reach p < ``alpha`` (0 if none can)."""
    return next((n for n in range(1, 14) if min_permutation_p(n) < alpha), 0)
#: Two-sided 95% quantiles of Student's t by degrees of freedom (standard tables; no SciPy in the pinned set).
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
        20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048,
        29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}


def t95(df: int) -> float:
    """The 95% two-sided Student-t quantile for ``df`` degrees of freedom (linear in 1/df between table rows)."""
    if df < 1:
        raise InvalidInput(f"A t interval needs at least 2 values (df >= 1); got df={df}.")
    if df in _T95:
        return _T95[df]
    rows = sorted(_T95) + [math.inf]
    hi = next(r for r in rows if r > df)
    lo = max(r for r in rows if r < df)
    t_lo, t_hi = _T95[lo], (_T95[hi] if hi != math.inf else 1.960)
    w = (1 / lo - 1 / df) / (1 / lo - (0 if hi == math.inf else 1 / hi))
    return t_lo + w * (t_hi - t_lo)


def mean_ci95(values: list[float]) -> tuple[float, float | None]:
    """(mean, half-width of its 95% t interval) of independent values (seeds); the half-width is None for one
    value (no spread to measure)."""
    if not values or any(not math.isfinite(v) for v in values):
        raise InvalidInput("A mean needs at least one finite value.")
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, t95(n - 1) * sd / math.sqrt(n)
