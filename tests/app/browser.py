"""The Playwright steps the browser tours are written in (open a page, wait for Streamlit, click until something
shows, download, screenshot) and their constants. Chromium is Debian's (``apt-get install chromium``); the
``server``, ``shots`` and ``model_name`` fixtures live in ``tests/app/conftest.py``."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
WAIT_MS = 180_000  # generous: CI machines are small and the first forward pass loads torch kernels
PROMPT = "def area(width, height):\n\n    return width * height  # 😀\n\narea(3, 4)"


ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_app(model: str, scratch: Path, log: Path | None = None) -> Iterator[str]:
    """Start `streamlit run app.py` with ``model`` as the default model and results/caches in ``scratch``; yield
    its URL once healthy; stop it after. ``log``: the server's console (stdout and stderr) is written there."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian package `chromium`); browser test skipped")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    port = free_port()
    env = dict(os.environ, WORKBENCH_DEFAULT_MODEL=model, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1",
               WORKBENCH_RESULTS=str(scratch / "results"), WORKBENCH_CACHE=str(scratch / "cache"))
    out = log.open("w") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
                             str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--server.fileWatcherType", "none"],
                            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
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
        if log is not None:
            out.close()


def open(page, name: str, ready_text: str) -> None:
    """Click a sidebar page and wait for a text that only that page shows."""
    page.locator('[data-testid="stSidebar"]').get_by_text(name, exact=True).click()
    page.get_by_text(ready_text).first.wait_for(timeout=WAIT_MS)
    page.wait_for_timeout(800)


def settle(page) -> None:
    """Wait until Streamlit is not running the script any more (its status widget disappears)."""
    page.wait_for_timeout(500)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=WAIT_MS)


def click_until(page, button, ready_text: str | re.Pattern, tries: int = 3) -> None:
    """Click ``button`` until ``ready_text`` shows; a click that lands while a rerun replaces the button is lost."""
    target = page.get_by_text(ready_text).first
    for attempt in range(tries):
        settle(page)
        button.click()
        try:
            target.wait_for(timeout=15_000)
            return
        except Exception:
            settle(page)  # still working (slow machine) or idle because the click was lost
            if target.is_visible():
                return
            if attempt == tries - 1:
                target.wait_for(timeout=WAIT_MS)


def no_exception(page) -> None:
    assert not page.locator('[data-testid="stException"]').count()


def shot(page, shots: Path, name: str) -> None:
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def click_plot(page, chart_key: str, subplot: str, fx: float, fy: float) -> None:
    """Move to and click the point at fractions (fx, fy) of one subplot's plotting area of a chart."""
    area = page.locator(f".st-key-{chart_key} .nsewdrag[data-subplot='{subplot}']").first
    area.scroll_into_view_if_needed()
    box = area.bounding_box()
    x, y = box["x"] + fx * box["width"], box["y"] + fy * box["height"]
    page.mouse.move(x, y)
    page.wait_for_timeout(300)
    page.mouse.click(x, y)


def download(page, button, target: Path) -> Path:
    with page.expect_download(timeout=WAIT_MS) as info:
        button.click()
    info.value.save_as(str(target))
    return target
