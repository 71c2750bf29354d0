"""AppTest runs of every page on a tiny GPT-2 built offline: rendering, caching, and errors as messages."""
from __future__ import annotations

import json

import pytest

from tests.app.apptest import app_test


@pytest.fixture
def app(tiny_gpt2_dir, monkeypatch):
    return app_test(tiny_gpt2_dir, monkeypatch, "Attention")


def _charts(at):
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_attention_page_renders_heatmap_and_switching_head_does_not_rerun(app):
    from probes.heads.strongest import strongest_head
    from ui import models
    app.run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    charts = _charts(app)
    assert len(charts) == 3  # selected head + the layer's heads + every layer x head
    best = strongest_head(models.cached_attention(models.default_model_name(), app.text_area(key="attn_prompt").value)
                          .patterns)
    assert charts[0]["layout"]["title"]["text"] == f"Head {best.head} attention pattern"  # opens on the strongest
    assert any(i.value.startswith("Opened on the strongest head")
               and f"Head {best.head} attends most sharply" in i.value for i in app.info)
    assert "query" in charts[0]["data"][0]["hovertemplate"] and "key" in charts[0]["data"][0]["hovertemplate"]
    before = models.FORWARD_PASSES["count"]
    app.selectbox(key="attn_head").set_value(3).run()
    app.selectbox(key="attn_layer").set_value(1).run()
    assert _charts(app)[0]["layout"]["title"]["text"] == "Head 1.3 attention pattern"
    assert models.FORWARD_PASSES["count"] == before  # no recompute on head/layer switch
    app.text_area(key="attn_prompt").set_value("a new prompt entirely").run()
    assert models.FORWARD_PASSES["count"] == before + 1
    small = _charts(app)[1]
    assert sum(t["type"] == "heatmap" for t in small["data"]) == 4  # 4 heads in the tiny model
    grid = _charts(app)[2]
    assert sum(t["type"] == "heatmap" for t in grid["data"]) == 8  # 2 layers x 4 heads


def test_empty_and_too_long_prompts_are_messages(app):
    app.run()
    app.text_area(key="attn_prompt").set_value("   ").run()
    assert not app.exception
    assert any("empty" in e.value for e in app.error)
    app.text_area(key="attn_prompt").set_value("the cat " * 200).run()  # n_ctx is 64
    assert not app.exception
    assert any("reads at most 64" in e.value and "first 64 tokens" in e.value for e in app.error)
    assert not any("truncate" in e.value for e in app.error)  # never names an API argument
    app.button(key="attn_prompt_truncate").click().run()  # the message's offer: keep the first 64 tokens
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert app.text_area(key="attn_prompt").value.startswith("the cat the cat")
    assert "64 tokens" in " ".join(c.value for c in app.caption)


def test_out_of_range_query_params_warn_and_fall_back(app):
    app.query_params["layer"] = "7"
    app.query_params["head"] = "x"
    app.run()
    assert not app.exception and not app.error
    warnings = " ".join(w.value for w in app.warning)
    assert "layer=7 is out of range (0..1)" in warnings and "head='x' is not a number" in warnings
    assert _charts(app)[0]["layout"]["title"]["text"] == "Head 0.0 attention pattern"


def test_model_page_shows_anatomy(app, tiny_gpt2_dir):
    app.run()
    app.sidebar.radio(key="page").set_value("Model").run()
    assert not app.exception and not app.error
    props = app.table[0].value["value"].to_dict()  # a static table: every row shown, long values wrap
    assert props["layers"] == "2" and props["query heads per layer"] == "4" and props["context (tokens)"] == "64"
    assert len(props["weights sha256"]) == 64
    assert app.radio(key="model_source").value == "Local directory"  # the current model is preselected
    assert app.text_input(key="model_dir").value == str(tiny_gpt2_dir)


def test_model_page_shows_the_model_card_and_preselects_a_bundled_model(monkeypatch):
    from interp.loading import bundled_models

    if "attn-only-1l" not in bundled_models():
        pytest.skip("bundled attn-only-1l absent")
    at = app_test("attn-only-1l", monkeypatch, "Model").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.radio(key="model_source").value == "Bundled" and at.selectbox(key="model_bundled").value == "attn-only-1l"
    assert any("attn-only-1l: a 1-layer attention-only transformer" in m.value for m in at.markdown)
    assert any("t1 ... t999" in s.value for s in at.success)


def test_missing_model_is_a_message_not_a_crash(monkeypatch, tmp_path):
    at = app_test(tmp_path / "no-such-model", monkeypatch, "Attention", timeout=60).run()
    assert not at.exception
    assert any("not a model directory" in e.value for e in at.error)
    at.sidebar.radio(key="page").set_value("Model").run()
    at.radio(key="model_source").set_value("Local directory").run()
    at.text_input(key="model_dir").set_value(str(tmp_path)).run()  # exists but holds no config.json
    at.button(key="model_load").click().run()
    assert not at.exception and at.error


def test_make_png_gives_a_png_download_and_html_download_embeds_plotly(app):
    import shutil

    from ui import figures
    app.run()
    html = figures.figure_html(__import__("plotly.graph_objects").graph_objects.Figure())
    assert "<script src" not in html and len(html) > 1_000_000  # plotly.js inline: opens offline
    if not (shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")):
        pytest.skip("no Chromium for kaleido")
    app.button(key="mkpng-head-pattern").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert any(b.proto.label == "Download PNG" for b in app.get("download_button"))


def test_error_text_is_capped_and_names_no_internals():
    from interp.errors import InvalidInput
    from ui import figures, messages
    huge = ValueError('{"data": [' + "1, " * 10_000 + "]}")
    text = messages.error_text(huge)
    assert len(text) < messages.MAX_ERROR_CHARS + 80 and "more characters not shown" in text
    assert messages.error_text(InvalidInput("short")) == "short"
    assert figures.png_error_text(RuntimeError("x" * 5000)).count("x") < 400


@pytest.mark.parametrize("exc, words", [(MemoryError(), "ran out of memory"),
                                        (PermissionError(13, "Permission denied", "/x"), "Permission denied: /x"),
                                        (FileNotFoundError(2, "No such file", "/nope"), "/nope does not exist")])
def test_common_failures_get_specific_messages(exc, words):
    from ui import messages
    assert words in messages.error_text(exc) and "Something went wrong" not in messages.error_text(exc)
