"""AppTest runs of the learner's pages on the tiny GPT-2: Start here opens first and presets pages, Inside the model
shows every step with its live check, Generate is seeded, the Glossary opens on a linked term, and every page has
its "What am I looking at?" box."""
from __future__ import annotations

import pytest

from tests.app.apptest import app_test


@pytest.fixture
def app(tiny_gpt2_dir, monkeypatch):
    return app_test(tiny_gpt2_dir, monkeypatch)


def _errors(at) -> list[str]:
    return [e.value for e in at.error] + [str(e.value) for e in at.exception]


def test_start_here_is_the_first_page_and_lists_the_path(app):
    app.run()
    assert not _errors(app), _errors(app)
    assert app.session_state["page"] == "Start here"
    titles = [m.value for m in app.markdown if m.value.startswith("#### Step")]
    assert len(titles) == 7 and "induction head" in titles[2] and "Capabilities" in titles[-1]
    notes = " ".join(m.value for m in app.markdown)
    assert "(?page=Glossary&term=" in notes  # jargon is linked to the glossary
    from ui.start_page import STOPS

    assert [s.page for s in STOPS] == ["Inside the model", "Attention", "Attention", "Logit lens", "Probes",
                                       "Patching", "Train"]


def test_a_stop_presets_its_page(app):
    """Stop 3 opens Attention on code-gpt2, the repeated line, head 3.0 (the shared state the page reads)."""
    from interp.loading import bundled_models

    if "code-gpt2" not in bundled_models():
        pytest.skip("bundled code-gpt2 absent")
    app.run()
    app.button(key="start_open_3").click().run()
    assert not _errors(app), _errors(app)
    ss = app.session_state
    assert ss["page"] == "Attention" and ss["model_name"] == "code-gpt2"
    assert (ss["wb_layer"], ss["wb_head"]) == (3, 0) and ss["wb_prompt"].startswith("x = compute(a, b)")
    import json

    title = json.loads(app.get("plotly_chart")[0].proto.spec)["layout"]["title"]["text"]
    assert title == "Head 3.0 attention pattern"


def test_inside_the_model_shows_checked_steps_and_follows_a_clicked_token(app):
    from ui import walkthrough_page

    app.query_params["page"] = "Inside the model"
    app.run()
    assert not _errors(app), _errors(app)
    assert any("hand recomputations from the weights" in s.value for s in app.success)  # all within tolerance
    lines = [c.value for c in app.caption if "recomputed by hand from the weights" in c.value]
    assert len(lines) >= 10 and all("max |difference| to the model's own activation = **" in x for x in lines)
    assert any("blocks.0.attn.hook_q" in x for x in lines)
    assert app.get("plotly_chart")  # the numbers are drawn
    before = walkthrough_page.WALKS["count"]
    app.selectbox(key="wt_head").set_value(2).run()
    assert walkthrough_page.WALKS["count"] == before + 1 and not _errors(app)
    app.selectbox(key="wt_head").set_value(2).run()  # the same view again: reused
    assert walkthrough_page.WALKS["count"] == before + 1
    pills = next(b for b in app.get("button_group") if b.key == "wt_pos")
    pills.set_value(2).run()  # click token 2
    assert not _errors(app) and any("Following token '2:" in s.value for s in app.success)


def test_generate_is_seeded_and_shows_the_distribution(app):
    app.query_params["page"] = "Inside the model"
    app.run()
    app.segmented_control(key="wt_view").set_value("Generate").run()
    app.slider(key="gen_temp").set_value(1.5)
    app.number_input(key="gen_topk").set_value(20)
    app.number_input(key="gen_n").set_value(5).run()
    app.button(key="gen_many").click().run()
    assert not _errors(app), _errors(app)
    text = app.code[0].value
    table = app.dataframe[0].value
    assert list(table.columns)[:5] == ["token", "id", "model (T=1)", "after temperature", "sampled from"]
    assert (table["sampled from"][~table["kept"]] == 0).all()
    app.button(key="gen_reset").click().run()
    for _ in range(5):  # token by token: the same text
        app.button(key="gen_step").click().run()
    assert app.code[0].value == text


def test_glossary_opens_on_a_linked_term_and_unknown_terms_warn(app):
    app.query_params["page"] = "Glossary"
    app.query_params["term"] = "residual-stream"
    app.run()
    assert not _errors(app)
    first = [m.value for m in app.markdown if m.value.startswith("#### ")][0]
    assert first.startswith("#### Residual stream (the term you asked about)")
    app.text_input(key="gl_search").set_value("softmax").run()
    heads = [m.value for m in app.markdown if m.value.startswith("#### ")]
    assert "#### Softmax" in heads and "#### Residual stream" not in heads and len(heads) < 10


def test_unknown_glossary_term_is_a_warning(tiny_gpt2_dir, monkeypatch):
    at = app_test(tiny_gpt2_dir, monkeypatch, "Glossary")
    at.query_params["term"] = "<script>"
    at.run()
    assert not at.exception and any("no term" in w.value for w in at.warning)


@pytest.mark.parametrize("page", ["Start here", "Inside the model", "Model", "Attention", "Heads", "Logit lens",
                                  "Probes", "Patching", "Features", "Reproductions", "Train", "Glossary"])
def test_every_page_explains_itself(tiny_gpt2_dir, monkeypatch, page):
    at = app_test(tiny_gpt2_dir, monkeypatch, page).run()
    assert not at.exception, at.exception
    assert any(e.label.startswith("What am I looking at?") for e in at.expander)
