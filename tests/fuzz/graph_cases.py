"""Library sweep families of the attribution-graph surfaces (issue 24): transcoder folders (damaged, foreign,
dangerous), graph settings and prompts, pruning thresholds and targets, Neuronpedia graph JSON, routes. Joined into
the library part by ``tests/fuzz/library_cases.py`` (``cases()`` and ``BUILDERS``)."""
from __future__ import annotations

import functools
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from tests.fuzz import Case

PART = "library"


def _c(group: str, name: str, expect: str, fast: bool = False, isolate: bool = False, **params: Any) -> Case:
    return Case(PART, group, name, expect, params, isolate=isolate, timeout_s=120.0, fast=fast)  # type: ignore


@functools.lru_cache(maxsize=1)
def handle():
    torch.set_num_threads(1)
    from interp import load_model
    from tests.fuzz.model_dirs import gpt2_dir

    return load_model(gpt2_dir())  # 2 layers x 4 heads, d_model 32


@functools.lru_cache(maxsize=1)
def transcoder():
    from learned.transcoder import Transcoder, TranscoderConfig

    tc = Transcoder(TranscoderConfig("cross_layer", 2, 32, 48, k=4, model_name="fuzz"), seed=1)
    with torch.no_grad():
        tc.b_enc.fill_(0.1)
    return tc.eval()


@functools.lru_cache(maxsize=1)
def graph():
    from probes.graph.attribution import GraphSettings, attribute

    return attribute(handle(), transcoder(), "the cat sat on the mat", GraphSettings(batch_size=32))


def cases() -> Iterator[Case]:
    for name, expect in TC_FILES.items():
        yield _c("tc_files", f"tc_files.{name}", expect, name in ("garbage_layer", "ok_clt", "fifo_layer"),
                 isolate=name in DANGEROUS, key=name)
    for name, expect in GRAPH.items():
        yield _c("graph", f"graph.{name}", expect, name in ("batch_zero", "prompt_empty", "ok_tokens"), key=name)
    for name, expect in PRUNE.items():
        yield _c("prune", f"prune.{name}", expect, name in ("node_nan", "target_99", "ok_one_hot"), key=name)
    for name, expect in GRAPH_JSON.items():
        yield _c("graph_json", f"graph_json.{name}", expect, name in ("nan_weight", "bytes_garbage", "ok_round_trip"),
                 key=name)
    for name, expect in ROUTES.items():
        yield _c("routes", f"routes.{name}", expect, name in ("threshold_zero", "ok_default"), key=name)


# ----------------------------------------------------------------------------- transcoder folders

TC_FILES = {
    "garbage_layer": "InvalidInput", "truncated_layer": "InvalidInput", "empty_layer": "InvalidInput",
    "missing_layer": "InvalidInput", "nan_weight": "InvalidInput", "inf_weight": "InvalidInput",
    "wrong_shape": "InvalidInput", "clt_wrong_outputs": "InvalidInput", "cfg_list": "InvalidInput",
    "cfg_binary": "InvalidInput", "cfg_kind_bad": "InvalidInput", "cfg_activation_bad": "InvalidInput",
    "cfg_k_zero": "InvalidInput", "cfg_k_huge": "InvalidInput", "cfg_n_layers_huge": "InvalidInput",
    "cfg_n_layers_str": "InvalidInput", "cfg_sizes_lie": "InvalidInput", "jumprelu_no_threshold": "InvalidInput",
    "empty_folder": "InvalidInput", "a_file": "InvalidInput", "no_such_path": "InvalidInput",
    "layer_is_dir": "InvalidInput", "fifo_layer": "InvalidInput", "fifo_cfg": "InvalidInput",
    "skipped_layer": "InvalidInput", "pickle_renamed": "InvalidInput",
    "ok_plt": "ok", "ok_clt": "ok", "ok_no_cfg": "ok", "ok_transposed_enc": "ok",
}
DANGEROUS = ("fifo_layer", "fifo_cfg")


def _build_tc_files(case: Case):
    from safetensors.torch import load_file, save_file

    from learned.transcoder import Transcoder, TranscoderConfig
    from learned.transcoder_files import read_transcoder_dir, write_transcoder_dir

    key = case.params["key"]
    tmp = Path(tempfile.mkdtemp(prefix="workbench-tc-case-"))
    kind = "cross_layer" if key in ("ok_clt", "clt_wrong_outputs") else "per_layer"
    act = "jumprelu" if key == "jumprelu_no_threshold" else "topk"
    ref = Transcoder(TranscoderConfig(kind, 2, 8, 12, activation=act, k=3), seed=2)
    d = write_transcoder_dir(tmp / "tc", ref)
    layer1 = d / ("W_dec_1.safetensors" if kind == "cross_layer" else "layer_1.safetensors")

    def cfg(**kw):
        c = json.loads((d / "cfg.json").read_text())
        c.update(kw)
        (d / "cfg.json").write_text(json.dumps(c))

    def tensors(fn):
        t = load_file(str(layer1))
        fn(t)
        save_file(t, str(layer1))

    damage: dict[str, Callable[[], Any]] = {
        "garbage_layer": lambda: layer1.write_bytes(b"\x00garbage" * 10),
        "truncated_layer": lambda: layer1.write_bytes(layer1.read_bytes()[:100]),
        "empty_layer": lambda: layer1.write_bytes(b""),
        "missing_layer": lambda: (layer1.unlink(), cfg(n_layers=2)),
        "nan_weight": lambda: tensors(lambda t: t["W_dec"].__setitem__((0, 0), float("nan"))),
        "inf_weight": lambda: tensors(lambda t: t["b_enc"].__setitem__(0, float("inf"))),
        "wrong_shape": lambda: tensors(lambda t: t.__setitem__("W_dec", torch.zeros(12, 9))),
        "clt_wrong_outputs": lambda: tensors(lambda t: t.__setitem__("W_dec_1", torch.zeros(12, 2, 8))),
        "cfg_list": lambda: (d / "cfg.json").write_text("[1, 2]"),
        "cfg_binary": lambda: (d / "cfg.json").write_bytes(b"\xff\xfe\x00"),
        "cfg_kind_bad": lambda: cfg(kind="diagonal"), "cfg_activation_bad": lambda: cfg(activation="gelu"),
        "cfg_k_zero": lambda: cfg(k=0), "cfg_k_huge": lambda: cfg(k=10**9),
        "cfg_n_layers_huge": lambda: cfg(n_layers=10**9), "cfg_n_layers_str": lambda: cfg(n_layers="2"),
        "cfg_sizes_lie": lambda: cfg(d_transcoder=99),
        "jumprelu_no_threshold": lambda: tensors(lambda t: t.pop("threshold")),
        "layer_is_dir": lambda: (layer1.unlink(), layer1.mkdir()),
        "fifo_layer": lambda: (layer1.unlink(), os.mkfifo(layer1)),
        "fifo_cfg": lambda: ((d / "cfg.json").unlink(), os.mkfifo(d / "cfg.json")),
        "skipped_layer": lambda: ((d / "cfg.json").unlink(), layer1.rename(d / "layer_2.safetensors")),
        "pickle_renamed": lambda: layer1.write_bytes(__import__("pickle").dumps({"W_enc": [1.0]})),
        "ok_no_cfg": lambda: (d / "cfg.json").unlink(),
        "ok_transposed_enc": lambda: tensors(lambda t: t.__setitem__("W_enc", t["W_enc"].t().contiguous())),
    }
    target: Path = d
    if key == "empty_folder":
        target = tmp / "empty"
        target.mkdir()
    elif key == "a_file":
        target = tmp / "file.json"
        target.write_text("{}")
    elif key == "no_such_path":
        target = tmp / "nope"
    elif key in damage:
        damage[key]()

    def check(tc):
        x = torch.randn(5, 2, 8)
        if key == "ok_no_cfg":  # a folder without cfg.json: ReLU features (TopK's k is in cfg.json only)
            same = torch.allclose(tc.pre_acts(x), ref.pre_acts(x), atol=1e-5) and tc.cfg.activation == "relu"
            return None if same else "the weights read back differ"
        return None if torch.allclose(tc(x), ref(x), atol=1e-5) else "the weights read back differ"

    return (lambda: read_transcoder_dir(target)), check


# ----------------------------------------------------------------------------- graph settings and prompts

GRAPH = {
    "batch_zero": "InvalidInput", "batch_negative": "InvalidInput", "batch_float": "InvalidInput",
    "batch_bool": "InvalidInput", "batch_huge": "InvalidInput", "logits_zero": "InvalidInput",
    "logits_huge": "InvalidInput", "prob_nan": "InvalidInput", "prob_zero": "InvalidInput",
    "prob_over_one": "InvalidInput", "prob_str": "InvalidInput", "node_th_zero": "InvalidInput",
    "edge_th_over": "InvalidInput", "max_nodes_negative": "InvalidInput", "max_nodes_str": "InvalidInput",
    "prompt_empty": "InvalidInput", "prompt_none": "InvalidInput", "prompt_int": "InvalidInput",
    "prompt_two_rows": "InvalidInput", "prompt_bad_id": "InvalidInput", "prompt_too_long": "InvalidInput",
    "prompt_surrogate": "InvalidInput", "tc_wrong_layers": "InvalidInput", "tc_wrong_width": "InvalidInput",
    "attn_only_model": "InvalidInput",
    "ok_tokens": "ok", "ok_capped": "ok", "ok_one_logit": "ok", "ok_single_token": "ok",
}


def _build_graph(case: Case):
    from interp import load_model
    from learned.transcoder import Transcoder, TranscoderConfig
    from probes.graph.attribution import GraphSettings, attribute

    key, h, tc = case.params["key"], handle(), transcoder()
    s: dict[str, Any] = {"batch_zero": {"batch_size": 0}, "batch_negative": {"batch_size": -4},
                         "batch_float": {"batch_size": 2.5}, "batch_bool": {"batch_size": True},
                         "batch_huge": {"batch_size": 10**7}, "logits_zero": {"max_logits": 0},
                         "logits_huge": {"max_logits": 10**6}, "prob_nan": {"logit_probability": float("nan")},
                         "prob_zero": {"logit_probability": 0.0}, "prob_over_one": {"logit_probability": 1.01},
                         "prob_str": {"logit_probability": "0.9"}, "node_th_zero": {"node_threshold": 0.0},
                         "edge_th_over": {"edge_threshold": 1.5}, "max_nodes_negative": {"max_feature_nodes": -1},
                         "max_nodes_str": {"max_feature_nodes": "10"}, "ok_capped": {"max_feature_nodes": 8},
                         "ok_one_logit": {"max_logits": 1}}.get(key, {})
    prompt: Any = {"prompt_empty": "", "prompt_none": None, "prompt_int": 7,
                   "prompt_two_rows": torch.zeros(2, 4, dtype=torch.long),
                   "prompt_bad_id": torch.tensor([0, 10**6]), "prompt_too_long": "word " * 200,
                   "prompt_surrogate": "ab\ud800", "ok_tokens": torch.tensor([0, 5, 9, 12]),
                   "ok_single_token": "x"}.get(key, "the cat sat on the mat")
    model = load_model("attn-only-1l") if key == "attn_only_model" else h
    t = {"tc_wrong_layers": Transcoder(TranscoderConfig("per_layer", 3, 32, 8, k=2)),
         "tc_wrong_width": Transcoder(TranscoderConfig("per_layer", 2, 16, 8, k=2))}.get(key, tc)

    def check(g):
        if not bool(torch.isfinite(g.adjacency).all()):
            return "non-finite edges"
        if key == "ok_capped" and g.count("feature") != 8:
            return f"{g.count('feature')} features, asked 8"
        if key == "ok_one_logit" and len(g.logit_tokens) != 1:
            return "more than one logit node"
        r, c = g.scores()
        return None if math.isfinite(r) and math.isfinite(c) and 0 <= r <= 1 and 0 <= c <= 1 else f"scores {r}, {c}"

    return (lambda: attribute(model, t, prompt, GraphSettings(**s))), check


PRUNE = {
    "node_nan": "InvalidInput", "node_zero": "InvalidInput", "node_over": "InvalidInput", "node_str": "InvalidInput",
    "edge_negative": "InvalidInput", "edge_inf": "InvalidInput", "target_99": "InvalidInput",
    "target_negative": "InvalidInput", "target_float": "InvalidInput", "target_bool": "InvalidInput",
    "ok_one_hot": "ok", "ok_all_kept": "ok",
}


def _build_prune(case: Case):
    key, g = case.params["key"], graph()
    kw: dict[str, Any] = {"node_nan": {"node_threshold": float("nan")}, "node_zero": {"node_threshold": 0.0},
                          "node_over": {"node_threshold": 1.2}, "node_str": {"node_threshold": "0.8"},
                          "edge_negative": {"edge_threshold": -0.1}, "edge_inf": {"edge_threshold": float("inf")},
                          "target_99": {"target": 99}, "target_negative": {"target": -1},
                          "target_float": {"target": 0.5}, "target_bool": {"target": True},
                          "ok_one_hot": {"target": 0}, "ok_all_kept": {"node_threshold": 1.0,
                                                                       "edge_threshold": 1.0}}[key]

    def check(p):
        if not bool(p.node_mask[g.slice_of("logit")].all()):
            return "a logit node was pruned"
        if bool((p.edge_mask & ~(p.node_mask[:, None] & p.node_mask[None, :])).any()):
            return "an edge joins a pruned node"
        return None

    return (lambda: g.pruned(**kw)), check


# ----------------------------------------------------------------------------- Neuronpedia graph JSON

GRAPH_JSON = {
    "nan_weight": "InvalidInput", "inf_literal": "InvalidInput", "bytes_garbage": "InvalidInput",
    "not_object": "InvalidInput", "nodes_not_list": "InvalidInput", "no_metadata": "InvalidInput",
    "tokens_empty": "InvalidInput", "tokens_numbers": "InvalidInput", "node_no_id": "InvalidInput",
    "node_id_huge": "InvalidInput", "ctx_bool": "InvalidInput", "ctx_negative": "InvalidInput",
    "layer_garbage": "InvalidInput", "feature_layer_out": "InvalidInput", "link_unknown": "InvalidInput",
    "link_weight_bool": "InvalidInput", "duplicate_id": "InvalidInput", "no_logit": "InvalidInput",
    "unknown_type": "InvalidInput", "too_many_nodes": "InvalidInput", "deep_nesting": "InvalidInput",
    "ok_round_trip": "ok", "ok_minimal": "ok", "ok_extra_fields": "ok",
}


def _minimal_json() -> dict:
    return {"metadata": {"prompt_tokens": ["a", "b", "c"], "slug": "x"},
            "nodes": [{"node_id": "E_1_0", "feature": 1, "layer": "E", "ctx_idx": 0, "feature_type": "embedding"},
                      {"node_id": "0_4_1", "feature": 4, "layer": "0", "ctx_idx": 1,
                       "feature_type": "cross layer transcoder", "activation": 1.0},
                      {"node_id": "2_5_2", "feature": 5, "layer": "2", "ctx_idx": 2, "feature_type": "logit",
                       "token_prob": 0.5}],
            "links": [{"source": "E_1_0", "target": "0_4_1", "weight": 1.0},
                      {"source": "0_4_1", "target": "2_5_2", "weight": -2.0}]}


def _build_graph_json(case: Case):
    from probes.graph.neuronpedia import MAX_NODES, from_neuronpedia, to_neuronpedia

    key = case.params["key"]
    d = _minimal_json()
    raw: Any = None
    edits: dict[str, Callable[[], Any]] = {
        "nan_weight": lambda: d["links"][0].update(weight=float("nan")),
        "not_object": lambda: None, "nodes_not_list": lambda: d.update(nodes={"a": 1}),
        "no_metadata": lambda: d.pop("metadata"), "tokens_empty": lambda: d["metadata"].update(prompt_tokens=[]),
        "tokens_numbers": lambda: d["metadata"].update(prompt_tokens=[1, 2, 3]),
        "node_no_id": lambda: d["nodes"][1].pop("node_id"),
        "node_id_huge": lambda: d["nodes"][1].update(node_id="n" * 10_000),
        "ctx_bool": lambda: d["nodes"][1].update(ctx_idx=True),
        "ctx_negative": lambda: d["nodes"][1].update(ctx_idx=-1),
        "layer_garbage": lambda: d["nodes"][1].update(layer="L0"),
        "feature_layer_out": lambda: d["nodes"][1].update(layer="7"),
        "link_unknown": lambda: d["links"].append({"source": "zz", "target": "2_5_2", "weight": 1.0}),
        "link_weight_bool": lambda: d["links"][0].update(weight=True),
        "duplicate_id": lambda: d["nodes"].append(dict(d["nodes"][0])),
        "no_logit": lambda: (d["nodes"].pop(2), d.update(links=d["links"][:1])),
        "unknown_type": lambda: d["nodes"][1].update(feature_type="sae latent of another kind"),
        "too_many_nodes": lambda: d.update(nodes=[dict(d["nodes"][0], node_id=f"E_{i}_0") for i in
                                                  range(MAX_NODES + 1)]),
        "ok_extra_fields": lambda: (d.update(extra={"x": [1, 2]}), d["nodes"][0].update(whatever=None)),
    }
    if key in edits:
        edits[key]()
    if key == "not_object":
        raw = "[1, 2, 3]"
    elif key == "bytes_garbage":
        raw = b"\xff\xfe\x00{garbage"
    elif key == "inf_literal":
        raw = json.dumps(d).replace('"weight": 1.0', '"weight": Infinity')
    elif key == "deep_nesting":
        raw = "[" * 100_000 + "]" * 100_000
    elif key == "ok_round_trip":
        raw = json.dumps(to_neuronpedia(graph()))
    else:
        raw = json.dumps(d)

    def check(g):
        if not bool(torch.isfinite(g.adjacency).all()):
            return "non-finite edges"
        if key == "ok_round_trip":
            again = to_neuronpedia(g, node_threshold=1.0, edge_threshold=1.0)
            want = json.loads(raw)
            return None if len(again["links"]) == len(want["links"]) else "links lost in the round trip"
        return None if g.count("logit") == 1 else "logit node lost"

    return (lambda: from_neuronpedia(raw)), check


# ----------------------------------------------------------------------------- routes

ROUTES = {
    "threshold_zero": "InvalidInput", "threshold_over": "InvalidInput", "threshold_nan": "InvalidInput",
    "position_out": "InvalidInput", "position_negative": "InvalidInput", "position_float": "InvalidInput",
    "prompt_two": "InvalidInput", "prompt_empty": "InvalidInput", "mamba": "InvalidInput",
    "ok_default": "ok", "ok_attn_only": "ok",
}


def _build_routes(case: Case):
    from interp import load_model
    from probes.graph.routes import contribution_graph

    key, h = case.params["key"], handle()
    prompt = {"prompt_two": ["a b", "c d"], "prompt_empty": ""}.get(key, "the cat sat on the mat")

    def run():
        if key == "mamba":
            from tests.fuzz.model_dirs import mamba_dir

            return contribution_graph(load_model(mamba_dir()), "hello")
        model = load_model("attn-only-1l") if key == "ok_attn_only" else h
        cg = contribution_graph(model, prompt if key != "ok_attn_only" else "t1 t2 t3 t1 t2")
        kw: dict[str, Any] = {"threshold_zero": {"threshold": 0.0}, "threshold_over": {"threshold": 1.5},
                              "threshold_nan": {"threshold": float("nan")}, "position_out": {"position": 99},
                              "position_negative": {"position": -1}, "position_float": {"position": 1.5}}.get(key, {})
        return cg, cg.route(**kw)

    def check(r):
        cg, edges = r
        total = cg.attn.sum(axis=(1, 3)) + cg.attn_residual
        if not (abs(total - 1) < 1e-4).all():
            return "importances into a node do not sum to 1"
        return None if edges and all(0 <= e.weight <= 1 for e in edges) else "no route or a weight outside [0, 1]"

    return run, check


BUILDERS: dict[str, Callable[[Case], tuple[Callable[[], Any], Callable[[Any], str | None] | None]]] = {
    "tc_files": _build_tc_files, "graph": _build_graph, "prune": _build_prune, "graph_json": _build_graph_json,
    "routes": _build_routes,
}
