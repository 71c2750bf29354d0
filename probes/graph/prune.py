"""Influence, pruning and scores of an attribution graph: pure functions of its adjacency matrix.

Conventions (circuit-tracer's, rewritten here because it cannot be installed beside our pins): ``A[target,
source]`` is the direct effect of the source node's full activation on the target's pre-activation; nodes are
ordered features, errors, embeddings, logits; ``logit_weights`` [n_nodes] is zero except on logit nodes (their
probabilities, or one-hot on a chosen logit).

- :func:`normalize_matrix`: ``|A|`` with each row summing to 1 (each node's inputs as shares).
- :func:`compute_influence`: ``w^T (B + B^2 + ...)`` for the normalised ``B``: how much of the logits' input flows
  through each node along every path (the graph is acyclic, so the series ends).
- :func:`prune`: keep the nodes making up ``node_threshold`` of the total influence (embeddings and logits always),
  then the edges making up ``edge_threshold`` of the edge influence, then drop nodes left without edges.
- :func:`graph_scores`: replacement score = influence of embeddings / (embeddings + errors); completeness = the
  influence-weighted share of node inputs that do not come from error nodes.
- :func:`total_effects`: each node's total (all-path) effect on one target through the linearised graph, per the
  change of its activation (the prediction an ablation in the model is compared with).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from interp.errors import InvalidInput


def normalize_matrix(a: torch.Tensor) -> torch.Tensor:
    """``|A|`` with rows summing to 1 (rows without inputs stay 0)."""
    m = a.abs()
    return m / m.sum(dim=1, keepdim=True).clamp_min(1e-10)


def compute_influence(a_norm: torch.Tensor, logit_weights: torch.Tensor, max_iter: int = 1000) -> torch.Tensor:
    """``[n_nodes]``: sum over path lengths >= 1 of ``w^T a_norm^k`` (a_norm [n, n] from :func:`normalize_matrix`)."""
    current = logit_weights @ a_norm
    influence = current.clone()
    for _ in range(max_iter):
        if not bool(current.any()):
            return influence
        current = current @ a_norm
        influence += current
    raise InvalidInput("The graph's influence did not converge: its adjacency matrix has a cycle.")


def find_threshold(scores: torch.Tensor, threshold: float) -> float:
    """The score from which the highest scores make up ``threshold`` of the total (keep ``scores >= it``)."""
    flat = scores.flatten()
    if flat.numel() == 0:
        return 0.0
    ranked = torch.sort(flat, descending=True).values
    total = ranked.sum()
    if float(total) <= 0:
        return float("inf")
    cumulative = torch.cumsum(ranked, 0) / total
    idx = min(int(torch.searchsorted(cumulative, torch.tensor(threshold, dtype=cumulative.dtype))), len(ranked) - 1)
    return float(ranked[idx])


@dataclass
class Pruned:
    """What :func:`prune` keeps: node and edge masks, each node's influence (share of the logits' inputs) and the
    cumulative influence share at which each kept node came in."""

    node_mask: torch.Tensor  # [n_nodes] bool
    edge_mask: torch.Tensor  # [n_nodes, n_nodes] bool (target, source)
    influence: torch.Tensor  # [n_nodes] node influence on the weighted logits (logits: their weight)
    cumulative: torch.Tensor  # [n_nodes] cumulative share, in influence order (1.0 for embeddings and logits)


def check_thresholds(node_threshold: float, edge_threshold: float) -> None:
    for name, v in (("node_threshold", node_threshold), ("edge_threshold", edge_threshold)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 < float(v) <= 1.0:
            raise InvalidInput(f"{name} is a share of the total influence in (0, 1], got {v!r}.")


def prune(a: torch.Tensor, logit_weights: torch.Tensor, n_embeddings: int, n_logits: int, n_features: int,
          node_threshold: float = 0.8, edge_threshold: float = 0.98) -> Pruned:
    """circuit-tracer's pruning of a graph of ``n_features`` features, then errors, ``n_embeddings`` embeddings
    and ``n_logits`` logits (the last ``n_embeddings + n_logits`` nodes are always kept)."""
    check_thresholds(node_threshold, edge_threshold)
    n = a.shape[0]
    keep_always = n_embeddings + n_logits
    a_norm = normalize_matrix(a)
    influence = compute_influence(a_norm, logit_weights)
    node_mask = influence >= find_threshold(influence[: n - keep_always], node_threshold)
    node_mask[n - keep_always:] = True
    order = torch.argsort(influence, descending=True)
    share = torch.zeros(n)
    total = influence[: n - keep_always].sum().clamp_min(1e-12)
    running = 0.0
    for i in order.tolist():
        if i < n - keep_always:
            running += float(influence[i])
            share[i] = running / float(total)
    share[n - keep_always:] = 1.0
    pruned = a.clone()
    pruned[~node_mask] = 0
    pruned[:, ~node_mask] = 0
    p_norm = normalize_matrix(pruned)
    edge_influence = compute_influence(p_norm, logit_weights) + logit_weights
    edge_scores = p_norm * edge_influence[:, None]
    edge_mask = edge_scores >= find_threshold(edge_scores, edge_threshold)
    edge_mask &= pruned != 0
    # a feature or error node needs an outgoing edge, a feature an incoming one; repeat until nothing changes
    old = torch.zeros_like(node_mask)
    while not torch.equal(old, node_mask):
        old = node_mask.clone()
        node_mask[: n - keep_always] &= edge_mask[:, : n - keep_always].any(0)
        node_mask[:n_features] &= edge_mask[:n_features].any(1)
        edge_mask[~node_mask] = False
        edge_mask[:, ~node_mask] = False
    return Pruned(node_mask, edge_mask, influence, share)


def graph_scores(a: torch.Tensor, logit_weights: torch.Tensor, error_slice: slice,
                 embedding_slice: slice) -> tuple[float, float]:
    """(replacement score, completeness score) of a graph (see the module docstring)."""
    a_norm = normalize_matrix(a)
    influence = compute_influence(a_norm, logit_weights)
    emb = float(influence[embedding_slice].sum())
    err = float(influence[error_slice].sum())
    replacement = emb / (emb + err) if emb + err > 0 else float("nan")
    non_error = 1 - a_norm[:, error_slice].sum(dim=-1)
    has_inputs = a.abs().sum(dim=1) > 0
    non_error = torch.where(has_inputs, non_error, torch.ones_like(non_error))
    output_influence = influence + logit_weights
    completeness = float((non_error * output_influence).sum() / output_influence.sum().clamp_min(1e-12))
    return replacement, completeness


def total_effects(a: torch.Tensor, activations: torch.Tensor, target: int, n_features: int,
                  max_iter: int = 1000) -> torch.Tensor:
    """``[n_nodes]``: the total effect of each node's full activation on node ``target``'s pre-activation through
    every path of the linearised graph (features pass on changes of their pre-activation one for one: the
    active set is held). ``activations`` [n_nodes] holds the features' activations (the first ``n_features``)."""
    per_unit = torch.zeros_like(a)
    act = activations[:n_features]
    safe = torch.where(act.abs() > 1e-12, act, torch.ones_like(act))
    per_unit[:, :n_features] = torch.where(act.abs() > 1e-12, a[:, :n_features] / safe, 0.0)
    v = torch.zeros(a.shape[0], dtype=a.dtype)
    v[target] = 1.0
    out = torch.zeros_like(v)
    for _ in range(max_iter):
        if not bool(v.any()):
            return out
        out += v @ a
        v = v @ per_unit
    raise InvalidInput("The graph's total effects did not converge: its adjacency matrix has a cycle.")
