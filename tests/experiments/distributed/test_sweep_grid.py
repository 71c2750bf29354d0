"""A sweep's cells from --grid and --seeds, the summary's statistics, and address checks: no Ray needed."""
from __future__ import annotations

import socket

import pytest

from experiments.core.registry import get_experiment
from experiments.distributed.cluster import check_address
from experiments.distributed.grid import Cell, cells_of, parse_grid, parse_seeds, plan
from experiments.distributed.summary import CellOutcome, group_stats, headline_metrics, markdown
from interp.errors import InvalidInput


def test_grid_and_seeds_parse_to_every_combination():
    grid = parse_grid(["repeat_share=0, 0.5,1", "span_len=4"])
    assert grid == {"repeat_share": ("0", "0.5", "1"), "span_len": ("4",)}
    assert parse_seeds("0-2,7") == (0, 1, 2, 7) and parse_seeds(None) == (0,) and parse_seeds("3") == (3,)
    cells = cells_of(grid, (0, 1))
    assert len(cells) == 6 and cells[0] == Cell((("repeat_share", "0"), ("span_len", "4")), 0)
    assert len({c.key for c in cells}) == 6 and cells[1].key == "repeat_share=0_span_len=4_seed=1"


@pytest.mark.parametrize("items, words", [
    (["repeat_share"], "KEY=V1,V2"), (["=1,2"], "no setting name"), (["a=1", "a=2"], "twice"),
    (["seed=1,2"], "--seeds"), (["lr=1,,2"], "empty value"), (["lr="], "empty value"), (["lr=1,1"], "twice"),
])
def test_bad_grids_are_refused(items, words):
    with pytest.raises(InvalidInput, match=words):
        parse_grid(items)


@pytest.mark.parametrize("text, words", [
    ("", "empty"), ("4-0", "backwards"), ("-1", "not a seed"), ("a-b", "not a seed"), ("0-5000", "more than"),
    ("4294967296", "up to"), ("1,1", "twice"), ("1.5", "not a seed"), ("0--2", "not a seed"),
])
def test_bad_seed_ranges_are_refused(text, words):
    with pytest.raises(InvalidInput, match=words):
        parse_seeds(text)


def test_plan_checks_every_cell_before_any_work():
    exp = get_experiment("icl-emergence-cell")
    cells = plan(exp, {"repeat_share": ("0", "1")}, (0, 1), preset="ci", sets={"steps": "10"})
    assert [c.seed for c, _ in cells] == [0, 1, 0, 1] and cells[3][1].repeat_share == 1.0 and cells[3][1].steps == 10
    for grid, sets, words in [({"repeat_share": ("0", "2")}, {}, "repeat_share=2.0 is invalid"),
                              ({"nope": ("1",)}, {}, "no such setting"),
                              ({"steps": ("1",)}, {"steps": "2"}, "both in --grid"),
                              ({"span_len": ("4", "40")}, {}, "span_len"),
                              ({}, {"seed": "3"}, "--seeds")]:
        with pytest.raises(InvalidInput, match=words):
            plan(exp, grid, (0,), preset="ci", sets=sets)
    with pytest.raises(InvalidInput, match="list setting"):
        plan(get_experiment("icl-emergence-vs-structure"), {"shares": ("0",)}, (0,))
    with pytest.raises(InvalidInput, match="at most"):
        cells_of({"a": tuple(map(str, range(200))), "b": tuple(map(str, range(100)))}, (0,))


def test_group_means_carry_95_percent_t_intervals(tmp_path):
    def cell(share, seed, onset):
        return CellOutcome(Cell((("repeat_share", share),), seed), tmp_path, "done", {"status": "reproduced"},
                           {"onset_step": onset})

    outcomes = [cell("1", 0, 100.0), cell("1", 1, 200.0), cell("1", 2, 300.0), cell("0", 0, None),
                CellOutcome(Cell((("repeat_share", "0"),), 1), tmp_path, "failed", message="boom")]
    stats = {r["settings"]["repeat_share"]: r for r in group_stats(outcomes)}
    assert stats["1"]["mean"] == 200.0 and stats["1"]["n"] == 3
    assert stats["1"]["ci95"] == pytest.approx(4.303 * 100.0 / 3**0.5, rel=1e-4)  # t(2) * sd / sqrt(n)
    assert stats["0"]["mean"] is None and stats["0"]["missing"] == 2
    text = markdown("T", "x", {"repeat_share": ("0", "1")}, (0, 1, 2), outcomes, group_stats(outcomes), None, 1.0)
    assert "boom" in text and "200 ± 248 (n=3)" in text  # the failed cell's reason, the mean and CI half-width


def test_headline_metrics_are_named_or_the_first_scalars():
    metrics = {"a": 1, "b": [1, 2], "c": True, "d": float("nan"), "e": 2.5, "verdict": {}}
    assert headline_metrics(metrics) == {"a": 1.0, "e": 2.5}
    assert headline_metrics(metrics, ("e", "b", "zz")) == {"e": 2.5, "b": None, "zz": None}


@pytest.mark.parametrize("address, words", [
    ("", "empty"), ("   ", "empty"), ("localhost", "not a Ray cluster address"), ("http://x:1", "not a Ray"),
    ("host:99999", "outside"), ("[zz::1]:80", "not a Ray"), ("[1:2:3:4:5:6:7:8:9]:80", "not an IPv6"),
    ("a b:10", "not a Ray"), ("h" * 300 + ":1", "not a Ray"),
])
def test_bad_addresses_are_refused_in_seconds(address, words):
    with pytest.raises(InvalidInput, match=words):
        check_address(address)


def test_an_address_where_nothing_listens_is_refused():
    with socket.socket() as s:  # a port that was free a moment ago: nothing answers there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(InvalidInput, match="nothing answers"):
        check_address(f"127.0.0.1:{port}")
    with socket.socket() as s:  # something listens but does not speak gRPC (Ray would retry for minutes)
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(InvalidInput, match="not a Ray cluster"):
            check_address(f" ray://127.0.0.1:{s.getsockname()[1]} ")
