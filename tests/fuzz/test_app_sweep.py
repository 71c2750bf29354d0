"""The app part of the reliability sweep, fast subset: bad links and typed inputs on the pages end in a short
message, never a traceback (the full sweep: ``scripts/sweep.py --part app``)."""
from __future__ import annotations

import pytest

from tests.fuzz import run_cases
from tests.fuzz.app_cases import PAGES, cases

FAST = [c for c in cases() if c.fast]


def test_the_sweep_covers_every_page_and_family():
    all_cases = list(cases())
    assert len(all_cases) >= 200
    assert len({c.name for c in all_cases}) == len(all_cases)
    assert {c.group for c in all_cases} == {c.group for c in FAST}
    assert {c.params["query"]["page"] for c in all_cases if c.group == "url.layer"} == set(PAGES)


@pytest.mark.parametrize("case", FAST, ids=[c.name for c in FAST])
def test_fast_case(case):
    (outcome,) = run_cases("app", [case])
    assert outcome.status == "pass", f"{outcome.status}: {outcome.detail}"
