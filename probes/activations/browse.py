"""Any site's activation on one prompt, laid out for reading: what TransformerLens users get from
``run_with_cache`` and ``cache[hook_name]``, as a position x feature matrix with per-position summaries.

Every site kind has a layout (:data:`LAYOUTS`): per-position vectors (``resid_*``, ``attn_out``, ``mlp_*``,
``embed``, norms' outputs) are ``[pos, features]``; per-head vectors (``q``, ``k``, ``v``, ``z``, ``rot_*``) are
``[pos, head, d_head]`` and shown one head at a time (grouped-query ``k``/``v`` have the KV heads); attention
(``pattern``, ``attn_scores``) is ``[head, query, key]``, one head at a time; ``logits`` are ``[pos, vocab]``,
summarised by each position's top tokens (a GPT-2 vocabulary is too wide to draw). One forward pass reads the
site, stopped right after it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch

from interp.errors import InvalidInput
from interp.model import Model
from interp.sites import BLOCK_KINDS, MODEL_KINDS, Site, SiteKind
from interp.tokens import TokenBatch

Layout = Literal["vector", "heads", "attention", "logits", "scalar"]
LAYOUTS: dict[str, Layout] = {
    "embed": "vector", "pos_embed": "vector", "final_scale": "scalar", "final_normalized": "vector",
    "unembed_in": "vector", "logits": "logits", "resid_pre": "vector", "resid_mid": "vector",
    "resid_post": "vector", "attn_in": "vector", "q_input": "vector", "k_input": "vector", "v_input": "vector",
    "ln1_scale": "scalar", "ln1_normalized": "vector", "q": "heads", "k": "heads", "v": "heads", "rot_q": "heads",
    "rot_k": "heads", "attn_scores": "attention", "pattern": "attention", "z": "heads", "attn_out": "vector",
    "mlp_in": "vector", "ln2_scale": "scalar", "ln2_normalized": "vector", "mlp_pre": "vector",
    "mlp_pre_linear": "vector", "mlp_post": "vector", "mlp_out": "vector",
}
#: Widest matrix returned for drawing; wider activations (a vocabulary) are summarised instead.
MAX_COLUMNS = 4096


def available_sites(model: Model) -> list[Site]:
    """Every site this model exposes, model-level ones first, then block by block in hook order."""
    out = [Site(k) for k in MODEL_KINDS if model.has(Site(k))
           and not (k == "pos_embed" and model.info.positional != "standard")]  # rotary: no position vectors
    for layer in range(model.info.n_layers):
        out += [Site(k, layer) for k in BLOCK_KINDS if model.has(Site(k, layer))]
    return out


def kinds_available(model: Model) -> list[SiteKind]:
    """The site kinds this model has (at layer 0 for block kinds)."""
    return [s.kind for s in available_sites(model) if s.layer in (None, 0)]


@dataclass
class SiteActivation:
    """One site's activation on one prompt (batch row 0, real positions only)."""

    site: Site
    layout: Layout
    token_ids: list[int]
    values: torch.Tensor  # float32: [pos, features] | [pos, heads, d_head] | [heads, q, k] | [pos, vocab] | [pos]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape)

    @property
    def n_heads(self) -> int:
        """Heads in a per-head or attention layout (KV heads for grouped-query k and v), else 0."""
        if self.layout == "heads":
            return int(self.values.shape[1])
        if self.layout == "attention":
            return int(self.values.shape[0])
        return 0

    def matrix(self, head: int = 0) -> np.ndarray:
        """A 2-D view to draw: ``[pos, features]``, one head's ``[pos, d_head]`` or ``[query, key]``, a scalar
        site as ``[pos, 1]``; logits are summarised by :meth:`top_tokens` instead."""
        v = self.values
        if self.layout in ("heads", "attention"):
            if not 0 <= int(head) < self.n_heads:
                raise InvalidInput(f"Head {head} does not exist at {self.site}: heads 0..{self.n_heads - 1}.")
            return (v[:, int(head)] if self.layout == "heads" else v[int(head)]).numpy()
        if self.layout == "scalar":
            return v.reshape(-1, 1).numpy()
        if self.layout == "logits" and v.shape[1] > MAX_COLUMNS:
            raise InvalidInput(f"{self.site} is {v.shape[1]} wide; see its top tokens per position instead.")
        return v.numpy()

    def position_norms(self) -> np.ndarray:
        """``[pos]`` L2 norm of each position's activation (all heads together); for attention, the entropy of
        each query's attention averaged over heads."""
        v = self.values
        if self.layout == "attention":
            p = v.clamp_min(1e-12) if self.site.kind == "pattern" else torch.softmax(v, dim=-1)
            return (-(p * p.log()).sum(-1)).mean(0).numpy()  # [q]
        return v.reshape(v.shape[0], -1).norm(dim=-1).numpy()

    def top_tokens(self, model: Model, k: int = 5) -> pd.DataFrame:
        """For ``logits``: each position's top ``k`` next tokens with their probabilities."""
        if self.layout != "logits":
            raise InvalidInput(f"{self.site} is not a logits site.")
        probs = torch.softmax(self.values, dim=-1)  # [pos, vocab]
        top = probs.topk(min(k, probs.shape[-1]), dim=-1)
        rows = []
        for p in range(probs.shape[0]):
            for rank, (i, q) in enumerate(zip(top.indices[p].tolist(), top.values[p].tolist()), start=1):
                rows.append({"position": p, "rank": rank, "token": model.tokenizer.decode([i]), "probability": q})
        return pd.DataFrame(rows)

    def table(self, head: int = 0, max_columns: int = 64) -> pd.DataFrame:
        """The drawn matrix as a table (first ``max_columns`` columns), rows labelled by position."""
        m = self.matrix(head)
        cols = m.shape[1]
        df = pd.DataFrame(m[:, :max_columns], columns=[str(c) for c in range(min(cols, max_columns))])
        df.insert(0, "row", np.arange(m.shape[0]))
        return df


def site_activation(model: Model, prompt: str | TokenBatch, site: Site | str) -> SiteActivation:
    """Run ``prompt`` up to ``site`` and return its activation (float32, batch row 0, real positions)."""
    site = model.require(site)
    batch = model.tokenize(prompt)
    n = int(batch.lengths[0])
    run = model.run(batch, read=[site], stop_after=None if site.kind == "logits" else site)
    if site not in run:  # the backend says it has the site but captured nothing there
        raise InvalidInput(f"{model.info.name} did not produce {site} on this prompt (its architecture computes no "
                           "such activation).")
    a = run[site][0].float().cpu()
    layout = LAYOUTS[site.kind]
    values = a[:, :n, :n] if layout == "attention" else a[:n]
    if layout == "scalar":
        values = values.reshape(n)
    return SiteActivation(site, layout, batch.tokens[0, :n].tolist(), values)
