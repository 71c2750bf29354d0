"""End to end in a real browser: `streamlit run app.py`, driven by Playwright on Debian's chromium."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / "docs" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tiny_gpt2_dir):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian package `chromium`); browser test skipped")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    port = _free_port()
    env = dict(os.environ, WORKBENCH_DEFAULT_MODEL=str(tiny_gpt2_dir), HF_HUB_OFFLINE="1")
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


@pytest.mark.slow
def test_browser_prompt_head_switch_and_screenshots(server):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(server)
        try:
            page.wait_for_selector(".js-plotly-plot", timeout=120_000)
        except Exception:
            page.screenshot(path=str(SHOTS / "failure.png"), full_page=True)
            raise
        box = page.locator("textarea").first
        box.fill("the cat sat on the mat. the cat sat on the mat.")
        box.press("Control+Enter")
        page.wait_for_timeout(1500)
        page.wait_for_selector(".js-plotly-plot", timeout=120_000)
        page.get_by_text("Head 0.0 attention pattern").first.wait_for(timeout=30_000)
        page.screenshot(path=str(SHOTS / "attention.png"), full_page=True)
        # switch head through the selectbox
        page.locator('[data-testid="stSelectbox"]').nth(1).click()
        page.get_by_role("option", name="0.2").click()
        page.get_by_text("Head 0.2 attention pattern").first.wait_for(timeout=30_000)
        assert page.locator(".js-plotly-plot").count() >= 2
        page.screenshot(path=str(SHOTS / "attention-head-0.2.png"), full_page=True)
        page.get_by_text("Model", exact=True).first.click()
        page.get_by_text("Current model:").first.wait_for(timeout=30_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(SHOTS / "model.png"), full_page=True)
        page.get_by_text("Reproductions", exact=True).first.click()
        page.get_by_text("Results", exact=True).first.wait_for(timeout=30_000)
        page.screenshot(path=str(SHOTS / "reproductions.png"), full_page=True)
        assert not page.locator('[data-testid="stException"]').count()
        browser.close()
