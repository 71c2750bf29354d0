"""Attribution patching: the first-order (gradient) estimate of every activation-patching cell at once.

``effect(node) ~= (a_clean - a_corrupted) . d metric / d a`` at the corrupted run (Nanda 2023): one clean
forward, one corrupted forward and one backward for every node of every sweep, instead of one forward per
cell. Scores are normalised like :class:`probes.patching.activation.SweepResult` (0 = corrupted, 1 = clean), so the two
can be compared cell by cell (:func:`compare`).

Gradients come from the model interface (``Model.run(read=sites, grad_of=metric)``, one backward pass on any
backend) with the denoising convention of TransformerLens's ``attribution_patch``; edge attribution and
faithfulness are TransformerLens's own (``attribution_patch(granularity="edge")`` and ``faithfulness``, through
:mod:`interp.engines`, bridge backend only). Written here: the node scores read the whole batch from ONE backward
(the metric is the batch mean, whose gradient at pair ``i``'s activations is pair ``i``'s own over ``batch``) and
cover every sweep the exact engine has (residual stream, attention and MLP outputs by position, head outputs,
q/k/v), whereas ``attribution_patch`` runs 2 forwards + 1 backward per pair and scores only embed/head/MLP nodes;
and ``attribution_patch`` refuses attention-only models (its node graph needs ``hook_mlp_out``), which this module
does not need. The tests check the head and MLP scores equal ``attribution_patch``'s on a GPT-2. Edge attribution
keeps TransformerLens's graph, which includes every MLP: on an attention-only model it is refused with an
InvalidInput.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from interp.engines import edge_attribution_run
from interp.errors import InvalidInput
from interp.model import Model
from probes.patching.activation import (
    PatchMetric,
    SweepResult,
    check_kinds,
    layout,
    metric_fn,
    require_gap,
    sweep_sites,
)
from tasks.pairs import PairBatch


@dataclass
class AttributionResult:
    """Per kind, the estimated raw metric change of patching each cell, per pair: ``[*cells, batch]``."""
    estimates: dict[str, torch.Tensor]
    clean: torch.Tensor  # [batch] metric on the clean run
    corrupted: torch.Tensor  # [batch]
    metric: str
    passes: dict[str, int]  # forward and backward passes used

    @property
    def gap(self) -> float:
        return float(self.clean.mean() - self.corrupted.mean())

    def normalised(self, kind: str) -> torch.Tensor:
        """``[*cells]``: estimated (patched - corrupted) / (clean - corrupted), comparable with an exact sweep."""
        if kind not in self.estimates:
            raise InvalidInput(f"No attribution for {kind!r}; have {', '.join(self.estimates)}.")
        return self.estimates[kind].mean(-1) / require_gap(self.clean, self.corrupted)


def attribute(handle: Model, batch: PairBatch, kinds: tuple[str, ...] = ("head_out",), *,
              metric: PatchMetric = "logit_diff") -> AttributionResult:
    """Attribution patching of every cell of ``kinds`` in 2 forward passes and 1 backward pass.

    ``mlp_out`` is left out on attention-only models (there is nothing to patch); ``estimates`` holds the kinds
    actually scored."""
    kinds = check_kinds(kinds)
    kinds = tuple(k for k in kinds if not (k == "mlp_out" and handle.info.attn_only)) or kinds
    fn = metric_fn(batch, metric)
    sites = sweep_sites(handle, kinds)
    clean = handle.run(batch.clean, read=sites)  # supplies activations only: no autograd graph
    corr = handle.run(batch.corrupted, read=sites, grad_of=lambda lg: fn(lg).mean())
    require_gap(fn(clean.logits).detach().cpu(), fn(corr.logits).detach().cpu())
    n = len(batch)
    out: dict[str, torch.Tensor] = {}
    for kind in kinds:
        per_layer = []
        for site in handle.sites(layout(handle, kind).site):
            prod = (clean.acts[site] - corr.acts[site]) * corr.grads[site] * n  # per pair, undo the 1/batch
            per_layer.append(_reduce(kind, prod))
        out[kind] = torch.stack(per_layer).cpu()  # [layer, ..., batch]
    return AttributionResult(out, fn(clean.logits).cpu(), fn(corr.logits).cpu(), metric, {"forward": 2, "backward": 1})


def _reduce(kind: str, prod: torch.Tensor) -> torch.Tensor:
    """Sum the elementwise products over features into the cell layout, batch last."""
    if kind in ("resid_pre", "attn_out", "mlp_out"):
        return prod.sum(-1).transpose(0, 1)  # [batch, pos, d_model] -> [pos, batch]
    if kind == "head_out_by_pos":
        return prod.sum(-1).permute(1, 2, 0)  # [batch, pos, head, d_head] -> [pos, head, batch]
    return prod.sum(dim=(1, 3)).transpose(0, 1)  # [batch, pos, head, d_head] -> [head, batch]


# ----------------------------------------------------------------------------- comparison with the exact sweep


@dataclass
class Comparison:
    """Attribution vs exact activation patching over the cells of one sweep."""
    kind: str
    exact: np.ndarray  # [cells] normalised
    estimate: np.ndarray  # [cells] normalised
    labels: list[str]
    pearson: float
    spearman: float
    top_overlap: float  # fraction of the exact top-k (by |effect|) that the estimate's top-k also holds
    k: int

    def to_dict(self) -> dict[str, float]:
        return {"pearson": self.pearson, "spearman": self.spearman, "top_overlap": self.top_overlap, "k": self.k}


def _rank(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    return ranks


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def compare(exact: SweepResult, attr: AttributionResult, k: int = 5) -> Comparison:
    """Pearson and Spearman correlation and top-k overlap of estimated vs exact normalised effects."""
    e = exact.normalised().flatten().numpy().astype(np.float64)
    a = attr.normalised(exact.kind).flatten().numpy().astype(np.float64)
    labels = exact.table()["component"].tolist()
    k = min(k, len(e))
    top_e = set(np.argsort(-np.abs(e), kind="stable")[:k].tolist())
    top_a = set(np.argsort(-np.abs(a), kind="stable")[:k].tolist())
    return Comparison(exact.kind, e, a, labels, _corr(e, a), _corr(_rank(e), _rank(a)), len(top_e & top_a) / k, k)


# ----------------------------------------------------------------------------- edges (TransformerLens)


@dataclass
class EdgeReport:
    """Top edges by attribution score and how much of the clean-corrupted gap keeping only them recovers."""
    edges: list[tuple[str, str, float]]  # (writer, reader, score) strongest first
    faithfulness: dict[int, float]  # k -> mean recovered fraction over the pairs evaluated
    total_edges: int
    pairs_evaluated: int


def _node_label(node) -> str:
    where = f"@{node.position}"
    if node.kind in ("attn_head_out",):
        return f"{node.layer}.{node.head}{where}"
    if node.kind in ("q_input", "k_input", "v_input"):
        return f"{node.layer}.{node.head} {node.kind[0]}{where}"
    if node.kind == "embed":
        return f"embed{where}"
    if node.kind == "logits":
        return f"logits{where}"
    return f"{node.kind} {node.layer}{where}"


def edge_attribution(handle: Model, batch: PairBatch, *, ks: tuple[int, ...] = (10, 50, 200),
                     metric: PatchMetric = "logit_diff", max_pairs: int = 4, top: int = 20) -> EdgeReport:
    """TransformerLens's edge attribution patching (Syed et al. 2023) and the faithfulness of its top-k edges.

    Scores come from ``attribution_patch(granularity="edge")`` over the first ``max_pairs`` pairs (2 forwards
    + 1 backward each); faithfulness (``faithfulness``: every other edge ablated to its corrupted value, exact)
    is averaged over the same pairs. Needs an attention + MLP model.
    """
    if handle.info.attn_only:
        raise InvalidInput(f"Edge attribution uses TransformerLens's edge graph, which needs MLP layers; "
                           f"{handle.info.name} is attention-only.", "Use node attribution (attribute) instead.")
    rows = list(range(min(max_pairs, len(batch))))
    scores: dict = {}
    n_edges = 0
    fracs: dict[int, list[float]] = {k: [] for k in ks}
    for i in rows:
        single = batch.select([i])
        fn = metric_fn(single, metric)
        edge_scores, recovered = edge_attribution_run(handle, single.clean, single.corrupted,
                                                      lambda lg, fn=fn: fn(lg).sum(), ks)
        for edge, s in edge_scores.items():
            scores[edge] = scores.get(edge, 0.0) + s / len(rows)
        n_edges = len(edge_scores)
        for k in ks:
            fracs[k].append(recovered[k])
    best = sorted(scores.items(), key=lambda kv: abs(kv[1]), reverse=True)[:top]
    return EdgeReport([(_node_label(w), _node_label(r), float(s)) for (w, r), s in best],
                      {k: float(np.mean(v)) for k, v in fracs.items()}, n_edges, len(rows))
