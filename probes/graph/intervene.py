"""Does the graph predict what happens in the model? Ablate (or steer) its top features and compare.

Each of the graph's top feature nodes (by influence on the target logit) is scaled by ``factor`` (0: ablated) at its
position, in one batched forward pass (one row per feature, plus an untouched row), in three settings:

- ``"frozen_direct"``: attention patterns and norm scales held at the prompt's values and every MLP output held
  too, except the feature's own decoded vectors: the change of each downstream node is its direct edge times
  (factor - 1). An exactness check of the edges, computed forward instead of backward.
- ``"frozen_total"``: attention and norms held, downstream features recomputed from the transcoders with their
  active set held and the errors fixed: the graph's total (all-path) effect, linear by construction.
- ``"model"``: the original model (attention and norms live) with every MLP replaced by its transcoder plus the
  prompt's error held fixed (reconstruction + error = the model's own MLP output when nothing is changed);
  downstream features are re-encoded (TopK active sets may change). The claim the issue cares about.

Predictions come from the graph alone: ``(factor - 1) * A[t, s]`` (direct) and ``(factor - 1) * T[t, s]`` with
``T`` the total effects through the linearised graph (:func:`probes.graph.prune.total_effects`). We report the
Pearson correlation between predicted and measured changes of the target logit (over the ablated features) and
of the downstream top features' pre-activations (pooled).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from interp.errors import InvalidInput
from interp.model import Model
from learned.transcoder import Transcoder, io_sites
from probes.graph.attribution import AttributionGraph
from probes.graph.prune import total_effects
from probes.graph.replacement import check_fits, clamp_edits, mlp_io, splice_edits

InterventionMode = Literal["frozen_direct", "frozen_total", "model"]
MODES: tuple[InterventionMode, ...] = ("frozen_direct", "frozen_total", "model")


@dataclass
class InterventionCheck:
    """Predicted vs measured changes per mode; ``r_logit``/``r_features`` are Pearson correlations (NaN when fewer
    than 3 points or no variance)."""

    nodes: list[int]  # graph node indices of the features scaled
    target: int  # the logit node (index among the graph's logits)
    factor: float
    logit_pred: dict[str, list[float]] = field(default_factory=dict)
    logit_meas: dict[str, list[float]] = field(default_factory=dict)
    feat_pred: dict[str, list[float]] = field(default_factory=dict)
    feat_meas: dict[str, list[float]] = field(default_factory=dict)
    r_logit: dict[str, float] = field(default_factory=dict)
    r_features: dict[str, float] = field(default_factory=dict)

    def table(self) -> list[dict[str, float]]:
        return [{"mode": m, "r_logit": self.r_logit[m], "r_features": self.r_features[m],
                 "n_logit": len(self.logit_pred[m]), "n_features": len(self.feat_pred[m])} for m in self.r_logit]


def pearson(a: list[float] | np.ndarray, b: list[float] | np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 3 or a.std() < 1e-12 or b.std() < 1e-12:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def top_features(g: AttributionGraph, n: int, target: int | None = None) -> list[int]:
    """The ``n`` feature nodes with the highest influence on the logits (or one target logit)."""
    infl = g.influence(target)[: g.count("feature")]
    order = torch.argsort(infl, descending=True)
    return [int(i) for i in order[:n] if float(infl[i]) > 0]


@torch.no_grad()
def intervention_check(model: Model, tc: Transcoder, g: AttributionGraph, *, n_nodes: int = 10,
                       n_targets: int = 20, factor: float = 0.0, target: int = 0,
                       modes: tuple[InterventionMode, ...] = MODES) -> InterventionCheck:
    """Scale each of the graph's ``n_nodes`` most influential features by ``factor`` in the model (see the module
    docstring) and compare the changes of the target logit and of the ``n_targets`` most influential downstream
    features with the graph's predictions."""
    check_fits(model, tc)
    if not g.tokens or min(g.tokens) < 0:
        raise InvalidInput("This graph has no token ids (imported without them); it cannot be re-run.")
    if not 0 <= target < len(g.logit_tokens):
        raise InvalidInput(f"Target logit {target} is not one of the graph's {len(g.logit_tokens)} logit nodes.")
    if not np.isfinite(factor):
        raise InvalidInput("The steering factor must be a finite number.")
    nodes = top_features(g, n_nodes, target)
    if not nodes:
        raise InvalidInput("The graph has no feature with influence on this logit.")
    targets = top_features(g, n_targets, target)
    tokens = torch.tensor([g.tokens], device=model.device)
    n, L = tokens.shape[1], tc.cfg.n_layers
    B = len(nodes) + 1  # the last row is untouched
    logit_node = g.slice_of("logit").start + target
    tok = g.logit_tokens[target]
    x, y = mlp_io(model, tokens, tc)
    clean_acts = tc.encode(x[0])  # [pos, L, f]
    error = (y[0] - tc.decode(clean_acts)).expand(B, n, L, tc.cfg.d_model)
    hold = (clean_acts > 0).expand(B, n, L, tc.cfg.d_transcoder)
    rows = [(int(g.layer[i]), int(g.pos[i]), int(g.index[i])) for i in nodes]

    def adjust(layer: int, a: torch.Tensor) -> torch.Tensor:
        a = a.clone()
        for b, (la, p, f) in enumerate(rows):
            if la == layer:
                a[b, p, f] = a[b, p, f] * factor
        return a

    out = InterventionCheck(nodes, target, float(factor))
    acts_all = torch.tensor(g.activation, dtype=torch.float32)
    totals = {t: total_effects(g.adjacency, acts_all, t, g.count("feature")) for t in [logit_node, *targets]}
    for mode in modes:
        store: dict[str, list] = {}
        if mode == "frozen_direct":
            measured = _direct_run(model, tc, tokens, y[0], clean_acts, rows, factor, B, tok)
        else:
            edits = splice_edits(tc, error, store, adjust=adjust, hold_active=hold if mode == "frozen_total" else None)
            if mode == "frozen_total":
                edits.update(clamp_edits(model, tokens, B))
            logits = model.run(tokens.expand(B, n), edit=edits).logits
            measured = {"logit": _demeaned(logits, tok), "pre": store["pre"]}
        lp, lm, fp, fm = [], [], [], []
        for b, s in enumerate(nodes):
            table = g.adjacency if mode == "frozen_direct" else None
            pred_logit = float(table[logit_node, s]) if table is not None else float(totals[logit_node][s])
            lp.append((factor - 1.0) * pred_logit)
            lm.append(float(measured["logit"][b] - measured["logit"][-1]))
            for t in targets:
                if g.layer[t] <= g.layer[s] or g.pos[t] < g.pos[s]:
                    continue
                pred = float(table[t, s]) if table is not None else float(totals[t][s])
                pre = measured["pre"][int(g.layer[t])]  # [B, pos, f]
                fp.append((factor - 1.0) * pred)
                fm.append(float(pre[b, int(g.pos[t]), int(g.index[t])] - pre[-1, int(g.pos[t]), int(g.index[t])]))
        out.logit_pred[mode], out.logit_meas[mode] = lp, lm
        out.feat_pred[mode], out.feat_meas[mode] = fp, fm
        out.r_logit[mode], out.r_features[mode] = pearson(lp, lm), pearson(fp, fm)
    return out


def _demeaned(logits: torch.Tensor | None, tok: int) -> torch.Tensor:
    assert logits is not None
    last = logits[:, -1].float()  # [B, vocab]
    return last[:, tok] - last.mean(-1)


def _direct_run(model: Model, tc: Transcoder, tokens: torch.Tensor, y: torch.Tensor, clean_acts: torch.Tensor,
                rows: list[tuple[int, int, int]], factor: float, B: int, tok: int) -> dict:
    """Attention and norms clamped, every MLP output held at its clean value (``y`` [pos, L, d]) minus the scaled
    feature's decoded vectors: only direct paths carry the change."""
    n, L = tokens.shape[1], tc.cfg.n_layers
    const = y.expand(B, n, L, tc.cfg.d_model).clone()  # [B, pos, L, d]
    for b, (la, p, f) in enumerate(rows):
        act = float(clean_acts[p, la, f])
        for j, out_layer in enumerate(tc.output_layers(la)):
            const[b, p, out_layer] += (factor - 1.0) * act * tc.W_dec[la][f, j]
    inputs, outputs = io_sites(tc.cfg)
    edits = clamp_edits(model, tokens, B)
    for layer, site in enumerate(outputs):
        edits[site] = (lambda c: (lambda act: c.to(act.dtype)))(const[:, :, layer])
    r = model.run(tokens.expand(B, n), read=inputs, edit=edits)
    return {"logit": _demeaned(r.logits, tok), "pre": [tc.pre_acts(r[s].float(), la) for la, s in enumerate(inputs)]}


@dataclass
class RouteShare:
    """How much of one earlier position's effect on a target logit passes through given heads' attention, in the
    linearised replacement model (attention patterns, norm scales, active features and errors held)."""

    position: int
    through_heads: float  # change of the demeaned target logit when those heads stop reading the position
    through_all: float  # ... when no head reads it (every route out of the position cut)

    @property
    def share(self) -> float:
        return self.through_heads / self.through_all if abs(self.through_all) > 1e-9 else float("nan")


@torch.no_grad()
def attention_route_share(model: Model, tc: Transcoder, tokens: torch.Tensor, position: int,
                          heads: list[tuple[int, int]], target_token: int) -> RouteShare:
    """Cut the frozen attention of ``heads`` ((layer, head) pairs) from every later query to ``position``, then of
    every head, and measure the demeaned ``target_token`` logit at the last position (tokens [1, pos]).

    With patterns, scales, active sets and errors held, the model is linear, so the two changes are exact path
    effects: what flows from the position to the logit through those heads' reading of it, and in total."""
    check_fits(model, tc)
    n, L = tokens.shape[1], tc.cfg.n_layers
    if not 0 <= position < n - 1:
        raise InvalidInput(f"Position {position} must be an earlier position of the prompt (0..{n - 2}).")
    for la, h in heads:
        if not (0 <= la < model.info.n_layers and 0 <= h < model.info.n_heads):
            raise InvalidInput(f"Head {la}.{h} is not a head of {model.info.name}.")
    B = 3
    x, y = mlp_io(model, tokens, tc)
    clean_acts = tc.encode(x[0])
    error = (y[0] - tc.decode(clean_acts)).expand(B, n, L, tc.cfg.d_model)
    hold = (clean_acts > 0).expand(B, n, L, tc.cfg.d_transcoder)
    edits = clamp_edits(model, tokens, B)
    r = model.run(tokens, read=[s for s in edits if s.kind == "pattern"])
    for site in [s for s in edits if s.kind == "pattern"]:
        pat = r[site].expand(B, *r[site].shape[1:]).clone()  # [B, head, q, k]
        pat[2, :, position + 1:, position] = 0.0
        for la, h in heads:
            if la == site.layer:
                pat[1, h, position + 1:, position] = 0.0
        edits[site] = (lambda c: (lambda act: c.to(act.dtype)))(pat)
    edits.update(splice_edits(tc, error, hold_active=hold))
    logit = _demeaned(model.run(tokens.expand(B, n), edit=edits).logits, target_token)
    return RouteShare(position, float(logit[0] - logit[1]), float(logit[0] - logit[2]))
