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
import re
import time
from pathlib import Path

import pytest

from tests.app import browser as steps
from tests.app.browser import ARGS, CHROMIUM, WAIT_MS, serve_app

ROOT = Path(__file__).resolve().parent.parent.parent
pytestmark = pytest.mark.browser


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
    yield from serve_app(sae_model, tmp_path, console)


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
            page.goto(app_server + "/?page=Attention&layer=0&head=0")  # not the strongest head the page would pick
            page.get_by_text("Head 0.0 attention pattern").first.wait_for(timeout=WAIT_MS)
            steps.settle(page)
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
            # the page has drawn to its end (the superposition toy trains only on request)
            page.locator(".st-key-sp_train, .st-key-chart-superposition_columns").first.wait_for(timeout=WAIT_MS)
            steps.settle(page)
            for latent in (3, 5, 7, 11):
                def open_latent(latent=latent):
                    # typed again if a rerun still in flight reset the box before Enter reached it (seen under load)
                    for _ in range(3):
                        box.fill(str(latent))
                        box.press("Enter")
                        try:
                            page.get_by_role("heading", name=f"Latent {latent}").first.wait_for(timeout=30_000)
                            return
                        except Exception:  # noqa: BLE001 - playwright's TimeoutError: type it again
                            steps.settle(page)
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


def _pair(model: str) -> dict[str, str]:
    """A pair the model tokenizes position by position (the bundled code model gets a copying pair)."""
    if "code-gpt2" in model:
        return {"clean": "x = [a, b]\ny = [a,", "corrupted": "x = [c, b]\ny = [c,", "answer": " b", "wrong": " a"}
    return {"clean": "the cat sat on the mat", "corrupted": "the dog sat on the mat", "answer": " the", "wrong": " a"}


def _type(page, key: str, text: str, area: bool = False) -> None:
    box = page.locator(f".st-key-{key} {'textarea' if area else 'input'}").first
    box.fill(text)
    box.press("Control+Enter" if area else "Enter")
    steps.settle(page)


def _console_clean(console: Path) -> None:
    text = console.read_text(errors="replace")
    for bad in ("Traceback", "ArrowTypeError", "Inotify queue overflowed"):
        assert bad not in text, f"the server console shows {bad!r}:\n{text[-3000:]}"


def _download_csv(page, key: str, tmp: Path):
    import pandas as pd

    button = page.locator(f".st-key-csv-{key} button").first
    button.scroll_into_view_if_needed()
    return pd.read_csv(steps.download(page, button, tmp / f"{key}.csv"))


def _click_table_row(page, key: str, row: int) -> None:
    """Click the selection cell of data row ``row`` (0-based) of a selectable st.dataframe."""
    grid = page.locator(f".st-key-table-{key} [data-testid='stDataFrame']").first
    grid.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    box = grid.bounding_box()
    x, y = box["x"] + 16, box["y"] + 36 + 35 * row + 17
    page.mouse.move(x, y)
    page.wait_for_timeout(200)
    page.mouse.click(x, y)


@pytest.mark.slow
def test_links_restore_patching_and_features_in_a_fresh_browser_context(app_server, sae_model, console, shots,
                                                                        tmp_path):
    """A Patching link opens its own pair with its analysis re-run, a Features link its latent, in a browser context
    that shares nothing with the one that made the link; clicks on the scatter and on a table row open latents;
    the server console stays free of tracebacks."""
    from playwright.sync_api import sync_playwright

    pair = _pair(sae_model)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800}, accept_downloads=True)
        try:
            page.goto(app_server + "/?page=Patching")
            page.get_by_text("Clean prompt").first.wait_for(timeout=WAIT_MS)
            steps.settle(page)
            assert not page.get_by_text("Deploy", exact=True).count()  # Streamlit's Deploy button is hidden
            _type(page, "patch_clean", pair["clean"], area=True)
            _type(page, "patch_corrupted", pair["corrupted"], area=True)
            _type(page, "patch_answer", pair["answer"])
            _type(page, "patch_wrong", pair["wrong"])
            steps.click_until(page, page.get_by_role("button", name="Attribution patching (fast)"), "Clean metric")
            steps.click_until(page, page.get_by_role("button", name="Exact sweep"), "Exact: head outputs")
            steps.settle(page)
            steps.no_exception(page)
            steps.shot(page, shots, "patching")
            page.wait_for_url(re.compile(r"run=attr%2Bexact"), timeout=WAIT_MS)
            link = page.url
            assert "clean=" in link and "prompt=" not in link
            fresh = browser.new_context(viewport={"width": 1400, "height": 1800})
            other = fresh.new_page()
            other.goto(link)
            other.get_by_text("Exact: head outputs").first.wait_for(timeout=WAIT_MS)
            steps.settle(other)
            assert other.locator(".st-key-patch_clean textarea").input_value() == pair["clean"]
            assert other.locator(".st-key-patch_corrupted textarea").input_value() == pair["corrupted"]
            assert other.locator(".st-key-patch_answer input").input_value() == pair["answer"]
            assert other.get_by_text("Attribution: head outputs").count() == 0  # exact shown, as in the link
            steps.no_exception(other)
            fresh.close()

            # Features: a click on a scatter point opens that latent
            steps.open(page, "Features", "Features: sparse autoencoder latents")
            page.locator(".st-key-features_latent input").wait_for(timeout=WAIT_MS)
            steps.settle(page)
            shown = int(page.locator(".st-key-features_latent input").input_value())
            points = page.locator(".st-key-chart-features-scatter .scatterlayer .trace").first.locator(
                ".points path")
            target = next(i for i in (7, 11, 3, 20) if i != shown and i < points.count())
            pt = points.nth(target)
            pt.scroll_into_view_if_needed()
            box = pt.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.wait_for_timeout(300)
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.get_by_role("heading", name=f"Latent {target}").first.wait_for(timeout=WAIT_MS)
            steps.settle(page)
            page.wait_for_function(f"() => document.querySelector('.st-key-features_latent input')?.value == "
                                   f"'{target}'", timeout=WAIT_MS)
            # ...and a click on a row of the latent table opens that row's latent
            table = _download_csv(page, "features-latents", tmp_path)
            row = 1 if int(table["latent"][1]) != target else 2
            want = int(table["latent"][row])
            _click_table_row(page, "features-latents", row)
            page.get_by_role("heading", name=f"Latent {want}").first.wait_for(timeout=WAIT_MS)
            steps.settle(page)
            steps.no_exception(page)
            page.locator(".st-key-features_latent").scroll_into_view_if_needed()
            steps.shot(page, shots, "features")
            page.wait_for_url(re.compile(rf"latent={want}(&|$)"), timeout=WAIT_MS)
            link = page.url
            fresh = browser.new_context(viewport={"width": 1400, "height": 1800})
            other = fresh.new_page()
            other.goto(link)
            try:
                other.get_by_role("heading", name=f"Latent {want}").first.wait_for(timeout=WAIT_MS)
                steps.settle(other)
                other.wait_for_function(f"() => document.querySelector('.st-key-features_latent input')?.value == "
                                        f"'{want}'", timeout=WAIT_MS)
            except Exception:
                other.screenshot(path=str(shots / "failure-fresh.png"), full_page=True)
                raise
            steps.no_exception(other)
            fresh.close()
        except Exception:
            page.screenshot(path=str(shots / "failure-links.png"), full_page=True)
            raise
        finally:
            browser.close()
    _console_clean(console)


@pytest.mark.slow
def test_new_views_and_mended_pages_in_the_browser(app_server, console, shots):
    """Circuits, Neurons, Activations and Ablate & steer render and react to clicks; the Model page shows the
    attention kind; Probes leads with a verdict; screenshots of each; no traceback in the console."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800}, accept_downloads=True)
        try:
            page.goto(app_server + "/?page=Model")
            page.get_by_text("key/value heads per layer").first.wait_for(timeout=WAIT_MS)
            page.get_by_text("weights sha256").first.wait_for(timeout=WAIT_MS)
            page.get_by_text("Model card").first.wait_for(timeout=WAIT_MS)
            steps.settle(page)
            steps.shot(page, shots, "model")

            steps.open(page, "Circuits", "Circuits: a head's QK and OV over the vocabulary")
            page.get_by_text("eigenvalues (positivity").first.wait_for(timeout=WAIT_MS)
            steps.settle(page)
            steps.click_plot(page, "chart-circuits-ov-all", "xy", 1.5 / 4, 0.75)  # a cell in the lower half
            page.get_by_text(re.compile(r"Head \d+\.1 OV eigenvalues")).first.wait_for(timeout=WAIT_MS)
            steps.settle(page)
            steps.no_exception(page)
            steps.shot(page, shots, "circuits")

            steps.open(page, "Neurons", "most active on this prompt")
            page.get_by_text("on your prompt, token by token").first.wait_for(timeout=WAIT_MS)
            steps.settle(page)
            steps.no_exception(page)
            steps.shot(page, shots, "neurons")

            steps.open(page, "Activations", "Activations: any hook on your prompt")
            page.get_by_text("norm at each position").first.wait_for(timeout=WAIT_MS)
            steps.settle(page)
            steps.click_plot(page, "chart-activations-norms", "xy", 0.1, 0.9)
            page.get_by_text(re.compile(r"Position [01] \(")).first.wait_for(timeout=WAIT_MS)
            steps.no_exception(page)
            steps.shot(page, shots, "activations")

            steps.open(page, "Ablate & steer", "Ablate & steer")
            page.get_by_text("KL(before ‖ after) =").first.wait_for(timeout=WAIT_MS)
            page.locator(".st-key-ablate_mode").get_by_text("mean", exact=True).click()
            steps.settle(page)
            page.get_by_text("replaced by its mean over a reference batch").first.wait_for(timeout=WAIT_MS)
            steps.click_plot(page, "chart-ablate-kl", "xy", 0.04, 0.95)  # the first bar: read position 0
            page.get_by_text(re.compile(r"at position 0 \(")).first.wait_for(timeout=WAIT_MS)
            steps.settle(page)
            steps.no_exception(page)
            steps.shot(page, shots, "ablate")

            steps.open(page, "Probes", "Linear probes")
            page.get_by_text("Paste a CSV", exact=True).click()
            page.get_by_text(re.compile(r"\d+ rows, 2 classes")).first.wait_for(timeout=WAIT_MS)
            steps.click_until(page, page.get_by_role("button", name="Run probe sweep"), "Verdict:")
            steps.settle(page)
            steps.no_exception(page)
            steps.shot(page, shots, "probes")
        except Exception:
            page.screenshot(path=str(shots / "failure-views.png"), full_page=True)
            raise
        finally:
            browser.close()
    _console_clean(console)
