"""The Graph page in a real browser: the graph draws, clicking a node opens its card and highlights its paths,
moving the node threshold prunes the graph, the view is in the link, routes mode draws. Screenshots ``graph``,
``graph-card``, ``graph-pruned`` and ``graph-routes``; for the README's, on the bundled model and its transcoders:
``WORKBENCH_SCREENSHOTS=docs/screenshots WORKBENCH_E2E_MODEL=code-gpt2 pytest tests/app/test_graph_browser.py``.
Without ``WORKBENCH_E2E_MODEL`` the page runs on a tiny ReLU GPT-2 with its exact transcoder beside it."""
from __future__ import annotations

import os
import re
import shutil
import urllib.parse

import pytest

from tests.app import browser as steps
from tests.app.browser import ARGS, CHROMIUM, WAIT_MS

GRAPH_PROMPT = "def span(offset, command):\n    return offset +"  # code-gpt2 answers " command"


@pytest.fixture
def model_name(relu_gpt2_dir, tmp_path_factory) -> str:
    if os.environ.get("WORKBENCH_E2E_MODEL"):
        return os.environ["WORKBENCH_E2E_MODEL"]
    from interp import load_model
    from learned.transcoder import transcoder_from_mlp
    from learned.transcoder_files import write_transcoder_dir

    model = tmp_path_factory.mktemp("graph-tour") / "relu-with-tc"
    shutil.copytree(relu_gpt2_dir, model)
    handle = load_model(model)
    write_transcoder_dir(model / "transcoders" / "exact", transcoder_from_mlp(handle.weights(), handle.info))
    return str(model)


def _node_count(page) -> int:
    title = page.locator(".st-key-chart-graph .gtitle").first.text_content()
    return int(re.search(r"(\d+)\s*of\s*\d+\s*nodes", title).group(1))  # a wrapped title's lines join unspaced


def _biggest_feature(page) -> dict:
    """Screen coordinates of the most influential feature node (the largest marker) and its hover text."""
    return page.locator(".st-key-chart-graph .js-plotly-plot").first.evaluate("""gd => {
        const t = gd.data.find(t => t.name === 'feature');
        let best = 0;
        for (let i = 0; i < t.x.length; i++) if (t.marker.size[i] > t.marker.size[best]) best = i;
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
        return {x: r.left + xa._offset + xa.l2p(t.x[best]), y: r.top + ya._offset + ya.l2p(t.y[best]),
                text: t.text[best]};
    }""")


@pytest.mark.slow
@pytest.mark.browser
def test_graph_page_click_a_node_and_prune(server, shots):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        try:
            page.goto(server + "/?page=Graph&prompt=" + urllib.parse.quote(GRAPH_PROMPT))
            page.get_by_text("Graph: the circuit of one prompt").first.wait_for(timeout=WAIT_MS)
            page.locator(".st-key-chart-graph .js-plotly-plot .main-svg").first.wait_for(timeout=WAIT_MS)
            steps.settle(page)
            assert page.get_by_text("Replacement score").count() and page.get_by_text("Completeness score").count()
            page.get_by_text("Click a node to open its card.").first.wait_for(timeout=WAIT_MS)
            page.locator(".st-key-chart-graph").scroll_into_view_if_needed()
            page.wait_for_timeout(800)
            steps.shot(page, shots, "graph")
            # click the most influential feature: its card opens, its paths are highlighted, the link holds it
            page.locator(".st-key-chart-graph").scroll_into_view_if_needed()
            node = _biggest_feature(page)
            page.mouse.move(node["x"], node["y"])
            page.wait_for_timeout(400)
            page.mouse.click(node["x"], node["y"])
            page.get_by_text(re.compile(r"^Node: L\d+ #\d+")).first.wait_for(timeout=WAIT_MS)
            steps.settle(page)
            assert page.get_by_text("Top-activating contexts").count() and page.get_by_text("Edges in").count()
            q = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
            clicked = q["node"][0].split("_")  # a feature node at the clicked (layer, position); neighbours sit close
            assert q["page"] == ["Graph"] and f"<br>id {clicked[0]}_" in node["text"] and \
                node["text"].endswith(f"_{clicked[2]}")
            page.get_by_text("Top-activating contexts").first.scroll_into_view_if_needed()
            steps.shot(page, shots, "graph-card")
            # move the node threshold down: fewer nodes, and the threshold is in the link
            before = _node_count(page)
            thumb = page.locator('.st-key-graph_node_th input[type="range"]').first  # this Streamlit's slider
            thumb.focus()
            for _ in range(40):
                thumb.press("ArrowLeft")
            steps.settle(page)
            page.wait_for_function(f"""() => {{
                const t = document.querySelector('.st-key-chart-graph .gtitle');
                const m = t && t.textContent.match(/(\\d+)\\s*of\\s*\\d+\\s*nodes/);
                return m && parseInt(m[1]) < {before};
            }}""", timeout=WAIT_MS)
            steps.settle(page)  # the link is written when the run ends
            assert _node_count(page) < before
            q = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
            assert float(q["node_th"][0]) < 0.8
            page.locator(".st-key-chart-graph").scroll_into_view_if_needed()
            steps.shot(page, shots, "graph-pruned")
            steps.no_exception(page)
            # routes mode: no transcoder needed
            page.get_by_text("Information-flow routes", exact=True).first.click()
            page.get_by_text("Strongest attention edges").first.wait_for(timeout=WAIT_MS)
            steps.settle(page)
            page.locator(".st-key-chart-routes").scroll_into_view_if_needed()
            steps.shot(page, shots, "graph-routes")
            assert "gmode=routes" in page.url
            steps.no_exception(page)
        except Exception:
            page.screenshot(path=str(shots / "graph-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
