"""Neuronpedia graph JSON: export holds the pruned graph in its schema; import reads it back; the round trip is
exact; foreign or damaged files are clear errors."""
from __future__ import annotations

import copy
import json

import pytest

from interp import InvalidInput
from probes.graph.neuronpedia import from_neuronpedia, read_neuronpedia_file, to_neuronpedia, write_neuronpedia_file

NODE_KEYS = {"node_id", "feature", "layer", "ctx_idx", "feature_type", "token_prob", "is_target_logit", "run_idx",
             "reverse_ctx_idx", "jsNodeId", "clerp", "influence", "activation"}


def _core(data: dict) -> tuple:
    nodes = sorted((n["node_id"], n["feature_type"], n["layer"], n["ctx_idx"], n["feature"], n["activation"])
                   for n in data["nodes"])
    links = sorted((x["source"], x["target"], x["weight"]) for x in data["links"])
    return nodes, links


def test_export_follows_the_schema_and_holds_the_pruned_graph(graph):
    data = json.loads(json.dumps(to_neuronpedia(graph, slug="cat", pinned=["E_5_1"], supernodes=[["sn", "E_5_1"]])))
    assert set(data) == {"metadata", "qParams", "nodes", "links"}
    m = data["metadata"]
    assert m["slug"] == "cat" and m["prompt_tokens"] == graph.str_tokens and m["schema_version"] == 1
    assert data["qParams"]["pinnedIds"] == ["E_5_1"] and data["qParams"]["supernodes"] == [["sn", "E_5_1"]]
    assert all(set(n) == NODE_KEYS for n in data["nodes"])
    kinds = {n["feature_type"] for n in data["nodes"]}
    assert {"per layer transcoder", "embedding", "logit"} <= kinds
    pruned = graph.pruned()
    assert len(data["nodes"]) == int(pruned.node_mask.sum()) < graph.n_nodes
    assert len(data["links"]) == int(pruned.edge_mask.sum())
    assert sum(n["is_target_logit"] for n in data["nodes"]) == 1
    ids = {n["node_id"] for n in data["nodes"]}
    assert all(x["source"] in ids and x["target"] in ids for x in data["links"])


def test_round_trip_is_exact(graph, tmp_path):
    data = to_neuronpedia(graph)
    path = write_neuronpedia_file(tmp_path / "g.json", data)
    back = read_neuronpedia_file(path)
    assert back.str_tokens == graph.str_tokens and back.tokens == graph.tokens
    assert back.logit_tokens == graph.logit_tokens and back.logit_strs == graph.logit_strs
    again = to_neuronpedia(back, node_threshold=1.0, edge_threshold=1.0)
    assert _core(again) == _core(data)
    i = back.kind.index("feature")
    j = graph.node_id(i)  # a feature node carries its layer, feature and position through the file
    assert back.node_id(i) in {n["node_id"] for n in data["nodes"]} and j


def test_a_graph_made_elsewhere_opens():
    """A minimal circuit-tracer-style file: no workbench block, CLT feature_type, logit layer as the layer count."""
    data = {"metadata": {"slug": "x", "scan": "gemma-2-2b", "prompt_tokens": ["<bos>", "Hi", " there"],
                         "prompt": "Hi there"},
            "qParams": {"pinnedIds": ["1_77_2"], "supernodes": [], "linkType": "both", "clickedId": "", "sg_pos": ""},
            "nodes": [{"node_id": "E_2_1", "feature": 2, "layer": "E", "ctx_idx": 1, "feature_type": "embedding"},
                      {"node_id": "1_77_2", "feature": 77, "layer": "1", "ctx_idx": 2,
                       "feature_type": "cross layer transcoder", "activation": 3.5},
                      {"node_id": "0_1_2", "layer": "0", "ctx_idx": 2, "feature_type": "mlp reconstruction error"},
                      {"node_id": "26_9_2", "feature": 9, "layer": "26", "ctx_idx": 2, "feature_type": "logit",
                       "token_prob": 0.7, "clerp": 'Output " you" (p=0.700)'}],
            "links": [{"source": "E_2_1", "target": "1_77_2", "weight": 1.5},
                      {"source": "1_77_2", "target": "26_9_2", "weight": 2.0},
                      {"source": "0_1_2", "target": "26_9_2", "weight": -0.5}]}
    g = from_neuronpedia(json.dumps(data))
    assert g.n_layers == 26 and g.kind == ["feature", "error", "embedding", "logit"]
    assert g.logit_strs == [" you"] and g.logit_probabilities == [0.7] and g.meta["pinned"] == ["1_77_2"]
    f, e, emb, lo = 0, 1, 2, 3
    assert float(g.adjacency[f, emb]) == 1.5 and float(g.adjacency[lo, f]) == 2.0 and float(g.adjacency[lo, e]) == -.5
    replacement, completeness = g.scores()
    assert 0 < replacement < 1 and 0 < completeness < 1


def _minimal() -> dict:
    return {"metadata": {"prompt_tokens": ["a", "b"]},
            "nodes": [{"node_id": "E_1_0", "feature": 1, "layer": "E", "ctx_idx": 0, "feature_type": "embedding"},
                      {"node_id": "2_5_1", "feature": 5, "layer": "2", "ctx_idx": 1, "feature_type": "logit"}],
            "links": [{"source": "E_1_0", "target": "2_5_1", "weight": 1.0}]}


@pytest.mark.parametrize("damage,match", [
    (lambda d: d.pop("links"), "not a Neuronpedia graph"),
    (lambda d: d["metadata"].pop("prompt_tokens"), "prompt_tokens"),
    (lambda d: d["links"][0].update(weight=float("nan")), "finite"),
    (lambda d: d["links"][0].update(weight="1"), "finite"),
    (lambda d: d["links"][0].update(source="nope"), "not in the graph"),
    (lambda d: d["nodes"][0].update(ctx_idx=7), "ctx_idx"),
    (lambda d: d["nodes"][0].update(feature_type="attention head"), "unknown feature_type"),
    (lambda d: d["nodes"].append(dict(d["nodes"][0])), "repeats a node_id"),
    (lambda d: d["nodes"][1].update(layer="x"), "not a number"),
    (lambda d: d["nodes"].pop(1) and d.update(links=[]), "no logit node"),
    (lambda d: d["nodes"].__setitem__(0, "node"), "not an object"),
])
def test_damaged_graph_json_is_a_clear_error(damage, match):
    data = copy.deepcopy(_minimal())
    assert from_neuronpedia(data).n_nodes == 2
    damage(data)
    with pytest.raises(InvalidInput, match=match):
        from_neuronpedia(data)


@pytest.mark.parametrize("raw", [b"", b"{", b"[1, 2]", b"null", b"\xff\xfe", "{\"nodes\": 5}"])
def test_not_a_graph_at_all(raw):
    with pytest.raises(InvalidInput):
        from_neuronpedia(raw)
