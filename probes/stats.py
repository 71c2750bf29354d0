"""Small statistics for reading results honestly: a confidence interval for an accuracy measured on n examples.

The Wilson score interval (Wilson 1927) is used rather than the normal approximation because probe test sets can
be small and accuracies near 0 or 1, where the normal interval leaves [0, 1]. TransformerLens ships no interval
of this kind (``transformer_lens.utilities`` has none), so it is written here in a few lines.
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
