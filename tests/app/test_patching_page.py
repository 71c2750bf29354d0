"""Patching page: alignment and tokenization shown, attribution and exact sweeps drawn, head click, errors, dataset."""
from __future__ import annotations

import json

import pytest

from tests.app.apptest import app_test


@pytest.fixture
def app(tiny_gpt2_dir, monkeypatch):
    return app_test(tiny_gpt2_dir, monkeypatch, "Patching", timeout=180)


def _titles(at):
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def _set_pair(at, clean, corrupted, answer, wrong):
    at.text_area(key="patch_clean").set_value(clean)
    at.text_area(key="patch_corrupted").set_value(corrupted)
    at.text_input(key="patch_answer").set_value(answer)
    at.text_input(key="patch_wrong").set_value(wrong)


@pytest.mark.slow
def test_attribution_then_exact_then_head_click(app):
    from ui import patching_page

    app.run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    _set_pair(app, "the cat sat on the mat", "the dog sat on the mat", " the", " a")
    app.run()
    assert not app.error, [e.value for e in app.error]
    assert any("differ at position(s) 2" in c.value for c in app.caption)  # BOS, the, cat|dog
    app.button(key="patch_attr").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    titles = _titles(app)
    assert any(t.startswith("Attribution: head outputs") for t in titles)
    assert any("resid_pre by layer x position" in t for t in titles) and any("mlp_out" in t for t in titles)
    assert any(t.startswith("Head ") and "clean prompt" in t for t in titles)
    before = patching_page.SWEEPS["count"]
    app.button(key="patch_exact").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    titles = _titles(app)
    assert patching_page.SWEEPS["count"] == before + 1
    assert any(t.startswith("Exact: head outputs") for t in titles)
    assert sum(" (r = " in t for t in titles) == 4  # head_out, resid_pre, attn_out, mlp_out scatters
    assert any(t == "by head (largest 16)" for t in titles)
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    assert any(t.get("name") == "head-picker" for t in spec["data"])  # the head heatmap is clickable
    from ui import state

    app.session_state[state.LAYER], app.session_state[state.HEAD] = 1, 3  # what a click on 1.3 sets
    app.run()
    assert any(t == "Head 1.3 on the clean prompt" for t in _titles(app))
    assert patching_page.SWEEPS["count"] == before + 1  # a head change re-runs no sweep


def test_misaligned_prompts_and_multi_token_answer_are_messages(app):
    app.run()
    _set_pair(app, "the cat sat on the mat", "the dog", " the", " a")
    app.run()
    assert not app.exception
    msg = " ".join(e.value for e in app.error)
    assert "position by position" in msg and "clean:" in msg and "corrupted:" in msg
    _set_pair(app, "the cat sat", "the dog sat", " zzqqxx", " a")
    app.run()
    assert not app.exception and "exactly one token" in " ".join(e.value for e in app.error)


def test_dataset_csv_gives_effects_with_intervals(app):
    app.run()
    csv = ('clean,corrupted,answer,wrong\n"the cat sat on the mat","the dog sat on the mat"," the"," a"\n'
           '"the cat sat on the log","the dog sat on the log"," the"," a"\n')
    app.text_area(key="patch_csv_text").set_value(csv)
    app.button(key="patch_dataset_run").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    df = app.dataframe[-1].value
    assert {"component", "mean", "ci_low", "ci_high", "p_value"} <= set(df.columns) and len(df) == 8
    assert any(t.startswith("2 pairs: head-output effect") for t in _titles(app))
    app.text_area(key="patch_csv_text").set_value("clean,answer\nx,y\n")
    app.button(key="patch_dataset_run").click().run()
    assert not app.exception and "lacks the column" in " ".join(e.value for e in app.error)
