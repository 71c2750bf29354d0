"""Fixtures of the browser tests: a `streamlit run app.py` server on 127.0.0.1 (``server``: one per test;
``tour_server``: one per test module, shared by that module's per-page tests), on the model ``WORKBENCH_E2E_MODEL``
or the tiny test GPT-2; a headless Chromium per module (``tour_browser``) and a fresh page per test on the shared
server (``tour_page``, screenshotted to ``failure-<test>.png`` when the test fails); and where screenshots go
(``shots``: ``WORKBENCH_SCREENSHOTS`` or a temp folder)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.app.browser import ARGS, CHROMIUM, WAIT_MS, serve_app

ROOT = Path(__file__).resolve().parent.parent.parent


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
    yield from serve_app(model_name, tmp_path)


@pytest.fixture(scope="module")
def tour_server(tiny_gpt2_dir, tmp_path_factory):
    yield from serve_app(os.environ.get("WORKBENCH_E2E_MODEL") or str(tiny_gpt2_dir), tmp_path_factory.mktemp("tour"))


@pytest.fixture(scope="module")
def tour_browser(tour_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so a fixture can tell at teardown whether the test failed."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def tour_page(request, tour_browser, tour_server, shots):
    """A fresh page (its own Streamlit session) on the module's server, opened on the Attention page."""
    page = tour_browser.new_page(viewport={"width": 1400, "height": 1800}, accept_downloads=True)
    try:
        page.goto(tour_server + "/?page=Attention&layer=0&head=0")  # the app's first page is Start here
        page.wait_for_selector(".js-plotly-plot", timeout=WAIT_MS)
        yield page
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            page.screenshot(path=str(shots / f"failure-{request.node.name}.png"), full_page=True)
    finally:
        page.close()
