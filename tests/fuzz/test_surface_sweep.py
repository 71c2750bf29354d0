"""The surface part of the reliability sweep, fast subset: prompt pairs and patching, SAE folders, trainers' and
experiments' settings, output folders, unknown tokens and the older residue each end in a typed error or a correct
result (the full sweep, over a thousand generated cases: ``scripts/sweep.py --part surface``)."""
from __future__ import annotations

import pytest

from tests.fuzz import run_cases
from tests.fuzz.surface_cases import cases

FAST = [c for c in cases() if c.fast]


def test_the_sweep_is_generated_large_and_covers_every_family():
    all_cases = list(cases())
    assert len(all_cases) >= 1000
    assert len({c.name for c in all_cases}) == len(all_cases)
    assert {c.group for c in all_cases} == {c.group for c in FAST}
    assert any(c.isolate for c in FAST)


@pytest.mark.parametrize("case", FAST, ids=[c.name for c in FAST])
def test_fast_case(case):
    (outcome,) = run_cases("surface", [case])
    assert outcome.status == "pass", f"{outcome.status}: {outcome.detail}"
