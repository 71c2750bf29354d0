"""The learner's tour in a real browser: the app opens on Start here (timed: first paint), a stop opens Inside the
model on code-gpt2, a clicked token is followed through every step with its live check, Generate draws seeded
text (the same again after Start over), a glossary link opens its term, and the guided path's stops open their
pages preset (Attention on the strongest head and on induction head 3.0, the logit lens, patching, the Othello
probe, training); the Features page opens without training anything (timed).

Screenshots go to a temp folder; for the README's set: ``WORKBENCH_SCREENSHOTS=docs/screenshots
WORKBENCH_E2E_MODEL=code-gpt2 pytest tests/app/test_e2e_learner.py``. Timings are printed (``-s``); the
benchmark of a cold start is ``benchmarks/bench_first_paint.py``.
"""
from __future__ import annotations

import json
import re
import time

import pytest

from tests.app import browser as steps
from tests.app.browser import ARGS, CHROMIUM, WAIT_MS

pytestmark = [pytest.mark.browser, pytest.mark.slow]
#: The pages this tour opens (test_e2e_browser checks every page of the app is toured somewhere).
PAGES_TOURED = ("Start here", "Inside the model", "Glossary")


def _start(page, n: int) -> None:
    """Back to Start here and open stop ``n``."""
    steps.open(page, "Start here", "Step 1.")
    steps.settle(page)
    page.locator(f".st-key-start_open_{n} button").click()


def test_learner_tour(server, shots):
    from playwright.sync_api import sync_playwright

    from interp.loading import bundled_models

    if "code-gpt2" not in bundled_models():
        pytest.skip("the guided path runs on the bundled code-gpt2")
    timings: dict[str, float] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1500})
        page = context.new_page()
        try:
            t0 = time.perf_counter()
            page.goto(server)
            page.get_by_text("Step 1. Tokens, embeddings and one forward pass").wait_for(timeout=WAIT_MS)
            timings["first_paint_start_here_s"] = time.perf_counter() - t0
            steps.settle(page)
            assert page.locator("[data-testid='stMarkdown']:has-text('Step ')").count() >= 7
            page.get_by_text("What am I looking at?").first.click()
            steps.shot(page, shots, "start-here")

            # a glossary link from the explanation opens its term (in a new tab)
            link = page.locator("a[href*='page=Glossary&term=']").first
            with context.expect_page() as new:
                link.click()
            gloss = new.value
            gloss.get_by_text("(the term you asked about)").wait_for(timeout=WAIT_MS)
            gloss.locator(".katex").first.wait_for(timeout=WAIT_MS)  # the formulas are drawn
            gloss.wait_for_timeout(1500)
            steps.shot(gloss, shots, "glossary")
            gloss.close()

            # stop 1: Inside the model on code-gpt2, the last token followed through every step
            page.locator(".st-key-start_open_1 button").click()
            page.get_by_text(re.compile(r"\d+ hand recomputations from the weights")).wait_for(timeout=WAIT_MS)
            steps.settle(page)
            text = page.get_by_text(re.compile(r"largest max \|difference\| is")).first.inner_text()
            worst = float(re.search(r"largest max \|difference\| is ([0-9.e+-]+)", text).group(1))
            assert worst < 1e-4, text
            assert page.get_by_text("recomputed by hand from the weights").count() >= 10
            page.wait_for_timeout(1000)
            steps.shot(page, shots, "inside-the-model")
            # click another token: ' width' (position 12) is followed instead
            page.locator(".st-key-wt_pos").get_by_text("12:", exact=False).first.click()
            page.get_by_text(re.compile(r"Following token '12:")).wait_for(timeout=WAIT_MS)
            steps.settle(page)
            page.get_by_text("Attention scores").first.scroll_into_view_if_needed()
            page.wait_for_timeout(800)
            page.screenshot(path=str(shots / "inside-the-model-attention.png"))
            page.get_by_text("3. From the last vector to the next token").scroll_into_view_if_needed()
            page.wait_for_timeout(500)
            page.screenshot(path=str(shots / "inside-the-model-probabilities.png"))
            steps.no_exception(page)

            # Generate: seeded, the same text after Start over
            page.locator(".st-key-wt_view").get_by_text("Generate").click()
            page.get_by_role("button", name="Next token").wait_for(timeout=WAIT_MS)
            steps.settle(page)
            page.get_by_role("slider").first.focus()  # the temperature (top-p is the second)
            for _ in range(10):  # temperature 1.0 -> 1.5 in steps of 0.05
                page.keyboard.press("ArrowRight")
            page.locator(".st-key-gen_topk input").fill("5")
            page.locator(".st-key-gen_topk input").press("Enter")
            page.get_by_text("5 of 4096 tokens survive").wait_for(timeout=WAIT_MS)
            steps.settle(page)
            page.locator(".st-key-chart-gen-table, .st-key-gen-table").first.scroll_into_view_if_needed()
            page.wait_for_timeout(800)
            page.screenshot(path=str(shots / "generate-distribution.png"))
            steps.click_until(page, page.get_by_role("button", name=re.compile(r"Generate \d+ tokens")),
                              re.compile(r"\(20 generated tokens"))
            steps.settle(page)
            first = page.locator("[data-testid='stCode']").first.inner_text()
            steps.shot(page, shots, "generate")
            steps.click_until(page, page.get_by_role("button", name="Start over"), re.compile(r"\(0 generated"))
            steps.click_until(page, page.get_by_role("button", name="Next token"), re.compile(r"\(1 generated token"))
            steps.click_until(page, page.get_by_role("button", name=re.compile(r"Generate \d+ tokens")),
                              re.compile(r"\(21 generated tokens"))
            steps.settle(page)
            again = page.locator("[data-testid='stCode']").first.inner_text()
            assert again.startswith(first.rstrip()[: len(first.rstrip()) - 5]), (first, again)
            steps.no_exception(page)

            # stop 2: Attention opens on the strongest head of the prompt, and says why
            _start(page, 2)
            page.get_by_text("Opened on the strongest head for this prompt. Head 2.4").first.wait_for(timeout=WAIT_MS)
            page.get_by_text("Head 2.4 attention pattern").first.wait_for(timeout=WAIT_MS)
            steps.settle(page)
            steps.shot(page, shots, "guided-attention-strongest-head")
            # stop 3: induction head 3.0 on a repeated line
            _start(page, 3)
            page.get_by_text("Head 3.0 attention pattern").first.wait_for(timeout=WAIT_MS)
            steps.settle(page)
            steps.shot(page, shots, "guided-induction-head")
            # stop 4: the logit lens
            _start(page, 4)
            page.locator(".st-key-chart-lens-token .js-plotly-plot").first.wait_for(timeout=WAIT_MS)
            steps.settle(page)
            page.wait_for_timeout(1500)
            steps.shot(page, shots, "guided-logit-lens")
            # stop 6: patching, attribution in one click
            _start(page, 6)
            page.get_by_text("Clean prompt").first.wait_for(timeout=WAIT_MS)
            steps.click_until(page, page.get_by_role("button", name="Attribution patching (fast)"), "Clean metric")
            steps.settle(page)
            steps.shot(page, shots, "guided-patching")
            # stop 5: the Othello probe, set up (the sweep itself is the reader's click: minutes)
            _start(page, 5)
            page.get_by_role("button", name="Run probe sweep").wait_for(timeout=WAIT_MS)
            steps.settle(page)
            steps.shot(page, shots, "guided-probe")
            # stop 7: training
            _start(page, 7)
            page.get_by_text("Train: watch induction heads form").first.wait_for(timeout=WAIT_MS)
            steps.settle(page)
            steps.no_exception(page)

            # Features opens without training the superposition toy
            t0 = time.perf_counter()
            steps.open(page, "Features", "Features: sparse autoencoder latents")
            page.get_by_text("Superposition: 5 features in 2 dimensions").first.wait_for(timeout=WAIT_MS)
            page.locator(".st-key-sp_train, .st-key-chart-superposition_columns").first.wait_for(timeout=WAIT_MS)
            timings["features_open_s"] = time.perf_counter() - t0
            steps.no_exception(page)
        finally:
            browser.close()
    print("timings:", json.dumps(timings))
