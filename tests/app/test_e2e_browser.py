"""End to end in a real browser: `streamlit run app.py`, driven by Playwright on Debian's chromium.

Tours every page on the tiny offline model: types a prompt, switches heads, scans heads, opens the logit lens,
runs a probe sweep on the pasted example CSV, trains the
toy model live and stops it, and asserts the figures are in the DOM with no exception shown.
Screenshots go to a temp folder; to refresh the README's set on the bundled default model run
``WORKBENCH_SCREENSHOTS=docs/screenshots WORKBENCH_E2E_MODEL=stdlib-gpt2 WORKBENCH_E2E_TRAIN_MS=60000 pytest
tests/app/test_e2e_browser.py`` (the last lets the live training run reach its phase change before the shot).
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
WAIT_MS = 180_000  # generous: CI machines are small and the first forward pass loads torch kernels


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
def server(model_name):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian package `chromium`); browser test skipped")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    port = _free_port()
    env = dict(os.environ, WORKBENCH_DEFAULT_MODEL=model_name, HF_HUB_OFFLINE="1")
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
    """Click ``button`` until ``ready_text`` shows; a click that lands while a rerun replaces the button is lost.

    Between tries it waits for Streamlit to go idle: a lost click leaves the page idle without the text.
    """
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


@pytest.mark.slow
def test_browser_tour_of_every_page(server, shots):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        try:
            page.goto(server)
            page.wait_for_selector(".js-plotly-plot", timeout=WAIT_MS)
            # Attention: type a prompt, then switch head through the selectbox
            box = page.locator("textarea").first
            box.fill("def area(width, height):\n    return width * height\n\narea(3, 4)")
            box.press("Control+Enter")
            _settle(page)
            page.get_by_text("Head 0.0 attention pattern").first.wait_for(timeout=WAIT_MS)
            page.screenshot(path=str(shots / "attention.png"), full_page=True)
            page.locator('[data-testid="stSelectbox"]').nth(1).click()
            page.get_by_role("option", name="0.2").click()
            page.get_by_text("Head 0.2 attention pattern").first.wait_for(timeout=WAIT_MS)
            assert page.locator(".js-plotly-plot").count() >= 2
            page.screenshot(path=str(shots / "attention-head-0.2.png"), full_page=True)
            _no_exception(page)

            _open(page, "Heads", "Scores by layer and head")
            _settle(page)
            assert page.locator(".js-plotly-plot").count() >= 6  # five detectors + ablation + the pattern
            page.screenshot(path=str(shots / "heads.png"), full_page=True)
            _no_exception(page)

            _open(page, "Logit lens", "One token across layers")
            _settle(page)
            assert page.locator(".js-plotly-plot").count() >= 2  # the grid and the token trajectory
            page.screenshot(path=str(shots / "logit-lens.png"), full_page=True)
            _no_exception(page)

            _open(page, "Probes", "Linear probes")
            page.get_by_text("Paste a CSV", exact=True).click()
            page.get_by_text(re.compile(r"\d+ rows, 2 classes")).first.wait_for(timeout=WAIT_MS)
            _click_until(page, page.get_by_role("button", name="Run probe sweep"), "Best layer")
            _settle(page)
            assert page.locator(".js-plotly-plot").count() >= 1
            page.screenshot(path=str(shots / "probes.png"), full_page=True)
            _no_exception(page)

            # Train: start the fast preset, let the live chart update a few times, then stop the run
            _open(page, "Train", "Train: watch induction heads form")
            _click_until(page, page.get_by_role("button", name="Train", exact=True), "Best head's induction score")
            page.wait_for_timeout(int(os.environ.get("WORKBENCH_E2E_TRAIN_MS", "4000")))
            page.screenshot(path=str(shots / "train.png"), full_page=True)
            page.locator(".st-key-train_stop").get_by_role("button", name="Stop").click()  # not the toolbar Stop
            page.get_by_text(re.compile(r"Training stopped at step \d+|Trained \d+ steps")).first.wait_for(
                timeout=WAIT_MS)
            _no_exception(page)
            _open(page, "Model", "Current model:")
            page.screenshot(path=str(shots / "model.png"), full_page=True)
            _open(page, "Reproductions", "Results")
            page.screenshot(path=str(shots / "reproductions.png"), full_page=True)
            _no_exception(page)
        except Exception:
            page.screenshot(path=str(shots / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()
