"""Heads page on the tiny GPT-2: heatmaps + table render, choosing a head reuses the scan, bad URLs warn."""
from __future__ import annotations

import json

import pytest

from tests.app.apptest import app_test


@pytest.fixture
def app(tiny_gpt2_dir, monkeypatch):
    from ui import heads_page

    heads_page._reports.clear()  # a fresh process-wide store: every test counts its own scans
    return app_test(tiny_gpt2_dir, monkeypatch, "Heads")


def _titles(at):
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def test_heatmaps_table_and_head_switch_without_rescan(app):
    from ui import heads_page

    before = heads_page.SCANS["count"]
    app.run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert heads_page.SCANS["count"] == before + 1
    titles = _titles(app)
    assert len(titles) == 8  # five detector heatmaps, two ablation views + the chosen head's pattern
    assert titles[0].startswith("Induction")
    assert any(t.startswith("Ablation effect") and "repeated copy" in t for t in titles)
    assert any(t.startswith("Ablation") and "ICL score" in t for t in titles)
    assert any("BOS handling" in c.value for c in app.caption)
    df = app.dataframe[0].value
    assert len(df) == 8 and {"head", "induction", "prev_token", "duplicate", "prefix_matching", "copying",
                             "ablation_effect", "ablation_icl_effect"} <= set(df.columns)
    assert list(df["induction"]) == sorted(df["induction"], reverse=True)
    app.selectbox(key="heads_sort").set_value("copying").run()
    assert list(app.dataframe[0].value["copying"]) == sorted(app.dataframe[0].value["copying"], reverse=True)
    app.selectbox(key="heads_head").set_value("1.3").run()
    assert _titles(app)[-1].startswith("Head 1.3 attention pattern")
    app.selectbox(key="heads_head").set_value("0.2").run()
    assert _titles(app)[-1].startswith("Head 0.2 attention pattern")
    assert heads_page.SCANS["count"] == before + 1  # no recompute for a head or sort change
    # new settings: one new scan; going back to the old ones reuses the cached scan
    app.number_input(key="heads_seq_len").set_value(6)
    app.selectbox(key="heads_ablation").set_value("off")
    app.button(key="heads_scan").click().run()
    assert not app.exception and not app.error
    assert heads_page.SCANS["count"] == before + 2 and len(_titles(app)) == 6  # no ablation heatmap
    assert "ablation_effect" not in app.dataframe[0].value.columns


def test_out_of_range_head_in_url_warns_and_falls_back(app):
    app.query_params["layer"] = "5"
    app.query_params["head"] = "-1"
    app.run()
    assert not app.exception and not app.error
    warnings = " ".join(w.value for w in app.warning)
    assert "layer=5 is out of range (0..1)" in warnings and "head=-1 is out of range (0..3)" in warnings
    assert _titles(app)[-1].startswith("Head 0.0 ")  # no head is strong on a random model: the first one
    app.selectbox(key="heads_head").set_value("1.2").run()
    assert not [w for w in app.warning if "link" in w.value]  # warned once; the choice is not overridden afterwards
    assert _titles(app)[-1].startswith("Head 1.2 ")
    assert app.query_params["layer"] == "1" and app.query_params["head"] == "2"  # the URL follows the choice


def test_weak_heads_are_not_auto_selected_and_heatmaps_are_clickable(app):
    app.run()
    assert not app.exception and not app.error
    assert any("No head scores above 0.5 on induction" in i.value for i in app.info)
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    pickers = [t for t in spec["data"] if t.get("name") == "head-picker"]
    assert len(pickers) == 1 and len(pickers[0]["customdata"]) == 8 and pickers[0]["customdata"][5] == "1.1"
    assert app.get("plotly_chart")[0].proto.selection_mode  # selection events are on
