"""The attribution graph of one prompt through a transcoder set (Ameisen et al. 2025, "Circuit Tracing").

The local replacement model: every MLP's output is replaced by its transcoder's features plus an error node per
(layer, position) that makes up the difference, attention patterns and normalisation scales are frozen at their
values on this prompt, so the model is linear in its residual stream. Nodes (in this order): active features
(layer, position, feature; TopK's active set is held), one error node per (layer, position), one embedding node
per position (token + position embedding: the residual stream entering block 0), and up to ``max_logits`` logit
nodes covering ``logit_probability`` of the next-token probability at the last position, each the demeaned
unembedding direction (logit minus the mean logit). ``A[target, source]`` is the direct effect of the source's
full value (a feature's activation times its decoder vectors; the error or embedding vector) on the target's
pre-activation (a feature's encoder input, a logit node's demeaned logit), along paths through attention and the
residual stream only (no other node in between).

Edges come from batched backward passes, as circuit-tracer does: one forward pass with ``batch_size`` copies of
the prompt (patterns and scales detached, every MLP output replaced by a constant so no gradient runs through an
MLP), then one backward pass per batch of targets, each row injecting one target's encoder (or unembedding)
vector at its position; the gradients at every MLP output and at the embeddings, dotted with the sources'
vectors, are the rows of ``A``. With ``max_feature_nodes``, features are visited in order of their estimated
influence on the logits (re-estimated after every batch) and the rest are left out of the graph.
Written here because circuit-tracer cannot be installed beside our pins; everything goes through
``Model.run(..., grad=True)`` with edits, so it works on any model the interface loads.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from interp.errors import InvalidInput
from interp.model import Model
from interp.sites import Site
from interp.types import Progress
from learned.transcoder import Transcoder, io_sites
from probes.graph.prune import Pruned, check_thresholds, compute_influence, graph_scores, normalize_matrix, prune
from probes.graph.replacement import check_fits, freeze_edits

NodeKind = Literal["feature", "error", "embedding", "logit"]
NODE_KINDS: tuple[str, ...] = ("feature", "error", "embedding", "logit")
#: Without max_feature_nodes, at most this many features become nodes (the adjacency matrix is n x n floats).
MAX_NODES = 8192


@dataclass
class GraphSettings:
    """How a graph is computed and pruned (circuit-tracer's defaults)."""

    max_logits: int = 10
    logit_probability: float = 0.95
    batch_size: int = 64
    max_feature_nodes: int = 0  # 0: every active feature (up to MAX_NODES)
    node_threshold: float = 0.8
    edge_threshold: float = 0.98

    def check(self) -> GraphSettings:
        for name, lo, hi in (("max_logits", 1, 100), ("batch_size", 1, 4096), ("max_feature_nodes", 0, 10**6)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= int(v) <= hi:
                raise InvalidInput(f"Graph setting {name} must be a whole number {lo}..{hi}, got {v!r}.")
        p = self.logit_probability
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or not 0 < p <= 1:
            raise InvalidInput(f"Graph setting logit_probability must be in (0, 1], got {p!r}.")
        check_thresholds(self.node_threshold, self.edge_threshold)
        return self


@dataclass
class AttributionGraph:
    """Nodes as parallel arrays (``kind``, ``layer``, ``pos``, ``index``, ``activation``) and ``adjacency``
    ``[n_nodes, n_nodes]`` (target, source). ``layer``: -1 for embeddings, n_layers for logits; ``index``: the
    feature number, the token id of an embedding or logit node, -1 for errors; ``activation``: a feature's
    activation, an error vector's norm, a logit node's logit."""

    model_name: str
    model_sha256: str
    transcoder_name: str
    transcoder_kind: str
    n_layers: int
    prompt: str
    tokens: list[int]
    str_tokens: list[str]
    kind: list[str]
    layer: np.ndarray  # [n_nodes] int
    pos: np.ndarray  # [n_nodes] int
    index: np.ndarray  # [n_nodes] int
    activation: np.ndarray  # [n_nodes] float
    adjacency: torch.Tensor  # [n_nodes, n_nodes] float32 (target, source)
    logit_tokens: list[int]
    logit_probabilities: list[float]
    logit_strs: list[str]
    settings: GraphSettings = field(default_factory=GraphSettings)
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ node bookkeeping

    @property
    def n_nodes(self) -> int:
        return len(self.kind)

    def count(self, kind: NodeKind) -> int:
        return sum(k == kind for k in self.kind)

    def slice_of(self, kind: NodeKind) -> slice:
        idx = [i for i, k in enumerate(self.kind) if k == kind]
        return slice(idx[0], idx[-1] + 1) if idx else slice(0, 0)

    def logit_weights(self, target: int | None = None) -> torch.Tensor:
        """``[n_nodes]``: the logit nodes' probabilities (``target`` None) or one-hot on logit node ``target``."""
        w = torch.zeros(self.n_nodes)
        s = self.slice_of("logit")
        if target is None:
            w[s] = torch.tensor(self.logit_probabilities, dtype=torch.float32)
        else:
            if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or \
                    not 0 <= int(target) < len(self.logit_tokens):
                raise InvalidInput(f"Target logit {target!r} is not one of this graph's "
                                   f"{len(self.logit_tokens)} logit nodes.")
            w[s.start + int(target)] = 1.0
        return w

    def node_id(self, i: int) -> str:
        """Neuronpedia's node ids: ``{layer}_{feature}_{pos}`` for features, ``E_{token}_{pos}`` for embeddings,
        ``{n_layers}_{token}_{pos}`` for logits, ``{layer}_error_{pos}`` for error nodes."""
        k, la, p, ix = self.kind[i], int(self.layer[i]), int(self.pos[i]), int(self.index[i])
        if k == "feature":
            return f"{la}_{ix}_{p}"
        if k == "error":
            return f"{la}_error_{p}"
        if k == "embedding":
            return f"E_{ix}_{p}"
        return f"{self.n_layers}_{ix}_{p}"

    def label(self, i: int) -> str:
        """A short readable name of node ``i``."""
        k, la, p, ix = self.kind[i], int(self.layer[i]), int(self.pos[i]), int(self.index[i])
        tok = self.str_tokens[p] if 0 <= p < len(self.str_tokens) else "?"
        if k == "feature":
            return f"L{la} #{ix} @{p} {tok!r}"
        if k == "error":
            return f"error L{la} @{p} {tok!r}"
        if k == "embedding":
            return f"emb {tok!r} @{p}"
        j = i - self.slice_of("logit").start
        return f"logit {self.logit_strs[j]!r} (p={self.logit_probabilities[j]:.3f})"

    # ------------------------------------------------------------------ analyses of the graph

    def pruned(self, node_threshold: float | None = None, edge_threshold: float | None = None,
               target: int | None = None) -> Pruned:
        """circuit-tracer's pruning for the logits (or one ``target`` logit node); see probes.graph.prune."""
        return prune(self.adjacency, self.logit_weights(target), self.count("embedding"), self.count("logit"),
                     self.count("feature"),
                     self.settings.node_threshold if node_threshold is None else node_threshold,
                     self.settings.edge_threshold if edge_threshold is None else edge_threshold)

    def scores(self, target: int | None = None, pruned: Pruned | None = None) -> tuple[float, float]:
        """(replacement, completeness) of the whole graph, or of its pruned part."""
        a = self.adjacency
        if pruned is not None:
            a = a * pruned.edge_mask
        return graph_scores(a, self.logit_weights(target), self.slice_of("error"), self.slice_of("embedding"))

    def influence(self, target: int | None = None) -> torch.Tensor:
        return compute_influence(normalize_matrix(self.adjacency), self.logit_weights(target))


# ----------------------------------------------------------------------------- computing a graph


@dataclass
class _Prompt:
    """Everything about the prompt's clean forward pass the graph needs."""

    tokens: torch.Tensor  # [1, pos]
    x: torch.Tensor  # [pos, L, d] transcoder inputs
    y: torch.Tensor  # [pos, L, d] MLP outputs
    embed: torch.Tensor  # [pos, d] residual stream entering block 0
    acts: torch.Tensor  # [pos, L, f] feature activations
    error: torch.Tensor  # [pos, L, d]
    logits: torch.Tensor  # [d_vocab] at the last position


@torch.no_grad()
def _clean(model: Model, tc: Transcoder, tokens: torch.Tensor) -> _Prompt:
    inputs, outputs = io_sites(tc.cfg)
    emb = Site("resid_pre", 0)
    r = model.run(tokens, read=[emb, *inputs, *outputs])
    x = torch.stack([r[s][0] for s in inputs], dim=1).float()  # [pos, L, d]
    y = torch.stack([r[s][0] for s in outputs], dim=1).float()
    acts = tc.encode(x)
    error = y - tc.decode(acts)
    assert r.logits is not None
    return _Prompt(tokens, x, y, r[emb][0].float(), acts, error, r.logits[0, -1].float())


def logit_nodes(logits: torch.Tensor, max_logits: int, probability: float) -> tuple[list[int], list[float]]:
    """The most probable next tokens until their probabilities sum to ``probability`` (at most ``max_logits``)."""
    probs = logits.float().softmax(-1)
    top = torch.sort(probs, descending=True)
    toks, ps, total = [], [], 0.0
    for p, t in zip(top.values.tolist(), top.indices.tolist()):
        toks.append(int(t))
        ps.append(float(p))
        total += p
        if total >= probability or len(toks) >= max_logits:
            break
    return toks, ps


class _Backward:
    """One forward pass with ``batch`` copies of the prompt (frozen attention and norms, constant MLP outputs)
    whose graph is kept for many backward passes; :meth:`rows` turns a batch of injected target vectors into rows
    of the adjacency matrix."""

    def __init__(self, model: Model, tc: Transcoder, pr: _Prompt, batch: int, columns: _Columns):
        self.tc, self.pr, self.cols, self.batch = tc, pr, columns, batch
        inputs, outputs = io_sites(tc.cfg)
        self.inputs, self.outputs = inputs, outputs
        n = pr.tokens.shape[1]
        edits = freeze_edits(model)
        for layer, site in enumerate(outputs):
            const = pr.y[:, layer].detach()  # [pos, d]
            edits[site] = (lambda c: (lambda act: c.to(act.dtype).expand_as(act).clone()))(const)
        self.emb_site = Site("resid_pre", 0)
        self.unembed = Site("unembed_in")
        run = model.run(pr.tokens.expand(batch, n), read=[self.emb_site, *inputs, *outputs, self.unembed],
                        edit=edits, grad=True, logit_positions=torch.full((batch,), n - 1))
        self.reads = run.acts
        self.leaves = [self.reads[self.emb_site]] + [self.reads[s] for s in outputs]

    def rows(self, targets: list[tuple[str, int, int, torch.Tensor]]) -> torch.Tensor:
        """``[len(targets), n_columns]``: each target ``(kind, layer, pos, vector)`` injects ``vector`` at its
        layer's transcoder input (``kind`` "feature") or at the final norm's output (``kind`` "logit")."""
        metric = self.leaves[0].new_zeros(())
        for b, (kind, layer, pos, vec) in enumerate(targets):
            site = self.inputs[layer] if kind == "feature" else self.unembed
            act = self.reads[site]
            here = act[b, pos] if kind == "feature" else act[b, -1]  # [d]
            metric = metric + (here.float() * vec).sum()
        found = torch.autograd.grad(metric, self.leaves, retain_graph=True, allow_unused=True)
        grads = [torch.zeros_like(leaf) if g is None else g for g, leaf in zip(found, self.leaves)]
        g_emb = grads[0][: len(targets)].float()  # [B, pos, d]
        g_out = [g[: len(targets)].float() for g in grads[1:]]  # L x [B, pos, d]
        return self.cols.edges(g_emb, g_out)


@dataclass
class _Columns:
    """The source side: every feature, error and embedding node's vector, to dot with the gradients. Features are
    grouped by (source layer, position), so each group's edges are one small matmul of the gradients at that
    position (every output layer it writes, side by side) with its decoder vectors scaled by the activations."""

    tc: Transcoder
    pr: _Prompt
    feat_layer: torch.Tensor  # [n_feat]
    feat_pos: torch.Tensor
    feat_idx: torch.Tensor
    feat_act: torch.Tensor

    def __post_init__(self) -> None:
        self.groups: list[tuple[torch.Tensor, int, int, torch.Tensor]] = []  # (columns, layer, pos, [n_out*d, m])
        with torch.no_grad():
            for src in range(self.tc.cfg.n_layers):
                sel = (self.feat_layer == src).nonzero().flatten()
                if sel.numel() == 0:
                    continue
                dec = self.tc.decoder_vectors(src, self.feat_idx[sel]).detach().float()  # [m, n_out, d]
                dec = dec * self.feat_act[sel][:, None, None]
                pos = self.feat_pos[sel]
                for p in pos.unique().tolist():
                    here = (pos == p).nonzero().flatten()
                    self.groups.append((sel[here], src, int(p), dec[here].flatten(1).t().contiguous()))

    def edges(self, g_emb: torch.Tensor, g_out: list[torch.Tensor]) -> torch.Tensor:
        """``[B, n_features + n_errors + n_embeddings]`` direct effects from gradients at the embeddings
        ``g_emb`` [B, pos, d] and at every MLP output ``g_out[l]`` [B, pos, d]."""
        B, n, _ = g_emb.shape
        L = self.tc.cfg.n_layers
        g_all = torch.stack(g_out, dim=2)  # [B, pos, L, d]
        feats = torch.zeros(B, len(self.feat_idx))
        for cols, src, p, dec in self.groups:
            outs = self.tc.output_layers(src)  # contiguous: [src] or src..L-1
            g = g_all[:, p, outs[0]:outs[-1] + 1].reshape(B, -1)  # [B, n_out * d]
            feats[:, cols] = g @ dec
        errors = (g_all * self.pr.error[None]).sum(-1)  # [B, pos, L]
        emb = (g_emb * self.pr.embed).sum(-1)  # [B, n]
        return torch.cat([feats, errors.transpose(1, 2).reshape(B, L * n), emb], dim=1)


def attribute(model: Model, tc: Transcoder, prompt: str | torch.Tensor, settings: GraphSettings | None = None, *,
              transcoder_name: str = "", progress: Progress | None = None) -> AttributionGraph:
    """The attribution graph of ``prompt`` (text, or token ids [pos] / [1, pos] with BOS if the model uses one)."""
    s = (settings or GraphSettings()).check()
    check_fits(model, tc)
    if isinstance(prompt, torch.Tensor):
        ids = prompt.reshape(1, -1) if prompt.ndim <= 2 and (prompt.ndim < 2 or prompt.shape[0] == 1) else None
        if ids is None:
            raise InvalidInput("A graph is of one prompt: give text or one row of token ids.")
        batch = model.tokenize(ids)
        text = model.tokenizer.decode(ids[0].tolist())
    else:
        if not isinstance(prompt, str):
            raise InvalidInput(f"A graph's prompt is text, got {type(prompt).__name__}.")
        batch = model.tokenize([prompt])
        text = prompt
    tokens = batch.tokens[:, : int(batch.lengths[0])]
    if tokens.shape[1] < 1:
        raise InvalidInput("The prompt has no tokens.")
    tc = tc.eval()
    pr = _clean(model, tc, tokens)
    n, L = tokens.shape[1], tc.cfg.n_layers
    active = (pr.acts > 0).nonzero()  # [n_active, 3] (pos, layer, feature)
    order = torch.argsort(active[:, 1] * (n * tc.cfg.d_transcoder) + active[:, 0] * tc.cfg.d_transcoder
                          + active[:, 2])
    active = active[order]
    notes: list[str] = []
    cap = int(s.max_feature_nodes) or MAX_NODES
    if not s.max_feature_nodes and len(active) > MAX_NODES:
        notes.append(f"{len(active)} features are active; the {MAX_NODES} most influential were kept.")
    cols = _Columns(tc, pr, active[:, 1], active[:, 0], active[:, 2],
                    pr.acts[active[:, 0], active[:, 1], active[:, 2]])
    logit_toks, logit_ps = logit_nodes(pr.logits, s.max_logits, s.logit_probability)
    w = model.weights()
    w_u = w.W_U.float()  # [d, vocab]
    u = w_u[:, logit_toks] - w_u.mean(1, keepdim=True)  # [d, n_logits] demeaned unembedding directions
    n_feat, n_err, n_logit = len(active), L * n, len(logit_toks)
    n_src = n_feat + n_err + n
    rows_feat = torch.zeros(n_feat, n_src)
    rows_logit = torch.zeros(n_logit, n_src)
    done = torch.zeros(n_feat, dtype=torch.bool)
    row_sums = torch.zeros(n_feat)  # sum of |edges| into each feature visited so far
    batch_size = int(min(s.batch_size, max(n_logit, min(cap, n_feat)) or 1))
    if progress is not None:
        progress(0.0, "forward pass with frozen attention and norms")
    bw = _Backward(model, tc, pr, batch_size, cols)
    for start in range(0, n_logit, batch_size):
        chunk = range(start, min(n_logit, start + batch_size))
        rows_logit[list(chunk)] = bw.rows([("logit", L, n - 1, u[:, j]) for j in chunk])
    n_visit = min(cap, n_feat)
    enc = tc.W_enc.detach()
    visited = 0
    while visited < n_visit:
        todo = (~done).nonzero().flatten()
        if n_visit < n_feat:  # the most influential features not yet visited, estimated from the rows so far
            infl = _feature_influence(rows_feat, row_sums, rows_logit, torch.tensor(logit_ps), n_feat)
            todo = todo[torch.argsort(infl[todo], descending=True)]
        take = todo[: min(batch_size, n_visit - visited)]
        targets = [("feature", int(cols.feat_layer[i]), int(cols.feat_pos[i]), enc[int(cols.feat_layer[i]), :,
                                                                                    int(cols.feat_idx[i])].float())
                   for i in take]
        rows_feat[take] = bw.rows(targets)
        row_sums[take] = rows_feat[take].abs().sum(1)
        done[take] = True
        visited += len(take)
        if progress is not None:
            progress(visited / n_visit, f"edges into {visited}/{n_visit} features")
    keep = done.nonzero().flatten()
    if len(keep) < n_feat:
        notes.append(f"{n_feat} features were active; the {len(keep)} most influential are in the graph "
                     f"(max_feature_nodes {s.max_feature_nodes or MAX_NODES}).")
        src_keep = torch.cat([keep, torch.arange(n_feat, n_src)])
        rows_feat, rows_logit = rows_feat[keep][:, src_keep], rows_logit[:, src_keep]
        cols = _Columns(tc, pr, cols.feat_layer[keep], cols.feat_pos[keep], cols.feat_idx[keep], cols.feat_act[keep])
        n_feat = len(keep)
    adjacency = _assemble(rows_feat, rows_logit, n_feat, n_err, n)
    str_tokens = model.to_str_tokens(tokens[0])
    kind = ["feature"] * n_feat + ["error"] * n_err + ["embedding"] * n + ["logit"] * n_logit
    err_layer = np.repeat(np.arange(L), n)
    err_pos = np.tile(np.arange(n), L)
    layer = np.concatenate([cols.feat_layer.numpy(), err_layer, np.full(n, -1), np.full(n_logit, L)]).astype(np.int64)
    pos = np.concatenate([cols.feat_pos.numpy(), err_pos, np.arange(n), np.full(n_logit, n - 1)]).astype(np.int64)
    index = np.concatenate([cols.feat_idx.numpy(), np.full(n_err, -1), tokens[0].cpu().numpy(),
                            np.array(logit_toks, dtype=np.int64)]).astype(np.int64)
    err_norm = pr.error.norm(dim=-1).t().reshape(-1).numpy()  # [L * n] layer-major
    activation = np.concatenate([cols.feat_act.numpy(), err_norm, pr.embed.norm(dim=-1).numpy(),
                                 pr.logits[logit_toks].numpy()]).astype(np.float64)
    return AttributionGraph(
        model_name=model.info.name, model_sha256=model.info.sha256, transcoder_name=transcoder_name,
        transcoder_kind=tc.cfg.kind, n_layers=L, prompt=text, tokens=tokens[0].tolist(), str_tokens=str_tokens,
        kind=kind, layer=layer, pos=pos, index=index, activation=activation, adjacency=adjacency,
        logit_tokens=logit_toks, logit_probabilities=logit_ps,
        logit_strs=[model.tokenizer.decode([t]) for t in logit_toks], settings=s, notes=notes)


def _feature_influence(rows_feat: torch.Tensor, row_sums: torch.Tensor, rows_logit: torch.Tensor,
                       logit_ps: torch.Tensor, n_feat: int, max_iter: int = 1000) -> torch.Tensor:
    """``[n_feat]``: :func:`compute_influence` restricted to features, from the rows computed so far, without
    building the square matrix (only feature -> feature and feature -> logit edges carry influence onwards)."""
    logit_sums = rows_logit.abs().sum(1).clamp_min(1e-10)
    v = (logit_ps / logit_sums) @ rows_logit[:, :n_feat].abs()
    total = v.clone()
    visited = (row_sums > 0).nonzero().flatten()  # rows not yet computed are zero: leave them out
    ff = rows_feat[visited, :n_feat].abs()  # [visited, n_feat]
    for _ in range(max_iter):
        v = (v[visited] / row_sums[visited].clamp_min(1e-10)) @ ff
        if not bool(v.any()):
            return total
        total += v
    raise InvalidInput("The graph's influence did not converge: its adjacency matrix has a cycle.")


def _assemble(rows_feat: torch.Tensor, rows_logit: torch.Tensor, n_feat: int, n_err: int, n_emb: int) -> torch.Tensor:
    """The square adjacency [n_nodes, n_nodes] from the computed rows (errors and embeddings have no inputs)."""
    n_logit = rows_logit.shape[0]
    n_nodes = n_feat + n_err + n_emb + n_logit
    adj = torch.zeros(n_nodes, n_nodes)
    n_src = n_feat + n_err + n_emb
    adj[:n_feat, :n_src] = rows_feat
    adj[n_nodes - n_logit:, :n_src] = rows_logit
    return adj
