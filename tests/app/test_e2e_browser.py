"""End to end in a real browser: `streamlit run app.py`, driven by Playwright on Debian's chromium.

Tours every page and exercises what a researcher does: types a prompt (blank lines, indentation, an emoji split
over byte tokens), hovers a token and locks it, clicks a small multiple and a Heads heatmap cell to select a
head, round-trips the state through the URL (and checks a later choice wins over the link), opens a bad link
(warned once), downloads a figure as HTML (plotly.js inline, opened offline) and PNG (a real PNG), meets the
vocabulary and long-prompt warnings, runs a probe sweep, trains live and stops, stops a running reproduction and
runs a smoke test. Screenshots go to a temp folder; to refresh the README's set on the bundled default model run
``WORKBENCH_SCREENSHOTS=docs/screenshots WORKBENCH_E2E_MODEL=code-gpt2 WORKBENCH_E2E_TRAIN_MS=60000 pytest
tests/app/test_e2e_browser.py`` (the last lets the live training run reach its phase change before the shot).
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
WAIT_MS = 180_000  # generous: CI machines are small and the first forward pass loads torch kernels
PROMPT = "def area(width, height):\n\n    return width * height  # 😀\n\narea(3, 4)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def model_name(tiny_gpt2_dir) -> str:
    return os.environ.get("WORKBENCH_E2E_MODEL") or str(tiny_gpt2_dir)


@pytest.fixture
def shots(tmp_path) -> Path:
    out = Path(os.environ.get("WORKBENCH_SCREENSHOTS") or tmp_path / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def server(model_name, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian package `chromium`); browser test skipped")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    port = _free_port()
    env = dict(os.environ, WORKBENCH_DEFAULT_MODEL=model_name, HF_HUB_OFFLINE="1",
               WORKBENCH_RESULTS=str(tmp_path / "results"), WORKBENCH_CACHE=str(tmp_path / "cache"))
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
                             str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--server.fileWatcherType", "none"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("streamlit did not come up in 60 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _open(page, name: str, ready_text: str) -> None:
    """Click a sidebar page and wait for a text that only that page shows."""
    page.locator('[data-testid="stSidebar"]').get_by_text(name, exact=True).click()
    page.get_by_text(ready_text).first.wait_for(timeout=WAIT_MS)
    page.wait_for_timeout(800)


def _settle(page) -> None:
    """Wait until Streamlit is not running the script any more (its status widget disappears)."""
    page.wait_for_timeout(500)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=WAIT_MS)


def _click_until(page, button, ready_text: str | re.Pattern, tries: int = 3) -> None:
    """Click ``button`` until ``ready_text`` shows; a click that lands while a rerun replaces the button is lost."""
    target = page.get_by_text(ready_text).first
    for attempt in range(tries):
        _settle(page)
        button.click()
        try:
            target.wait_for(timeout=15_000)
            return
        except Exception:
            _settle(page)  # still working (slow machine) or idle because the click was lost
            if target.is_visible():
                return
            if attempt == tries - 1:
                target.wait_for(timeout=WAIT_MS)


def _no_exception(page) -> None:
    assert not page.locator('[data-testid="stException"]').count()


def _shot(page, shots: Path, name: str) -> None:
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def _click_plot(page, chart_key: str, subplot: str, fx: float, fy: float) -> None:
    """Move to and click the point at fractions (fx, fy) of one subplot's plotting area of a chart."""
    area = page.locator(f".st-key-{chart_key} .nsewdrag[data-subplot='{subplot}']").first
    area.scroll_into_view_if_needed()
    box = area.bounding_box()
    x, y = box["x"] + fx * box["width"], box["y"] + fy * box["height"]
    page.mouse.move(x, y)
    page.wait_for_timeout(300)
    page.mouse.click(x, y)


def _download(page, button, target: Path) -> Path:
    with page.expect_download(timeout=WAIT_MS) as info:
        button.click()
    info.value.save_as(str(target))
    return target


def _attention(page, browser, server, shots, tmp: Path) -> tuple[int, int]:
    """The Attention page's checks; returns the model's (n_layers, n_heads) as the figures show them."""
    box = page.locator("textarea").first
    box.fill(PROMPT)
    box.press("Control+Enter")
    page.wait_for_url(re.compile(r"prompt="), timeout=WAIT_MS)  # the typed prompt went into the link
    _settle(page)
    page.get_by_text("Head 0.0 attention pattern").first.wait_for(timeout=WAIT_MS)
    # the token strip: whitespace, newlines and a split emoji are visible; hover shows attention, click locks
    strip = page.frame_locator("iframe").first
    strip.locator("#strip").get_by_text("area").first.wait_for(timeout=WAIT_MS)
    page.wait_for_timeout(1000)
    _shot(page, shots, "attention")
    toks = strip.locator(".tok")
    assert toks.count() > 10 and strip.locator(".ws").count() > 5
    assert "↵" in strip.locator("#strip").inner_text() and "⟨" in strip.locator("#strip").inner_text()
    toks.nth(4).hover()
    assert "token 4" in strip.locator("#info").inner_text()
    toks.nth(4).click()
    toks.nth(2).hover()  # locked: hovering elsewhere does not move it
    assert "token 4" in strip.locator("#info").inner_text() and "locked" in strip.locator("#info").inner_text()
    page.locator("iframe").first.scroll_into_view_if_needed()
    _shot(page, shots, "attention-token-hover")
    # click-to-select: head 2 in the layer's small multiples opens it above
    _click_plot(page, "chart-layer-heads", "x3y3", 0.5, 0.5)
    page.get_by_text("Head 0.2 attention pattern").first.wait_for(timeout=WAIT_MS)
    _settle(page)
    _shot(page, shots, "attention-head-0.2")
    # every layer x head: click layer 1's head 1 (row 2, column 2)
    n_heads = page.locator(".st-key-chart-layer-heads .nsewdrag").count()
    n_layers = page.locator(".st-key-chart-all-heads .nsewdrag").count() // n_heads
    _click_plot(page, "chart-all-heads", f"x{n_heads + 2}y{n_heads + 2}", 0.5, 0.5)
    page.get_by_text("Head 1.1 attention pattern").first.wait_for(timeout=WAIT_MS)
    _settle(page)
    page.locator(".st-key-chart-all-heads").scroll_into_view_if_needed()
    _shot(page, shots, "all-heads")
    _no_exception(page)

    # URL round trip: the link holds prompt, layer and head and opens the same view in a new tab
    q = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
    assert q["layer"] == ["1"] and q["head"] == ["1"] and q["prompt"] == [PROMPT] and q["page"] == ["Attention"]
    other = browser.new_page(viewport={"width": 1400, "height": 1800})
    other.goto(page.url)
    other.get_by_text("Head 1.1 attention pattern").first.wait_for(timeout=WAIT_MS)
    assert other.locator("textarea").first.input_value() == PROMPT
    # a later choice wins over the link: pick 1.3, visit Heads, come back
    other.locator(".st-key-attn_head").click()
    other.get_by_role("option", name="1.3").click()
    other.get_by_text("Head 1.3 attention pattern").first.wait_for(timeout=WAIT_MS)
    _open(other, "Logit lens", "One token across layers")
    assert other.locator("textarea").first.input_value() == PROMPT  # the prompt is shared
    _open(other, "Attention", "Attention explorer")
    other.get_by_text("Head 1.3 attention pattern").first.wait_for(timeout=WAIT_MS)
    other.close()
    # a bad link: warned once, dropped
    bad = browser.new_page(viewport={"width": 1400, "height": 1100})
    bad.goto(server + "/?page=Nope&layer=x&head=99")
    bad.get_by_text("does not exist").first.wait_for(timeout=WAIT_MS)
    assert bad.get_by_text("layer='x' is not a number").count()
    _settle(bad)
    _shot(bad, shots, "bad-link-warned-once")
    _open(bad, "Model", "Current model:")
    assert not bad.get_by_text("does not exist").count()  # once, not on every page
    bad.close()

    # downloads: the HTML has plotly.js inline and renders offline; the PNG is a real PNG
    page.locator(".st-key-html-head-pattern").scroll_into_view_if_needed()
    html = _download(page, page.locator(".st-key-html-head-pattern button").first, tmp / "head.html").read_text()
    assert "<script src" not in html and len(html) > 1_000_000 and "Plotly.newPlot" in html  # plotly.js inline
    offline = browser.new_context(offline=True)
    view = offline.new_page()
    view.goto((tmp / "head.html").as_uri())
    view.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
    offline.close()
    _click_until(page, page.locator(".st-key-mkpng-head-pattern button").first, "Download PNG")
    png = _download(page, page.locator(".st-key-png-head-pattern button").first, tmp / "head.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(tmp / "head.png") as im:
        assert im.width > 500 and im.height > 300
    _no_exception(page)

    # long prompt: the message offers the truncation it mentions
    box = page.locator("textarea").first
    box.fill("x = 1\n" * 400)
    box.press("Control+Enter")
    page.get_by_text(re.compile(r"reads at most \d+")).first.wait_for(timeout=WAIT_MS)
    _shot(page, shots, "long-prompt")
    _click_until(page, page.get_by_role("button", name=re.compile(r"Keep the first \d+ tokens")),
                 re.compile(r"\d+ tokens · model"))
    _no_exception(page)
    page.locator(".st-key-attn_prompt_ex0 button").first.click()  # back to a readable example prompt for the shots
    _settle(page)
    return n_layers, n_heads


def _vocabulary(browser, server, shots) -> None:
    from interp.loading import bundled_models

    if "attn-only-1l" not in bundled_models():
        return
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(server + "/?model=attn-only-1l&prompt=" + urllib.parse.quote("The cat sat on the mat"))
    page.get_by_text("special or unknown to attn-only-1l").first.wait_for(timeout=WAIT_MS)
    _settle(page)
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=WAIT_MS)
    page.wait_for_timeout(1500)  # let the figures draw before the shot
    _shot(page, shots, "vocabulary-warning")
    page.get_by_role("button", name="a random segment repeated (induction)").click()
    page.get_by_text("special or unknown").first.wait_for(state="detached", timeout=WAIT_MS)
    _settle(page)
    assert page.locator("textarea").first.input_value().startswith("t5 t17")
    page.close()


@pytest.mark.slow
def test_browser_tour_of_every_page(server, shots, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800}, accept_downloads=True)
        try:
            page.goto(server)
            page.wait_for_selector(".js-plotly-plot", timeout=WAIT_MS)
            n_layers, n_heads = _attention(page, browser, server, shots, tmp_path)
            _vocabulary(browser, server, shots)

            _open(page, "Heads", "Scores by layer and head")
            _settle(page)
            assert page.locator(".js-plotly-plot").count() >= 6  # five detectors + ablation + the pattern
            _shot(page, shots, "heads")
            assert page.get_by_text("No head scores above 0.5").count() or page.get_by_text("strongest").count() == 0
            _click_plot(page, "chart-heads-induction", "xy", 2.5 / n_heads, 1 - 0.5 / n_layers)  # last layer, head 2
            head = f"{n_layers - 1}.2"
            page.get_by_text(f"Head {head} attention pattern on BOS").first.wait_for(timeout=WAIT_MS)
            _settle(page)
            q = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
            assert (q["layer"], q["head"]) == ([str(n_layers - 1)], ["2"])  # the selection is shared and in the link
            _shot(page, shots, "heads-clicked")
            _no_exception(page)

            _open(page, "Logit lens", "One token across layers")
            _settle(page)
            assert page.locator(".js-plotly-plot").count() >= 2  # the grid and the token trajectory
            _shot(page, shots, "logit-lens")
            _no_exception(page)

            # Patching: attribution (one click), then the exact sweep, then both side by side
            _open(page, "Patching", "Clean prompt")
            _click_until(page, page.get_by_role("button", name="Attribution patching (fast)"), "Clean metric")
            _click_until(page, page.get_by_role("button", name="Exact sweep"), "Attribution vs exact")
            _settle(page)
            assert page.locator(".js-plotly-plot").count() >= 3  # heatmaps, the scatter, DLA bars
            _shot(page, shots, "patching")
            _no_exception(page)

            # Features: the SAE browser (or the train panel when the model has none) and the live superposition toy
            _open(page, "Features", "Features: sparse autoencoder latents")
            page.get_by_text("Superposition: 5 features in 2 dimensions").first.wait_for(timeout=WAIT_MS)
            _settle(page)
            assert page.get_by_role("button", name="Train SAE").count() == 1
            _shot(page, shots, "features")
            _no_exception(page)

            _open(page, "Probes", "Linear probes")
            page.get_by_text("Paste a CSV", exact=True).click()
            page.get_by_text(re.compile(r"\d+ rows, 2 classes")).first.wait_for(timeout=WAIT_MS)
            _click_until(page, page.get_by_role("button", name="Run probe sweep"), "Best layer")
            _settle(page)
            assert page.locator(".js-plotly-plot").count() >= 1
            assert page.get_by_text("95% interval").count()
            _shot(page, shots, "probes")
            _no_exception(page)

            # Train: start the fast preset; step 0 is drawn at once; stop the run
            _open(page, "Train", "Train: watch induction heads form")
            _click_until(page, page.get_by_role("button", name="Train", exact=True), "Best head's induction score")
            page.wait_for_timeout(int(os.environ.get("WORKBENCH_E2E_TRAIN_MS", "4000")))
            _shot(page, shots, "train")
            page.locator(".st-key-train_stop").get_by_role("button", name="Stop").click()  # not the toolbar Stop
            page.get_by_text(re.compile(r"Training stopped at step \d+|Trained \d+ steps")).first.wait_for(
                timeout=WAIT_MS)
            _no_exception(page)

            _open(page, "Model", "Current model:")
            _settle(page)  # the Train page's elements are gone only when this run ends
            page.get_by_text("Model card").first.wait_for(timeout=WAIT_MS)
            _shot(page, shots, "model")

            # Reproductions: Stop stays visible during a run and a stopped run says so; then a smoke test
            _open(page, "Reproductions", "Results")
            page.locator(".st-key-repro_exp").click()
            page.get_by_role("option", name="othello-world-model").click()
            _settle(page)
            page.locator(".st-key-repro_run button").click()
            page.locator('[data-testid="stProgress"]').first.wait_for(timeout=WAIT_MS)
            stop = page.locator(".st-key-repro_stop button")
            assert stop.is_visible()
            _shot(page, shots, "reproductions-running")
            stop.click()
            page.get_by_text(re.compile(r"Stopped: othello-world-model")).first.wait_for(timeout=WAIT_MS)
            _settle(page)
            _shot(page, shots, "reproductions-stopped")
            page.locator(".st-key-repro_exp").click()
            page.get_by_role("option", name="model-anatomy").click()
            _settle(page)
            _click_until(page, page.locator(".st-key-repro_run button"), "Smoke test (ci preset)")
            _settle(page)
            # the run that just finished is the selected result, labelled a smoke test
            shown = page.locator(".st-key-repro_result").first.evaluate(
                "el => [...el.querySelectorAll('input')].map(i => i.value).join(' ') + ' ' + el.textContent")
            assert re.search(r"model-anatomy · .*smoke test", shown), shown
            assert page.locator(".js-plotly-plot").count() >= 1  # interactive figures
            _shot(page, shots, "reproductions")
            _no_exception(page)
        except Exception:
            page.screenshot(path=str(shots / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()
