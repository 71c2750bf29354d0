"""The CLI sweep's fast subset (tests/fuzz/cli_cases.py; the whole sweep: scripts/sweep.py --part cli): bad
invocations end with exit 2 and one clean line, good ones print clean text."""
from __future__ import annotations

import pytest

from tests.fuzz import cli_cases

FAST = [c for c in cli_cases.cases() if c.fast]
SUBPROCESS = {"out.read_only", "set.train-text-lm.lr.inf", "show.escapes"}  # also as real `python -m experiments`


def test_the_sweep_has_at_least_100_cases_and_a_fast_subset():
    all_cases = cli_cases.cases()
    assert len(all_cases) >= 100 and len({c.name for c in all_cases}) == len(all_cases)
    assert len(FAST) == len(cli_cases.FAST)  # every named fast case exists


@pytest.mark.parametrize("case", FAST, ids=lambda c: c.name)
def test_fast_case_in_process(case):
    outcome = cli_cases.run_case_in_process(case)
    assert outcome.status == "pass", outcome.detail


@pytest.mark.parametrize("case", [c for c in FAST if c.name in SUBPROCESS], ids=lambda c: c.name)
def test_fast_case_as_a_subprocess(case):
    outcome = cli_cases.run_case(case)
    assert outcome.status == "pass", outcome.detail
