"""Browser tour of the Model page's backend picker, in headless Chromium: NDIF (offline here, no key) says what it
needs; a model loaded on nnsight becomes the current model, its backend in the link; another page runs on it."""
from __future__ import annotations

import urllib.parse

import pytest

from tests.app import browser as steps
from tests.app.browser import ARGS, CHROMIUM, WAIT_MS


@pytest.fixture
def offline_ndif(monkeypatch):
    """Before the server starts: no key, and an NDIF host where nothing listens."""
    monkeypatch.delenv("NDIF_API_KEY", raising=False)
    monkeypatch.setenv("NDIF_HOST", "http://127.0.0.1:9")


@pytest.mark.browser
def test_backend_picker_in_the_browser(offline_ndif, server, shots):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(server + "/?page=Model")
            page.get_by_text("Run on").first.wait_for(timeout=WAIT_MS)
            steps.settle(page)
            page.get_by_text("NDIF (remote)").click()
            page.get_by_text("NDIF's model list is unavailable").first.wait_for(timeout=WAIT_MS)
            assert page.get_by_text("NDIF needs an API key").count()
            steps.shot(page, shots, "model-ndif-offline")
            steps.no_exception(page)
            page.get_by_text("nnsight (here)").click()
            steps.settle(page)
            page.get_by_role("button", name="Load", exact=True).click()
            page.get_by_text("on nnsight (here)").first.wait_for(timeout=WAIT_MS)
            steps.settle(page)
            q = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
            assert q["model"][0].startswith("nnsight:")
            steps.shot(page, shots, "model-nnsight")
            steps.open(page, "Attention", "attention pattern")
            page.wait_for_selector(".js-plotly-plot", timeout=WAIT_MS)
            steps.no_exception(page)
            steps.shot(page, shots, "attention-on-nnsight")
        finally:
            page.close()
            browser.close()
