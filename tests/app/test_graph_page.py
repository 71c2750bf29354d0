"""Graph page: an exact transcoder beside a ReLU model gives a graph with replacement score 1; the target logit and
thresholds re-prune without recomputing; a node's card opens; the view goes into the URL; routes mode; a graph JSON
opens; a damaged one is a message."""
from __future__ import annotations

import json
import shutil

import pytest

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent.parent


def app_test(model_dir, monkeypatch, page: str, timeout: int = 180):
    """An AppTest of app.py on ``page`` with ``model_dir`` as the default model (as tests/conftest.py's app_test;
    written out here because tests/app/conftest.py shadows that module name)."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("WORKBENCH_DEFAULT_MODEL", str(model_dir))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    at.query_params["page"] = page
    return at


@pytest.fixture(scope="module")
def model_with_tc(relu_gpt2_dir, tmp_path_factory):
    from interp import load_model
    from learned.transcoder import transcoder_from_mlp
    from learned.transcoder_files import write_transcoder_dir

    model = tmp_path_factory.mktemp("graph") / "relu-with-tc"
    shutil.copytree(relu_gpt2_dir, model)
    handle = load_model(model)
    write_transcoder_dir(model / "transcoders" / "exact", transcoder_from_mlp(handle.weights(), handle.info))
    return model


def _graph_titles(at) -> list[str]:
    """The figures' titles, unwrapped (plots break long titles with <br> where a space was)."""
    return [json.loads(c.proto.spec)["layout"]["title"]["text"].replace("<br>", " ") for c in at.get("plotly_chart")]


def test_graph_scores_thresholds_card_and_url(model_with_tc, monkeypatch):
    at = app_test(model_with_tc, monkeypatch, "Graph")
    at.query_params["prompt"] = "the cat sat on the mat"
    at.run(timeout=180)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="graph_source").value == "exact"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Replacement score"] == "1.000" and metrics["Completeness score"] == "1.000"
    title = _graph_titles(at)[0]
    n_before = int(title.split(": ")[1].split(" of ")[0])
    at.slider(key="graph_node_th").set_value(0.3).run()
    n_after = int(_graph_titles(at)[0].split(": ")[1].split(" of ")[0])
    assert n_after < n_before  # the graph prunes
    assert at.query_params["node_th"] == "0.3" and at.query_params["gmode"] == "graph"
    from probes.graph.attribution import AttributionGraph  # noqa: F401 - the card for a feature node
    at.session_state["graph_node"] = next(i for i in _node_ids(at) if not i.startswith(("E_", "2_")))
    at.run()
    assert not at.exception and any(s.value.startswith("Node: L") for s in at.subheader)
    assert any("Top-activating contexts" in m.value for m in at.markdown)
    assert at.query_params["node"] == at.session_state["graph_node"]
    at.selectbox(key="graph_target").set_value(1).run()
    assert at.query_params["target"] == "1"


def _node_ids(at) -> list[str]:
    ids = []
    for c in at.get("plotly_chart"):
        for trace in json.loads(c.proto.spec)["data"]:
            for t in trace.get("text") or []:
                if isinstance(t, str) and "<br>id " in t:
                    ids.append(t.rsplit("<br>id ", 1)[1])
    return ids


def test_a_link_opens_the_same_view_and_routes_mode(model_with_tc, monkeypatch):
    at = app_test(model_with_tc, monkeypatch, "Graph")
    at.query_params.update({"prompt": "the cat sat on the mat", "node_th": "0.5", "edge_th": "nope",
                            "gmode": "routes", "route_th": "0.1"})
    at.run(timeout=180)
    assert not at.exception, at.exception
    assert at.slider(key="graph_route_th").value == pytest.approx(0.1)
    assert any(t.startswith(f"{model_with_tc}: routes into position") for t in _graph_titles(at))
    at.radio(key="graph_mode").set_value("graph").run()
    assert at.slider(key="graph_node_th").value == pytest.approx(0.5)
    # a bad parameter is warned about when its control is drawn (the graph mode's), once
    assert any("edge_th" in w.value for w in at.warning)
    at.run()
    assert not any("edge_th" in w.value for w in at.warning)


def test_graph_json_import_and_a_damaged_file(model_with_tc, monkeypatch):
    from interp import load_model
    from learned.transcoder_files import read_transcoder_dir
    from probes.graph.attribution import attribute
    from probes.graph.neuronpedia import to_neuronpedia

    handle = load_model(model_with_tc)
    g = attribute(handle, read_transcoder_dir(model_with_tc / "transcoders" / "exact"), "the cat sat")
    data = json.dumps(to_neuronpedia(g, pinned=[g.node_id(g.slice_of("embedding").start)])).encode()
    from ui import graph_page

    assert graph_page.cached_import("x", data).n_nodes > 3
    with pytest.raises(Exception, match="not a Neuronpedia graph"):
        graph_page.cached_import.__wrapped__("y", b'{"nodes": []}')
