"""End to end in a real browser: `streamlit run app.py`, driven by Playwright on Debian's chromium, one test per
page or feature on one server per module (``tour_server``), each on a fresh page (its own session).

What a researcher does: types a prompt (blank lines, indentation, an emoji split over byte tokens), hovers a
token and locks it, clicks a small multiple and a Heads heatmap cell to select a head, round-trips the state
through the URL (and checks a later choice wins over the link), opens a bad link (warned once), downloads a figure
as HTML (plotly.js inline, opened offline) and PNG (a real PNG), meets the vocabulary and long-prompt warnings,
runs a probe sweep, trains live and stops, stops a running reproduction and runs a smoke test. Screenshots go to a
temp folder; to refresh the README's set on the bundled default model run ``WORKBENCH_SCREENSHOTS=docs/screenshots
WORKBENCH_E2E_MODEL=code-gpt2 WORKBENCH_E2E_TRAIN_MS=60000 pytest tests/app/test_e2e_browser.py`` (the last lets the
live training run reach its phase change before the shot).
"""
from __future__ import annotations

import os
import re
import urllib.parse
from functools import cache
from pathlib import Path

import pytest

from tests.app import browser as steps
from tests.app.browser import PROMPT, WAIT_MS

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@cache
def _shape(model: str) -> tuple[int, int]:
    """(n_layers, n_heads) of the tour's model."""
    from interp import load_model

    info = load_model(model).info
    return info.n_layers, info.n_heads


@pytest.fixture
def tour_model(tiny_gpt2_dir) -> str:
    return os.environ.get("WORKBENCH_E2E_MODEL") or str(tiny_gpt2_dir)


def _type_prompt(page, text: str) -> None:
    box = page.locator("textarea").first
    box.fill(text)
    box.press("Control+Enter")


def test_attention_prompt_token_strip_and_head_clicks(tour_page, tour_browser, shots, tour_model):
    page = tour_page
    _type_prompt(page, PROMPT)
    page.wait_for_url(re.compile(r"prompt="), timeout=WAIT_MS)  # the typed prompt went into the link
    steps.settle(page)
    page.get_by_text("Head 0.0 attention pattern").first.wait_for(timeout=WAIT_MS)
    # the token strip: whitespace, newlines and a split emoji are visible; hover shows attention, click locks
    strip = page.frame_locator("iframe").first
    strip.locator("#strip").get_by_text("area").first.wait_for(timeout=WAIT_MS)
    page.wait_for_timeout(1000)
    steps.shot(page, shots, "attention")
    toks = strip.locator(".tok")
    assert toks.count() > 10 and strip.locator(".ws").count() > 5
    assert "↵" in strip.locator("#strip").inner_text() and "⟨" in strip.locator("#strip").inner_text()
    toks.nth(4).hover()
    assert "token 4" in strip.locator("#info").inner_text()
    toks.nth(4).click()
    toks.nth(2).hover()  # locked: hovering elsewhere does not move it
    assert "token 4" in strip.locator("#info").inner_text() and "locked" in strip.locator("#info").inner_text()
    page.locator("iframe").first.scroll_into_view_if_needed()
    steps.shot(page, shots, "attention-token-hover")
    # click-to-select: head 2 in the layer's small multiples opens it above
    steps.click_plot(page, "chart-layer-heads", "x3y3", 0.5, 0.5)
    page.get_by_text("Head 0.2 attention pattern").first.wait_for(timeout=WAIT_MS)
    steps.settle(page)
    steps.shot(page, shots, "attention-head-0.2")
    # every layer x head: click layer 1's head 1 (row 2, column 2)
    n_heads = page.locator(".st-key-chart-layer-heads .nsewdrag").count()
    assert n_heads == _shape(tour_model)[1]
    steps.click_plot(page, "chart-all-heads", f"x{n_heads + 2}y{n_heads + 2}", 0.5, 0.5)
    page.get_by_text("Head 1.1 attention pattern").first.wait_for(timeout=WAIT_MS)
    steps.settle(page)
    page.locator(".st-key-chart-all-heads").scroll_into_view_if_needed()
    steps.shot(page, shots, "all-heads")
    steps.no_exception(page)
    # the link holds prompt, layer and head and opens the same view in a new tab
    q = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
    assert q["layer"] == ["1"] and q["head"] == ["1"] and q["prompt"] == [PROMPT] and q["page"] == ["Attention"]
    other = tour_browser.new_page(viewport={"width": 1400, "height": 1800})
    try:
        other.goto(page.url)
        other.get_by_text("Head 1.1 attention pattern").first.wait_for(timeout=WAIT_MS)
        assert other.locator("textarea").first.input_value() == PROMPT
    finally:
        other.close()


def test_a_later_choice_wins_over_the_link_and_the_prompt_is_shared(tour_page, tour_server):
    page = tour_page
    page.goto(tour_server + "/?page=Attention&layer=1&head=1&prompt=" + urllib.parse.quote(PROMPT))
    page.get_by_text("Head 1.1 attention pattern").first.wait_for(timeout=WAIT_MS)
    page.locator(".st-key-attn_head").click()
    page.get_by_role("option", name="1.3").click()
    page.get_by_text("Head 1.3 attention pattern").first.wait_for(timeout=WAIT_MS)
    steps.open(page, "Logit lens", "One token across layers")
    assert page.locator("textarea").first.input_value() == PROMPT  # the prompt is shared
    steps.open(page, "Attention", "Attention explorer")
    page.get_by_text("Head 1.3 attention pattern").first.wait_for(timeout=WAIT_MS)
    steps.no_exception(page)


def test_a_bad_link_is_warned_about_once(tour_browser, tour_server, shots):
    bad = tour_browser.new_page(viewport={"width": 1400, "height": 1100})
    try:
        bad.goto(tour_server + "/?page=Nope&layer=x&head=99")
        bad.get_by_text("does not exist").first.wait_for(timeout=WAIT_MS)
        assert bad.get_by_text("layer='x' is not a number").count()
        steps.settle(bad)
        steps.shot(bad, shots, "bad-link-warned-once")
        steps.open(bad, "Model", "Current model:")
        assert not bad.get_by_text("does not exist").count()  # once, not on every page
    finally:
        bad.close()


def test_figure_downloads_html_offline_and_png(tour_page, tour_browser, tmp_path):
    page = tour_page
    page.get_by_text("Head 0.0 attention pattern").first.wait_for(timeout=WAIT_MS)
    steps.settle(page)
    page.locator(".st-key-html-head-pattern").scroll_into_view_if_needed()
    html = steps.download(page, page.locator(".st-key-html-head-pattern button").first,
                          tmp_path / "head.html").read_text()
    assert "<script src" not in html and len(html) > 1_000_000 and "Plotly.newPlot" in html  # plotly.js inline
    offline = tour_browser.new_context(offline=True)
    try:
        view = offline.new_page()
        view.goto((tmp_path / "head.html").as_uri())
        view.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
    finally:
        offline.close()
    steps.click_until(page, page.locator(".st-key-mkpng-head-pattern button").first, "Download PNG")
    png = steps.download(page, page.locator(".st-key-png-head-pattern button").first,
                         tmp_path / "head.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(tmp_path / "head.png") as im:
        assert im.width > 500 and im.height > 300
    steps.no_exception(page)


def test_a_long_prompt_offers_the_truncation_it_mentions(tour_page, shots):
    page = tour_page
    _type_prompt(page, "x = 1\n" * 400)
    page.get_by_text(re.compile(r"reads at most \d+")).first.wait_for(timeout=WAIT_MS)
    steps.shot(page, shots, "long-prompt")
    steps.click_until(page, page.get_by_role("button", name=re.compile(r"Keep the first \d+ tokens")),
                      re.compile(r"\d+ tokens · model"))
    steps.no_exception(page)


def test_a_prompt_the_vocabulary_cannot_express_is_warned_about(tour_browser, tour_server, shots):
    from interp.loading import bundled_models

    if "attn-only-1l" not in bundled_models():
        pytest.skip("bundled attn-only-1l absent")
    page = tour_browser.new_page(viewport={"width": 1400, "height": 1400})
    try:
        page.goto(tour_server + "/?page=Attention&model=attn-only-1l&prompt="
                  + urllib.parse.quote("The cat sat on the mat"))
        page.get_by_text("special or unknown to attn-only-1l").first.wait_for(timeout=WAIT_MS)
        steps.settle(page)
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=WAIT_MS)
        page.wait_for_timeout(1500)  # let the figures draw before the shot
        steps.shot(page, shots, "vocabulary-warning")
        page.get_by_role("button", name="a random segment repeated (induction)").click()
        page.get_by_text("special or unknown").first.wait_for(state="detached", timeout=WAIT_MS)
        steps.settle(page)
        assert page.locator("textarea").first.input_value().startswith("t5 t17")
    finally:
        page.close()


def test_heads_page_click_selects_a_head_shared_in_the_link(tour_page, shots, tour_model):
    page = tour_page
    n_layers, n_heads = _shape(tour_model)
    steps.open(page, "Heads", "Scores by layer and head")
    steps.settle(page)
    assert page.locator(".js-plotly-plot").count() >= 6  # five detectors + ablation + the pattern
    steps.shot(page, shots, "heads")
    assert page.get_by_text("No head scores above 0.5").count() or page.get_by_text("strongest").count() == 0
    steps.click_plot(page, "chart-heads-induction", "xy", 2.5 / n_heads, 1 - 0.5 / n_layers)  # last layer, head 2
    head = f"{n_layers - 1}.2"
    page.get_by_text(f"Head {head} attention pattern on BOS").first.wait_for(timeout=WAIT_MS)
    steps.settle(page)
    q = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
    assert (q["layer"], q["head"]) == ([str(n_layers - 1)], ["2"])  # the selection is shared and in the link
    steps.shot(page, shots, "heads-clicked")
    steps.no_exception(page)


def test_logit_lens_page_draws_the_grid_and_a_trajectory(tour_page, shots):
    page = tour_page
    steps.open(page, "Logit lens", "One token across layers")
    steps.settle(page)
    assert page.locator(".js-plotly-plot").count() >= 2  # the grid and the token trajectory
    steps.shot(page, shots, "logit-lens")
    steps.no_exception(page)


def test_patching_page_attribution_then_exact(tour_page, shots):
    page = tour_page
    steps.open(page, "Patching", "Clean prompt")
    steps.click_until(page, page.get_by_role("button", name="Attribution patching (fast)"), "Clean metric")
    steps.click_until(page, page.get_by_role("button", name="Exact sweep"), "Attribution vs exact")
    steps.settle(page)
    assert page.locator(".js-plotly-plot").count() >= 3  # heatmaps, the scatter, DLA bars
    steps.shot(page, shots, "patching")
    steps.no_exception(page)


def test_features_page_shows_the_sae_browser_and_the_superposition_toy(tour_page, shots):
    page = tour_page
    steps.open(page, "Features", "Features: sparse autoencoder latents")
    page.get_by_text("Superposition: 5 features in 2 dimensions").first.wait_for(timeout=WAIT_MS)
    steps.settle(page)
    assert page.get_by_role("button", name="Train SAE").count() == 1
    steps.shot(page, shots, "features")
    steps.no_exception(page)


def test_probes_page_runs_a_sweep_on_a_pasted_csv(tour_page, shots):
    page = tour_page
    steps.open(page, "Probes", "Linear probes")
    page.get_by_text("Paste a CSV", exact=True).click()
    page.get_by_text(re.compile(r"\d+ rows, 2 classes")).first.wait_for(timeout=WAIT_MS)
    steps.click_until(page, page.get_by_role("button", name="Run probe sweep"), "Best layer")
    steps.settle(page)
    assert page.locator(".js-plotly-plot").count() >= 1
    assert page.get_by_text("95% interval").count()
    steps.shot(page, shots, "probes")
    steps.no_exception(page)


def test_train_page_draws_step_zero_and_stops(tour_page, shots):
    page = tour_page
    steps.open(page, "Train", "Train: watch induction heads form")
    steps.click_until(page, page.get_by_role("button", name="Train", exact=True), "Best head's induction score")
    page.wait_for_timeout(int(os.environ.get("WORKBENCH_E2E_TRAIN_MS", "4000")))
    steps.shot(page, shots, "train")
    page.locator(".st-key-train_stop").get_by_role("button", name="Stop").click()  # not the toolbar Stop
    page.get_by_text(re.compile(r"Training stopped at step \d+|Trained \d+ steps")).first.wait_for(timeout=WAIT_MS)
    steps.no_exception(page)


def test_model_page_shows_the_card(tour_page, shots):
    page = tour_page
    steps.open(page, "Model", "Current model:")
    steps.settle(page)
    page.get_by_text("Model card").first.wait_for(timeout=WAIT_MS)
    steps.shot(page, shots, "model")
    steps.no_exception(page)


def test_reproductions_stop_stays_visible_and_a_smoke_test_is_labelled(tour_page, shots):
    page = tour_page
    steps.open(page, "Reproductions", "Results")
    page.locator(".st-key-repro_exp").click()
    page.get_by_role("option", name="othello-world-model").click()
    steps.settle(page)
    page.locator(".st-key-repro_run button").click()
    page.locator('[data-testid="stProgress"]').first.wait_for(timeout=WAIT_MS)
    stop = page.locator(".st-key-repro_stop button")
    assert stop.is_visible()
    steps.shot(page, shots, "reproductions-running")
    stop.click()
    page.get_by_text(re.compile(r"Stopped: othello-world-model")).first.wait_for(timeout=WAIT_MS)
    steps.settle(page)
    steps.shot(page, shots, "reproductions-stopped")
    page.locator(".st-key-repro_exp").click()
    page.get_by_role("option", name="model-anatomy").click()
    steps.settle(page)
    steps.click_until(page, page.locator(".st-key-repro_run button"), "Smoke test (ci preset)")
    steps.settle(page)
    # the run that just finished is the selected result, labelled a smoke test in its own words
    shown = page.locator(".st-key-repro_result").first.evaluate(
        "el => [...el.querySelectorAll('input')].map(i => i.value).join(' ') + ' ' + el.textContent")
    assert re.search(r"model-anatomy · .*smoke test (passed|failed)", shown), shown
    assert not re.search(r"model-anatomy · .*· reproduced", shown)
    assert page.locator(".js-plotly-plot").count() >= 1  # interactive figures
    steps.shot(page, shots, "reproductions")
    steps.no_exception(page)


def test_every_page_of_the_app_has_a_test_here():
    """A page added to app.py's PAGES without a browser test (here or in another browser-marked module) fails this
    check."""
    import app

    names = "".join(f.read_text() for f in Path(__file__).parent.glob("test_*.py") if "browser" in f.read_text()[:4000])
    missing = [p for p in app.PAGES if f'"{p}"' not in names]
    assert not missing, f"pages without a browser test: {missing}"
