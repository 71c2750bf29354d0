"""Onset, 10% -> 90% rise, ICL drop inside it, the power-law forecast and the threshold test, on known curves."""
from __future__ import annotations

import math

import pytest

from interp.errors import InvalidInput
from probes.heads.emergence import fit_onset, is_threshold, onset_step, rise

STEPS = list(range(0, 1100, 100))
#: A plateau, a jump between steps 500 and 700, then a plateau at 0.9; the ICL score falls inside the jump.
JUMP = [0.03, 0.03, 0.03, 0.03, 0.03, 0.04, 0.6, 0.88, 0.9, 0.9, 0.9]
ICL = [0.0, 0.0, -0.1, -0.1, -0.1, -0.2, -3.0, -4.0, -4.0, -4.0, -4.0]


def test_onset_is_the_first_step_at_the_threshold():
    assert onset_step(STEPS, JUMP) == 600
    assert onset_step(STEPS, [0.03] * 11) is None
    with pytest.raises(InvalidInput, match="NaN"):
        onset_step(STEPS, [math.nan] * 11)
    with pytest.raises(InvalidInput, match="one score per"):
        onset_step(STEPS, JUMP[:3])


def test_rise_times_the_jump_and_the_icl_drop_inside_it():
    r = rise(STEPS, JUMP, ICL)
    # final 0.9 (last three), start 0.03: 10% = 0.117 first reached at 600, 90% = 0.813 at 700
    assert (r.step_10, r.step_90, r.width) == (600, 700, 100)
    assert r.icl_drop == pytest.approx(1.0) and r.icl_drop_share == pytest.approx(0.25)
    ramp = [0.03 + 0.087 * i for i in range(11)]  # a straight ramp from the first step: slow, not abrupt
    rr = rise(STEPS, ramp, ICL)
    assert rr.width / rr.step_90 > 0.8
    assert rise(STEPS, [0.05] * 11, ICL) is None  # nothing rose


def test_power_law_fit_recovers_a_known_law_and_forecasts():
    shares = [0.4, 0.5, 0.75, 1.0] * 2
    onsets = [700 * s ** -1.5 for s in shares]
    fit = fit_onset(shares, onsets)
    assert fit.c == pytest.approx(700) and fit.k == pytest.approx(1.5) and fit.shares == (0.4, 0.5, 0.75, 1.0)
    assert fit.predict(0.6) == pytest.approx(700 * 0.6 ** -1.5)
    with pytest.raises(InvalidInput, match="two or more shares"):
        fit_onset([0.5, 0.5, 0.0], [10, 12, 5])


def test_threshold_needs_none_below_and_every_seed_above():
    assert is_threshold({0.0: 0.0, 0.2: 0.0, 0.3: 0.5, 0.5: 1.0, 1.0: 1.0}) == (True, 0.5)
    assert is_threshold({0.0: 0.0, 0.5: 1.0, 0.75: 0.0, 1.0: 1.0}) == (False, 0.5)  # a gap above: no threshold
    assert is_threshold({0.0: 1.0, 1.0: 1.0}) == (False, 0.0)  # heads even on noise: structure not needed
    assert is_threshold({0.0: 0.0, 1.0: 0.0}) == (False, None)  # never formed
