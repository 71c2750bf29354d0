"""Fixtures of the browser tests: a `streamlit run app.py` server on 127.0.0.1 (``server``, on the model
``WORKBENCH_E2E_MODEL`` or the tiny test GPT-2) and where screenshots go (``shots``: ``WORKBENCH_SCREENSHOTS`` or
a temp folder)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.app.browser import CHROMIUM, free_port

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
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian package `chromium`); browser test skipped")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    port = free_port()
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


# The AppTest modules do ``from conftest import app_test``; with this file also named conftest, that import finds
# this module, so the helper is re-exported from the suite's root conftest.
from tests.conftest import app_test  # noqa: E402,F401
