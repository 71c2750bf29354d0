"""Wilson interval: contains the estimate, narrows with n, stays inside [0, 1], refuses nonsense."""
from __future__ import annotations

import pytest

from interp.errors import InvalidInput
from probes.stats import wilson_interval


def test_interval_contains_estimate_and_narrows_with_more_examples():
    lo, hi = wilson_interval(0.8, 20)
    assert lo < 0.8 < hi and 0.0 <= lo and hi <= 1.0
    lo2, hi2 = wilson_interval(0.8, 2000)
    assert hi2 - lo2 < (hi - lo) / 5
    assert wilson_interval(1.0, 10)[1] == 1.0 and wilson_interval(0.0, 10)[0] == 0.0
    assert wilson_interval(0.5, 100) == pytest.approx((0.404, 0.596), abs=1e-3)  # textbook value


@pytest.mark.parametrize("acc, n", [(0.5, 0), (1.5, 10), (-0.1, 10), (0.5, True)])
def test_bad_inputs_are_refused(acc, n):
    with pytest.raises(InvalidInput):
        wilson_interval(acc, n)
