"""Browser tour of issue 27's app fixes: links restore every page's state in a fresh browser context, clicks open
latents, the new circuit / neuron / activation / ablation pages, and how long interactions take to redraw.

The server's console is captured (``console`` fixture) and must hold no traceback. Interaction latencies (head
switch, heatmap cell click, latent open, Make PNG) are written to ``latencies.json`` beside the screenshots; set
``WORKBENCH_E2E_MODEL=code-gpt2`` for the bundled model (it ships an SAE), and ``WORKBENCH_SCREENSHOTS`` to keep
the shots.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.app import browser as steps
from tests.app.browser import ARGS, CHROMIUM, WAIT_MS, free_port

ROOT = Path(__file__).resolve().parent.parent.parent
pytestmark = pytest.mark.browser


def _serve(model: str, tmp: Path, log: Path):
    """``streamlit run app.py`` with its console (stdout and stderr) written to ``log``; yields the URL."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian package `chromium`); browser test skipped")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    port = free_port()
    env = dict(os.environ, WORKBENCH_DEFAULT_MODEL=model, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1",
               WORKBENCH_RESULTS=str(tmp / "results"), WORKBENCH_CACHE=str(tmp / "cache"))
    out = log.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
                             str(port), "--server.address", "127.0.0.1", "--server.headless", "true"],
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
        out.close()


@pytest.fixture
def sae_model(tmp_path_factory, tiny_gpt2_dir) -> str:
    """The E2E model if one is named (code-gpt2 ships an SAE), else the tiny GPT-2 with a small SAE beside it."""
    named = os.environ.get("WORKBENCH_E2E_MODEL")
    if named:
        return named
    import shutil

    from learned.sae import SAEConfig, SparseAutoencoder
    from learned.sae_files import write_sae_dir

    model = tmp_path_factory.mktemp("views") / "tiny-with-sae"
    shutil.copytree(tiny_gpt2_dir, model)
    sae = SparseAutoencoder(SAEConfig(d_in=32, d_sae=64, architecture="topk", k=4,
                                      hook_name="blocks.1.hook_resid_pre", hook_layer=1, model_name="tiny"), seed=0)
    write_sae_dir(model / "saes" / "tiny-topk", *sae.to_saelens())
    return str(model)


@pytest.fixture
def console(tmp_path) -> Path:
    return tmp_path / "console.log"


@pytest.fixture
def app_server(sae_model, tmp_path, console):
    yield from _serve(sae_model, tmp_path, console)


def app_server_model() -> str:
    return os.environ.get("WORKBENCH_E2E_MODEL", "")


def _timed(page, action, ready) -> float:
    """Seconds from ``action()`` until ``ready`` (a locator) shows and Streamlit is idle again."""
    steps.settle(page)
    t0 = time.perf_counter()
    action()
    ready.first.wait_for(timeout=WAIT_MS)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=WAIT_MS)
    return time.perf_counter() - t0


def _pick_option(page, key: str, option: str) -> None:
    page.locator(f".st-key-{key}").click()
    page.get_by_role("option", name=option, exact=True).click()


@pytest.mark.slow
def test_interaction_latencies(app_server, shots):
    """Head switch (Attention), heatmap cell click (Heads), latent open (Features) and Make PNG, each after a warm-up
    of the same kind, timed until the new view shows and Streamlit is idle; written to latencies.json."""
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {"head switch": [], "cell click": [], "latent open": [], "make png": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        try:
            page.goto(app_server + "/?page=Attention")
            page.get_by_text("attention pattern").first.wait_for(timeout=WAIT_MS)
            for h in (1, 2, 1, 3):
                times["head switch"].append(_timed(page, lambda h=h: _pick_option(page, "attn_head", f"0.{h}"),
                                                   page.get_by_text(f"Head 0.{h} attention pattern")))
            for i in range(3):
                times["make png"].append(_timed(
                    page, lambda: page.locator(".st-key-mkpng-head-pattern button").first.click(),
                    page.locator(".st-key-png-head-pattern button")))
                _pick_option(page, "attn_head", f"0.{i}")  # a new figure: the PNG is made again
                page.get_by_text(f"Head 0.{i} attention pattern").first.wait_for(timeout=WAIT_MS)
            steps.open(page, "Heads", "Scores by layer and head")
            steps.settle(page)
            area = page.locator(".st-key-chart-heads-induction .nsewdrag[data-subplot='xy']").first
            area.wait_for(timeout=WAIT_MS)
            n_heads = int(os.environ.get("WORKBENCH_E2E_HEADS", "6" if "code-gpt2" in app_server_model() else "4"))
            for h in (1, 2, 0, 3):
                times["cell click"].append(_timed(
                    page, lambda h=h: steps.click_plot(page, "chart-heads-induction", "xy", (h + 0.5) / n_heads,
                                                       0.5 / 4),
                    page.get_by_text(f".{h} attention pattern on BOS")))
            steps.open(page, "Features", "Features: sparse autoencoder latents")
            box = page.locator(".st-key-features_latent input")
            box.wait_for(timeout=WAIT_MS)
            page.get_by_text("Columns of W").first.wait_for(timeout=3 * WAIT_MS)  # the live toy has trained
            steps.settle(page)
            for latent in (3, 5, 7, 11):
                def open_latent(latent=latent):
                    box.fill(str(latent))
                    box.press("Enter")
                times["latent open"].append(_timed(page, open_latent, page.get_by_role(
                    "heading", name=f"Latent {latent}")))
        finally:
            browser.close()
            report: dict = {k: {"first": round(v[0], 3), "median_after_first": round(sorted(v[1:])[len(v[1:]) // 2], 3),
                                "all": [round(x, 3) for x in v]} for k, v in times.items() if len(v) > 1}
            report["load_average"] = os.getloadavg()
            (shots / "latencies.json").write_text(json.dumps(report, indent=2))
            print(json.dumps(report, indent=2))
    assert all(len(v) >= 3 for v in times.values())
