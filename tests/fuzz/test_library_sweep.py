"""The library part of the reliability sweep, fast subset: every family of bad input ends in a typed error or a
correct result (the full sweep: ``scripts/sweep.py --part library``)."""
from __future__ import annotations

import pytest

from tests.fuzz import counts, run_cases
from tests.fuzz.library_cases import cases

FAST = [c for c in cases() if c.fast]


def test_the_sweep_is_large_and_covers_every_family():
    all_cases = list(cases())
    assert len(all_cases) >= 150
    assert len({c.name for c in all_cases}) == len(all_cases)  # names identify cases for the child process
    assert {c.group for c in all_cases} == {c.group for c in FAST}  # the fast subset samples every family
    assert any(c.isolate for c in FAST)  # and at least one dangerous case runs in a child process


@pytest.mark.parametrize("case", FAST, ids=[c.name for c in FAST])
def test_fast_case(case):
    (outcome,) = run_cases("library", [case])
    assert outcome.status == "pass", f"{outcome.status}: {outcome.detail}"


def test_counts_report_every_status():
    assert set(counts([])) == {"pass", "raw_exception", "crash", "hang", "silent_wrong", "wrong_error"}
