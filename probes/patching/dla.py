"""Direct logit attribution (DLA): how much each layer's and each head's output writes the answer-minus-wrong
direction at the answer position, read through the final LayerNorm (frozen at its clean-run scale).

Hand-written instead of ``transformer_lens.tools.analysis.direct_logit_attribution`` because that one requires
``enable_compatibility_mode()`` (folded LayerNorm), which rewrites the weights of the shared, cached model in
place; here the same decomposition is done on the unprocessed model through the model interface: centre each
component (LN), divide by the final norm's scale read at ``ln_final.hook_scale``, multiply by the final norm's
weight and dot with ``W_U[:, answer] - W_U[:, wrong]``. The terms plus the final norm's bias and ``b_U`` terms sum
to the logit difference exactly (tested), and on a compatibility-mode copy the numbers equal TransformerLens's
(tested).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from interp.errors import InvalidInput
from interp.model import Model
from interp.sites import Site
from interp.types import Head
from tasks.pairs import PairBatch


@dataclass
class DLAResult:
    """Mean over pairs of each component's direct contribution to logit(answer) - logit(wrong)."""

    layers: pd.DataFrame  # component ("embed", "pos_embed", "attn 0", "mlp 0", ...), dla
    heads: torch.Tensor  # [n_layers, n_heads] per-head contribution (attn biases excluded)
    per_pair_heads: torch.Tensor  # [n_layers, n_heads, batch]
    constant: float  # final-norm bias and unembedding bias terms (no component writes them)
    logit_diff: float  # the model's mean logit difference (= every term summed, incl. biases and constant)

    def head_table(self) -> pd.DataFrame:
        n_layers, n_heads = self.heads.shape
        rows = [{"head": str(Head(la, h)), "layer": la, "head_index": h, "dla": float(self.heads[la, h])}
                for la in range(n_layers) for h in range(n_heads)]
        return pd.DataFrame(rows).sort_values("dla", ascending=False, key=abs, kind="stable").reset_index(drop=True)


def direct_logit_attribution(handle: Model, batch: PairBatch, *, on: str = "clean") -> DLAResult:
    """DLA of ``on`` ("clean" or "corrupted") prompts for the answer-minus-wrong direction."""
    if not batch.has_wrong:
        raise InvalidInput("Direct logit attribution here reads answer minus wrong; give a wrong answer per pair.")
    tokens = {"clean": batch.clean, "corrupted": batch.corrupted}.get(on)
    if tokens is None:
        raise InvalidInput(f"on must be 'clean' or 'corrupted', got {on!r}.")
    n_layers, w = handle.info.n_layers, handle.weights()
    wanted = [Site("embed"), Site("pos_embed"), Site("final_scale"), *handle.sites("z"), *handle.sites("attn_out")]
    if not handle.info.attn_only:
        wanted += handle.sites("mlp_out")
    run = handle.run(tokens, read=[s for s in wanted if handle.has(s)])
    cache, logits = run.acts, run.logits
    rows = torch.arange(len(batch), device=tokens.device)
    pos = batch.answer_pos
    unembed = (w.W_U[:, batch.answer] - w.W_U[:, batch.wrong]).T  # [batch, d_model]
    direction = unembed * w.ln_final_w if w.ln_final_w is not None else unembed
    scale = cache[Site("final_scale")][rows, pos] if Site("final_scale") in cache else torch.ones(len(batch), 1)

    def read(x: torch.Tensor) -> torch.Tensor:  # [batch, d_model] at the answer position -> [batch]
        if handle.info.norm in ("LN", "LNPre"):
            x = x - x.mean(-1, keepdim=True)
        return ((x / scale) * direction).sum(-1)

    with torch.no_grad():
        comps: dict[str, torch.Tensor] = {}
        for site, label in ((Site("embed"), "embed"), (Site("pos_embed"), "pos_embed")):
            if site in cache:
                comps[label] = read(cache[site][rows, pos])
        per_head = torch.zeros(n_layers, handle.info.n_heads, len(batch))
        for la in range(n_layers):
            comps[f"attn {la}"] = read(cache[Site("attn_out", la)][rows, pos])
            z = cache[Site("z", la)][rows, pos]  # [batch, head, d_head]
            out = torch.einsum("bhe,hed->bhd", z, w.W_O[la])  # [batch, head, d_model]
            per_head[la] = torch.stack([read(out[:, h]) for h in range(out.shape[1])]).cpu()
            if Site("mlp_out", la) in cache:
                comps[f"mlp {la}"] = read(cache[Site("mlp_out", la)][rows, pos])
        const = torch.zeros(len(batch))
        if w.ln_final_b is not None:
            const = const + (w.ln_final_b * unembed).sum(-1).cpu()
        if w.b_U is not None:
            const = const + (w.b_U[batch.answer] - w.b_U[batch.wrong]).cpu()
        final = logits[rows, pos]
        ld = (final[rows, batch.answer] - final[rows, batch.wrong]).cpu()
    layers = pd.DataFrame([{"component": k, "dla": float(v.mean())} for k, v in comps.items()])
    return DLAResult(layers, per_head.mean(-1), per_head, float(const.mean()), float(ld.mean()))
