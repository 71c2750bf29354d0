"""Attribution graphs as Neuronpedia's graph JSON (what its viewer and circuit-tracer's ``create_graph_files`` read
and write), both ways, so a graph computed elsewhere (circuit-tracer on a GPU) opens here and ours open there.

The schema (written from circuit-tracer's ``frontend/graph_models.py`` as we know it; that package cannot be
installed beside our pins)::

    {"metadata": {"slug", "scan", "prompt_tokens": [str], "prompt", "node_threshold", "schema_version", ...},
     "qParams": {"pinnedIds": [node_id], "supernodes": [[name, node_id, ...]], "linkType", "clickedId", "sg_pos"},
     "nodes": [{"node_id", "feature", "layer": str ("E" for embeddings), "ctx_idx", "feature_type",
                "token_prob", "is_target_logit", "run_idx", "reverse_ctx_idx", "jsNodeId", "clerp",
                "influence", "activation"}],
     "links": [{"source": node_id, "target": node_id, "weight": float}]}

``feature_type`` is "cross layer transcoder" (circuit-tracer writes it for every transcoder feature; we write
"per layer transcoder" for a PLT's), "mlp reconstruction error", "embedding" or "logit". Exports hold the pruned
graph (the nodes and edges kept at the thresholds), as circuit-tracer's do; link weights are raw direct effects;
a node's ``influence`` is the cumulative influence share at which it was kept. Reading checks every field
(sizes capped, weights finite, links between known nodes): a damaged or foreign file is InvalidInput.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from interp.errors import InvalidInput
from probes.graph.attribution import AttributionGraph, GraphSettings

SCHEMA_VERSION = 1
MAX_JSON_BYTES = 200 * 2**20
MAX_NODES = 20_000
MAX_LINKS = 5_000_000
FEATURE_TYPES = {"feature": "cross layer transcoder", "error": "mlp reconstruction error", "embedding": "embedding",
                 "logit": "logit"}


def to_neuronpedia(g: AttributionGraph, *, slug: str = "", node_threshold: float | None = None,
                   edge_threshold: float | None = None, target: int | None = None,
                   pinned: list[str] | None = None, supernodes: list[list[str]] | None = None,
                   clerps: dict[str, str] | None = None) -> dict[str, Any]:
    """The pruned graph as Neuronpedia's graph JSON (a dict; ``json.dumps`` it)."""
    nt = g.settings.node_threshold if node_threshold is None else node_threshold
    et = g.settings.edge_threshold if edge_threshold is None else edge_threshold
    p = g.pruned(nt, et, target)
    replacement, completeness = g.scores(target)
    keep = p.node_mask.nonzero().flatten().tolist()
    ids = {i: g.node_id(i) for i in keep}
    n = len(g.tokens)
    logit0 = g.slice_of("logit").start
    feature_type = "cross layer transcoder" if g.transcoder_kind != "per_layer" else "per layer transcoder"
    nodes = []
    for i in keep:
        kind, layer, pos = g.kind[i], int(g.layer[i]), int(g.pos[i])
        is_logit = kind == "logit"
        j = i - logit0
        node = {"node_id": ids[i], "feature": int(g.index[i]) if kind != "error" else None,
                "layer": "E" if kind == "embedding" else str(layer), "ctx_idx": pos,
                "feature_type": feature_type if kind == "feature" else FEATURE_TYPES[kind],
                "token_prob": float(g.logit_probabilities[j]) if is_logit else 0.0,
                "is_target_logit": bool(is_logit and (j == (target or 0))), "run_idx": 0,
                "reverse_ctx_idx": n - 1 - pos,
                "jsNodeId": (f"L_{int(g.index[i])}-{pos}" if is_logit else f"E_{int(g.index[i])}-{pos}"
                             if kind == "embedding" else f"{layer}_{int(g.index[i])}-{pos}" if kind == "feature"
                             else f"{layer}_error-{pos}"),
                "clerp": (clerps or {}).get(ids[i]) or (f'Output "{g.logit_strs[j]}" (p={g.logit_probabilities[j]:.3f})'
                                                       if is_logit else ""),
                "influence": float(p.cumulative[i]), "activation": float(g.activation[i])}
        nodes.append(node)
    tgt, src = p.edge_mask.nonzero(as_tuple=True)
    links = [{"source": ids[int(s)], "target": ids[int(t)], "weight": float(g.adjacency[t, s])}
             for t, s in zip(tgt.tolist(), src.tolist())]
    meta = {"slug": slug or _slug(g), "scan": g.model_name, "prompt_tokens": list(g.str_tokens), "prompt": g.prompt,
            "node_threshold": float(nt), "schema_version": SCHEMA_VERSION,
            "info": {"creator_name": "interp workbench", "transcoder_set": g.transcoder_name,
                     "generator": {"name": "interp workbench attribution (probes/graph)"}},
            "pruning_settings": {"node_threshold": float(nt), "edge_threshold": float(et)},
            "workbench": {"model_sha256": g.model_sha256, "transcoder_kind": g.transcoder_kind,
                          "n_layers": g.n_layers, "tokens": list(g.tokens), "replacement_score": replacement,
                          "completeness_score": completeness, "target_logit": target,
                          "logit_tokens": list(g.logit_tokens), "logit_probabilities": list(g.logit_probabilities),
                          "logit_strs": list(g.logit_strs), "notes": list(g.notes)}}
    q = {"pinnedIds": list(pinned or []), "supernodes": [list(s) for s in (supernodes or [])], "linkType": "both",
         "clickedId": "", "sg_pos": ""}
    return {"metadata": meta, "qParams": q, "nodes": nodes, "links": links}


def _slug(g: AttributionGraph) -> str:
    words = "".join(c if c.isalnum() else "-" for c in g.prompt[:40].lower()).strip("-")
    return f"{g.model_name.replace('/', '-')}-{words or 'graph'}"


# ----------------------------------------------------------------------------- reading


def read_neuronpedia_file(path: str | Path) -> AttributionGraph:
    """A graph JSON file -> :class:`AttributionGraph` (see :func:`from_neuronpedia`)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise InvalidInput(f"{p} is not a file.")
    if p.stat().st_size > MAX_JSON_BYTES:
        raise InvalidInput(f"{p} is larger than {MAX_JSON_BYTES // 2**20} MB; not a graph this viewer opens.")
    return from_neuronpedia(p.read_bytes())


def from_neuronpedia(data: dict[str, Any] | str | bytes) -> AttributionGraph:
    """Neuronpedia graph JSON (parsed or as text) -> an :class:`AttributionGraph` holding the exported (pruned)
    nodes and links; what the file does not say (model sha, token ids) is left empty."""
    if isinstance(data, (str, bytes)):
        if len(data) > MAX_JSON_BYTES:
            raise InvalidInput(f"The graph JSON is larger than {MAX_JSON_BYTES // 2**20} MB.")
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidInput(f"This is not JSON ({str(e)[:120]}).") from None
        except RecursionError:
            raise InvalidInput("This JSON is nested too deeply to be a graph.") from None
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list) or not isinstance(data.get("links"),
                                                                                               list):
        raise InvalidInput("This is not a Neuronpedia graph: it needs 'metadata', 'nodes' and 'links'.")
    meta = data.get("metadata")
    if not isinstance(meta, dict):
        raise InvalidInput("The graph JSON has no 'metadata' object.")
    toks = meta.get("prompt_tokens")
    if not isinstance(toks, list) or not toks or not all(isinstance(t, str) for t in toks) or len(toks) > 100_000:
        raise InvalidInput("The graph's metadata.prompt_tokens must be a non-empty list of strings.")
    nodes, links = data["nodes"], data["links"]
    if len(nodes) > MAX_NODES or len(links) > MAX_LINKS:
        raise InvalidInput(f"The graph has {len(nodes)} nodes and {len(links)} links; at most {MAX_NODES} and "
                           f"{MAX_LINKS} open here.")
    wb = meta.get("workbench") if isinstance(meta.get("workbench"), dict) else {}
    parsed = [_node(x, i, len(toks)) for i, x in enumerate(nodes)]
    ids = [x["id"] for x in parsed]
    if len(set(ids)) != len(ids):
        raise InvalidInput("The graph JSON repeats a node_id.")
    feature_layers = [x["layer"] for x in parsed if x["kind"] in ("feature", "error")]
    logit_layers = [x["layer"] for x in parsed if x["kind"] == "logit"]
    n_layers = int(wb.get("n_layers") or (logit_layers[0] if logit_layers else max(feature_layers, default=-1) + 1))
    if not 1 <= n_layers <= 10_000:
        raise InvalidInput("The graph's layers cannot be read (no logit node and no feature layer).")
    order = {k: i for i, k in enumerate(("feature", "error", "embedding", "logit"))}
    parsed.sort(key=lambda x: (order[x["kind"]], -x["prob"]) if x["kind"] == "logit"  # logits: most probable first
                else (order[x["kind"]], x["layer"], x["pos"], x["index"]))
    for x in parsed:
        if x["kind"] == "logit":
            x["layer"] = n_layers
        if x["kind"] in ("feature", "error") and not 0 <= x["layer"] < n_layers:
            raise InvalidInput(f"Node {x['id'][:60]!r} is at layer {x['layer']}, outside 0..{n_layers - 1}.")
    where = {x["id"]: i for i, x in enumerate(parsed)}
    adj = torch.zeros(len(parsed), len(parsed))
    for i, link in enumerate(links):
        if not isinstance(link, dict):
            raise InvalidInput(f"Link {i} is not an object.")
        s, t, w = link.get("source"), link.get("target"), link.get("weight")
        if s not in where or t not in where:
            raise InvalidInput(f"Link {i} joins a node that is not in the graph ({str(s)[:40]!r} -> {str(t)[:40]!r}).")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
            raise InvalidInput(f"Link {i}'s weight is not a finite number.")
        adj[where[t], where[s]] = float(w)
    logits = [x for x in parsed if x["kind"] == "logit"]
    if not logits:
        raise InvalidInput("The graph has no logit node: there is nothing it explains.")
    tokens = wb.get("tokens") if isinstance(wb.get("tokens"), list) and len(wb.get("tokens")) == len(toks) else None
    if tokens is None:
        by_pos = {x["pos"]: x["index"] for x in parsed if x["kind"] == "embedding"}
        tokens = [int(by_pos.get(p, -1)) for p in range(len(toks))]
    settings = GraphSettings()
    pr = meta.get("pruning_settings") if isinstance(meta.get("pruning_settings"), dict) else {}
    for name in ("node_threshold", "edge_threshold"):
        v = pr.get(name, meta.get(name))
        if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1:
            setattr(settings, name, float(v))
    info = meta.get("info") if isinstance(meta.get("info"), dict) else {}
    q = data.get("qParams") if isinstance(data.get("qParams"), dict) else {}
    return AttributionGraph(
        model_name=str(meta.get("scan", ""))[:200], model_sha256=str(wb.get("model_sha256", ""))[:64],
        transcoder_name=str(info.get("transcoder_set", ""))[:200],
        transcoder_kind=str(wb.get("transcoder_kind") or ("per_layer" if any(
            x.get("ftype") == "per layer transcoder" for x in parsed) else "cross_layer")),
        n_layers=n_layers, prompt=str(meta.get("prompt", "".join(toks))), tokens=[int(t) for t in tokens],
        str_tokens=list(toks), kind=[x["kind"] for x in parsed],
        layer=np.array([x["layer"] for x in parsed], dtype=np.int64),
        pos=np.array([x["pos"] for x in parsed], dtype=np.int64),
        index=np.array([x["index"] for x in parsed], dtype=np.int64),
        activation=np.array([x["activation"] for x in parsed], dtype=np.float64), adjacency=adj,
        logit_tokens=[x["index"] for x in logits], logit_probabilities=[x["prob"] for x in logits],
        logit_strs=(list(map(str, wb["logit_strs"])) if isinstance(wb.get("logit_strs"), list)
                    and len(wb["logit_strs"]) == len(logits) else [x["clerp_token"] for x in logits]),
        settings=settings,
        notes=["imported from Neuronpedia graph JSON: the exported (pruned) nodes and links only"],
        meta={"slug": str(meta.get("slug", ""))[:200], "pinned": [p for p in q.get("pinnedIds", []) if p in where],
              "supernodes": [s for s in q.get("supernodes", []) if isinstance(s, list)
                             and all(isinstance(v, str) for v in s)],
              "clerps": {x["id"]: x["clerp"] for x in parsed if x["clerp"]}, "imported": True})


def _node(x: Any, i: int, n_tokens: int) -> dict[str, Any]:
    if not isinstance(x, dict):
        raise InvalidInput(f"Node {i} is not an object.")
    nid, ftype, layer, pos = x.get("node_id"), x.get("feature_type"), x.get("layer"), x.get("ctx_idx")
    if not isinstance(nid, str) or not nid or len(nid) > 200:
        raise InvalidInput(f"Node {i} has no node_id.")
    if not isinstance(ftype, str):
        raise InvalidInput(f"Node {nid[:60]!r} has no feature_type.")
    f = ftype.lower()
    kind = ("error" if "error" in f else "embedding" if "embedding" in f else "logit" if "logit" in f
            else "feature" if "transcoder" in f or "feature" in f else None)
    if kind is None:
        raise InvalidInput(f"Node {nid[:60]!r} has an unknown feature_type {ftype[:60]!r}.")
    if isinstance(pos, bool) or not isinstance(pos, int) or not 0 <= pos < n_tokens:
        raise InvalidInput(f"Node {nid[:60]!r}'s ctx_idx {str(pos)[:20]!r} is not a position of the prompt "
                           f"(0..{n_tokens - 1}).")
    if kind == "embedding":
        layer_num = -1
    else:
        try:
            layer_num = int(layer)
        except (TypeError, ValueError):
            raise InvalidInput(f"Node {nid[:60]!r}'s layer {str(layer)[:20]!r} is not a number.") from None
    feat = x.get("feature")
    if kind == "error":
        index = -1
    elif isinstance(feat, int) and not isinstance(feat, bool):
        index = feat
    else:
        parts = nid.split("_")
        try:
            index = int(parts[1])
        except (IndexError, ValueError):
            raise InvalidInput(f"Node {nid[:60]!r} names no feature or token.") from None
    act = x.get("activation")
    act = float(act) if isinstance(act, (int, float)) and not isinstance(act, bool) and math.isfinite(act) else 0.0
    prob = x.get("token_prob", 0.0)
    prob = float(prob) if isinstance(prob, (int, float)) and not isinstance(prob, bool) and math.isfinite(prob) else 0.
    clerp = x.get("clerp") if isinstance(x.get("clerp"), str) else ""
    tok = clerp.split('"')[1] if kind == "logit" and clerp.count('"') >= 2 else f"#{index}"
    return {"id": nid, "kind": kind, "layer": layer_num, "pos": pos, "index": index, "activation": act,
            "prob": prob, "clerp": clerp[:500], "clerp_token": tok, "ftype": ftype}


def write_neuronpedia_file(path: str | Path, graph_json: dict[str, Any]) -> Path:
    """Write graph JSON atomically (a temporary name, then renamed)."""
    from interp.files import atomic_write_bytes

    return atomic_write_bytes(Path(path).expanduser(), json.dumps(graph_json).encode())
