"""Information-flow routes (Ferrando & Voita 2024, the LM Transparency Tool): a prompt's contribution graph from one
forward pass, for any attention model, no transcoder needed.

Every block writes sums: ``resid_mid[i] = resid_pre[i] + sum_{h, j} A_h[i, j] v_h[j] W_O[h] + b_O`` (attention)
and ``resid_post[i] = resid_mid[i] + mlp_out[i]`` (MLP). A part's importance to its sum is ALTI's proximity,
``max(||whole||_1 - ||whole - part||_1, 0)``, normalised over the parts (Ferrando et al. 2022), so the edges into a
node sum to 1. Nodes: ``resid`` (the residual stream entering block l at position i; l = n_layers is the output),
``mid`` (after block l's attention) and ``mlp`` (block l's MLP output). Edges: ``attn`` resid(l, j) -> mid(l, i)
(summed over heads, each head's share kept), ``residual`` resid(l, i) -> mid(l, i) and mid(l, i) -> resid(l+1,
i), ``mlp`` mid(l, i) -> mlp(l, i) -> resid(l+1, i). A route to a node keeps, going backwards from it, every edge
of importance >= ``threshold`` (0.04 by default, the paper's) into a node already on the route.
Written here because the LM Transparency Tool is an application, not a library we can import.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from interp.errors import InvalidInput
from interp.model import Model
from interp.sites import Site

RouteNodeKind = Literal["resid", "mid", "mlp"]
EdgeKind = Literal["attn", "residual", "mlp"]
DEFAULT_THRESHOLD = 0.04


@dataclass(frozen=True)
class RouteEdge:
    source: tuple[str, int, int]  # (kind, layer, position)
    target: tuple[str, int, int]
    kind: EdgeKind
    weight: float  # importance in [0, 1]; the edges into a node sum to 1
    heads: tuple[float, ...] = ()  # attention edges: each head's importance (summing to ``weight``)


@dataclass
class ContributionGraph:
    """Every edge of the prompt's contribution graph (see the module docstring)."""

    model_name: str
    n_layers: int
    n_heads: int
    str_tokens: list[str]
    attn: np.ndarray  # [layer, head, query, key] importance of head h's contribution from key to query
    attn_residual: np.ndarray  # [layer, query] importance of resid_pre[i] in resid_mid[i]
    mlp: np.ndarray  # [layer, pos] importance of mlp_out[i] in resid_post[i] (0 for attention-only models)
    mlp_residual: np.ndarray  # [layer, pos]
    has_mlp: bool
    notes: list[str] = field(default_factory=list)

    def edges_into(self, node: tuple[str, int, int]) -> list[RouteEdge]:
        kind, layer, i = node
        if kind == "mid":
            out = [RouteEdge(("resid", layer, i), node, "residual", float(self.attn_residual[layer, i]))]
            heads = self.attn[layer, :, i]  # [head, key]
            for j in range(i + 1):
                w = float(heads[:, j].sum())
                out.append(RouteEdge(("resid", layer, j), node, "attn", w, tuple(float(v) for v in heads[:, j])))
            return out
        if kind == "mlp":
            return [RouteEdge(("mid", layer, i), node, "mlp", float(self.mlp[layer, i]))]
        if layer == 0:
            return []
        below = layer - 1
        out = [RouteEdge(("mid", below, i), node, "residual", float(self.mlp_residual[below, i]))]
        if self.has_mlp:
            out.append(RouteEdge(("mlp", below, i), node, "mlp", float(self.mlp[below, i])))
        return out

    def route(self, position: int | None = None, threshold: float = DEFAULT_THRESHOLD) -> list[RouteEdge]:
        """The edges of the route into the output residual stream at ``position`` (default: the last)."""
        n = len(self.str_tokens)
        pos = n - 1 if position is None else position
        if isinstance(pos, bool) or not isinstance(pos, (int, np.integer)) or not 0 <= int(pos) < n:
            raise InvalidInput(f"Position {position!r} is not a position of the prompt (0..{n - 1}).")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
            raise InvalidInput(f"The route threshold is an importance in (0, 1], got {threshold!r}.")
        start = ("resid", self.n_layers, int(pos))
        seen, frontier, kept = {start}, [start], []
        while frontier:
            node = frontier.pop()
            for e in self.edges_into(node):
                if e.weight >= threshold:
                    kept.append(e)
                    if e.source not in seen:
                        seen.add(e.source)
                        frontier.append(e.source)
        return kept


def importance(parts: torch.Tensor, whole: torch.Tensor) -> torch.Tensor:
    """ALTI's proximity of each part to their sum, normalised: ``parts [..., k, d]``, ``whole [..., d]`` -> [..., k]."""
    whole_norm = whole.abs().sum(-1, keepdim=True)  # [..., 1]
    dist = (whole[..., None, :] - parts).abs().sum(-1)  # [..., k]
    prox = (whole_norm - dist).clamp_min(0.0)
    return prox / prox.sum(-1, keepdim=True).clamp_min(1e-12)


@torch.no_grad()
def contribution_graph(model: Model, prompt: str | torch.Tensor, *, query_chunk: int = 16) -> ContributionGraph:
    """The contribution graph of one prompt (text or one row of token ids), from one forward pass."""
    info = model.info
    L, H = info.n_layers, info.n_heads
    for layer in range(L):
        model.require(Site("pattern", layer))
        model.require(Site("v", layer))
    batch = model.tokenize(prompt if isinstance(prompt, torch.Tensor) else [prompt])
    if batch.tokens.shape[0] != 1:
        raise InvalidInput("Routes are drawn for one prompt at a time.")
    tokens = batch.tokens[:, : int(batch.lengths[0])]
    has_mlp = not info.attn_only and all(model.has(Site("mlp_out", la)) for la in range(L))
    reads = [Site(k, la) for la in range(L) for k in ("resid_pre", "pattern", "v", "attn_out")]
    if has_mlp:
        reads += [Site("mlp_out", la) for la in range(L)]
    r = model.run(tokens, read=reads)
    w = model.weights()
    n = tokens.shape[1]
    attn = np.zeros((L, H, n, n), dtype=np.float32)
    attn_res = np.zeros((L, n), dtype=np.float32)
    mlp = np.zeros((L, n), dtype=np.float32)
    mlp_res = np.zeros((L, n), dtype=np.float32)
    notes: list[str] = []
    worst = 0.0
    for layer in range(L):
        pre = r[Site("resid_pre", layer)][0].float()  # [pos, d]
        pattern = r[Site("pattern", layer)][0].float()  # [head, q, k]
        v = r[Site("v", layer)][0].float()  # [pos, kv_head, d_head]
        if v.shape[1] != H:
            v = v.repeat_interleave(H // v.shape[1], dim=1)
        w_o = w.W_O[layer].float()  # [head, d_head, d]
        vo = torch.einsum("khe,hed->hkd", v, w_o)  # [head, key, d]: each head's output per source position
        attn_out = r[Site("attn_out", layer)][0].float()
        b_o = w.b_O[layer].float() if w.b_O is not None else torch.zeros_like(pre[0])
        mid = pre + attn_out
        for q0 in range(0, n, query_chunk):
            q = slice(q0, min(n, q0 + query_chunk))
            contrib = pattern[:, q, :, None] * vo[:, None]  # [head, q, key, d]
            recon = contrib.sum(dim=(0, 2)) + b_o  # [q, d]
            worst = max(worst, float((recon - attn_out[q]).abs().max() / attn_out[q].abs().max().clamp_min(1e-6)))
            parts = torch.cat([pre[q, None, :], contrib.permute(1, 0, 2, 3).reshape(recon.shape[0], H * n, -1)],
                              dim=1)  # [q, 1 + head * key, d]
            imp = importance(parts, mid[q])  # [q, 1 + head * key]
            attn_res[layer, q] = imp[:, 0].numpy()
            attn[layer, :, q] = imp[:, 1:].reshape(-1, H, n).permute(1, 0, 2).numpy()
        if has_mlp:
            out = r[Site("mlp_out", layer)][0].float()
            imp = importance(torch.stack([mid, out], dim=1), mid + out)  # [pos, 2]
            mlp_res[layer], mlp[layer] = imp[:, 0].numpy(), imp[:, 1].numpy()
        else:
            mlp_res[layer] = 1.0
    if worst > 1e-3:
        raise InvalidInput(f"{info.name}'s attention output is not the sum of its heads' pattern-weighted values "
                           f"(off by {worst:.1%}); routes cannot decompose it.")
    return ContributionGraph(info.name, L, H, model.to_str_tokens(tokens[0]), attn, attn_res, mlp, mlp_res, has_mlp,
                             notes)
