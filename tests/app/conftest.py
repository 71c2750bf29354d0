"""Fixtures of the browser tests: a `streamlit run app.py` server on 127.0.0.1 (``server``: one per test;
``tour_server``: one per test module, shared by that module's per-page tests), on the model ``WORKBENCH_E2E_MODEL``
or the tiny test GPT-2; a headless Chromium per module (``tour_browser``) and a fresh page per test on the shared
server (``tour_page``, screenshotted to ``failure-<test>.png`` when the test fails); and where screenshots go
(``shots``: ``WORKBENCH_SCREENSHOTS`` or a temp folder)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app.browser import ARGS, CHROMIUM, WAIT_MS, free_port

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def model_name(tiny_gpt2_dir) -> str:
    return os.environ.get("WORKBENCH_E2E_MODEL") or str(tiny_gpt2_dir)


@pytest.fixture
def shots(tmp_path) -> Path:
    out = Path(os.environ.get("WORKBENCH_SCREENSHOTS") or tmp_path / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _serve(model: str, scratch: Path) -> Iterator[str]:
    """Start `streamlit run app.py` with ``model`` as the default model and results/caches in ``scratch``; yield
    its URL once healthy; stop it after."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian package `chromium`); browser test skipped")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    port = free_port()
    env = dict(os.environ, WORKBENCH_DEFAULT_MODEL=model, HF_HUB_OFFLINE="1",
               WORKBENCH_RESULTS=str(scratch / "results"), WORKBENCH_CACHE=str(scratch / "cache"))
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


@pytest.fixture
def server(model_name, tmp_path):
    yield from _serve(model_name, tmp_path)


@pytest.fixture(scope="module")
def tour_server(tiny_gpt2_dir, tmp_path_factory):
    yield from _serve(os.environ.get("WORKBENCH_E2E_MODEL") or str(tiny_gpt2_dir), tmp_path_factory.mktemp("tour"))


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
