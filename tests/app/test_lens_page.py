"""Logit lens page on the tiny GPT-2: grid renders, bad prompts are messages, position/token changes re-run nothing,
and a tuned lens beside the model adds the tuned-lens and both-lenses views."""
from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from streamlit.testing.v1 import AppTest

from tests.app.apptest import app_test


def _app(model_dir, monkeypatch) -> AppTest:
    return app_test(model_dir, monkeypatch, "Logit lens")


@pytest.fixture
def app(tiny_gpt2_dir, monkeypatch):
    return _app(tiny_gpt2_dir, monkeypatch)


def _charts(at):
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _ok(at):
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def test_grid_renders_on_default_model_with_note_about_tuned_lens(app):
    app.run()
    _ok(app)
    charts = _charts(app)
    grid = charts[0]
    assert grid["data"][0]["type"] == "heatmap" and "Logit lens" in grid["layout"]["title"]["text"]
    assert "target probability" in grid["layout"]["title"]["text"].replace("<br>", " ")  # long titles wrap
    assert grid["layout"]["xaxis"]["title"]["text"] and grid["layout"]["yaxis"]["title"]["text"]
    assert grid["data"][0]["text"]  # top-1 token written in the cells
    assert any("python -m experiments run tuned-lens --model" in i.value for i in app.info)
    assert app.radio(key="lens_view").options == ["Logit lens"]
    assert len(app.dataframe) == 1 and {"top1", "kl_to_final"} <= set(app.dataframe[0].value.columns)
    app.radio(key="lens_colour").set_value("kl_to_final").run()
    _ok(app)
    assert "KL" in _charts(app)[0]["layout"]["title"]["text"]


def test_empty_and_too_long_prompts_are_messages(app):
    app.run()
    app.text_area(key="lens_prompt").set_value("   ").run()
    assert not app.exception and any("empty" in e.value for e in app.error)
    app.text_area(key="lens_prompt").set_value("the cat " * 200).run()  # n_ctx is 64
    assert not app.exception and any("reads at most 64" in e.value for e in app.error)


def test_grid_window_has_at_most_24_columns_whose_text_fits(app):
    app.run()
    app.text_area(key="lens_prompt").set_value("the cat sat on the mat " * 8).run()
    _ok(app)
    grid = _charts(app)[0]
    n_cols = len(grid["data"][0]["text"][0])
    assert 16 <= n_cols <= 24
    assert max(len(t) for row in grid["data"][0]["text"] for t in row) <= 1000 // (8 * n_cols) + 1  # + the "…"


def test_prompt_is_shared_with_the_attention_page(app):
    app.run()
    app.text_area(key="lens_prompt").set_value("def f(x): return x").run()
    app.sidebar.radio(key="page").set_value("Attention").run()
    _ok(app)
    assert app.text_area(key="attn_prompt").value == "def f(x): return x"
    assert app.query_params["prompt"] == "def f(x): return x" and app.query_params["page"] == "Attention"


def test_position_and_token_changes_do_not_rerun_the_model(app):
    from ui import models
    app.run()
    _ok(app)
    before = models.FORWARD_PASSES["count"]
    traj_title = _charts(app)[1]["layout"]["title"]["text"]
    app.selectbox(key="lens_position").set_value(2).run()
    _ok(app)
    assert "position 2" in _charts(app)[1]["layout"]["title"]["text"] != traj_title
    app.text_input(key="lens_token").set_value(" cat").run()
    _ok(app)
    assert "' cat' at position 2" in _charts(app)[1]["layout"]["title"]["text"]
    app.radio(key="lens_colour").set_value("entropy").run()
    assert models.FORWARD_PASSES["count"] == before  # no forward pass for position/token/colour changes
    app.text_input(key="lens_token").set_value("the cat sat").run()  # several tokens: a message
    assert not app.exception and any("not one" in e.value for e in app.error)
    app.text_area(key="lens_prompt").set_value("a different prompt").run()
    assert models.FORWARD_PASSES["count"] == before + 1


def test_tuned_lens_beside_the_model_enables_both_views(tiny_gpt2_dir, tmp_path, monkeypatch):
    from interp import load_model
    from learned.tuned_lens import TunedLens, default_lens_dir, save_tuned_lens

    model = shutil.copytree(tiny_gpt2_dir, tmp_path / "model")
    handle = load_model(model)
    lens = TunedLens.for_model(handle)
    with torch.no_grad():
        for t in lens.translators:
            t.weight.normal_(0, 0.05, generator=torch.Generator().manual_seed(0))
    save_tuned_lens(lens, default_lens_dir(handle))
    at = _app(model, monkeypatch)
    at.run()
    _ok(at)
    assert at.radio(key="lens_view").options == ["Logit lens", "Tuned lens", "Both"]
    assert not any("tuned-lens" in i.value for i in at.info)
    traj = _charts(at)[1]
    assert [d["name"] for d in traj["data"] if d.get("showlegend", True)] == ["logit lens", "tuned lens"]
    kl = _charts(at)[-1]
    assert [d["name"] for d in kl["data"]] == ["logit lens", "tuned lens"]
    at.text_input(key="lens_token").set_value("the cat sat").run()  # not one token: a message, the KL chart stays
    assert not at.exception and any("not one" in e.value for e in at.error)
    assert "KL" in _charts(at)[-1]["layout"]["title"]["text"]
    at.text_input(key="lens_token").set_value("").run()
    at.radio(key="lens_view").set_value("Both").run()
    _ok(at)
    titles = [c["layout"]["title"]["text"] for c in _charts(at)]
    assert titles[0].startswith("Logit lens") and titles[1].startswith("Tuned lens")
    (default_lens_dir(handle) / "params.safetensors").write_bytes(b"garbage")  # corrupt: a message, logit lens stays
    os.utime(default_lens_dir(handle) / "config.json", (1e9, 1e9))  # a new stamp: the page reloads the lens
    at.run()
    assert not at.exception and any("corrupt" in e.value for e in at.error)
    assert _charts(at)[0]["data"][0]["type"] == "heatmap"
