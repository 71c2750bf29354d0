"""Direct logit attribution (DLA): how much each layer's and each head's output writes the answer-minus-wrong
direction at the answer position, read through the final LayerNorm (frozen at its clean-run scale).

Hand-written instead of ``transformer_lens.tools.analysis.direct_logit_attribution`` because that one requires
``enable_compatibility_mode()`` (folded LayerNorm), which rewrites the weights of the shared, cached model in
place; here the same decomposition is done on the unprocessed bridge: centre each component (LN), divide by
the cached ``ln_final.hook_scale``, multiply by the final norm's weight and dot with ``W_U[:, answer] -
W_U[:, wrong]``. The terms plus the final norm's bias and ``b_U`` terms sum to the logit difference exactly
(tested), and on a compatibility-mode copy the numbers equal TransformerLens's (tested).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from interp.errors import InvalidInput
from interp.handle import ModelHandle
from interp.types import Head

from .patching import _keeper
from .patching_data import PairBatch


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


def direct_logit_attribution(handle: ModelHandle, batch: PairBatch, *, on: str = "clean") -> DLAResult:
    """DLA of ``on`` ("clean" or "corrupted") prompts for the answer-minus-wrong direction."""
    if not batch.has_wrong:
        raise InvalidInput("Direct logit attribution here reads answer minus wrong; give a wrong answer per pair.")
    tokens = {"clean": batch.clean, "corrupted": batch.corrupted}.get(on)
    if tokens is None:
        raise InvalidInput(f"on must be 'clean' or 'corrupted', got {on!r}.")
    b, n_layers = handle.bridge, handle.info.n_layers
    names = ["hook_embed", "hook_pos_embed", "ln_final.hook_scale"] + [f"blocks.{la}.attn.hook_z" for la in
                                                                       range(n_layers)]
    names += [f"blocks.{la}.hook_attn_out" for la in range(n_layers)]
    if not handle.info.attn_only:
        names += [f"blocks.{la}.hook_mlp_out" for la in range(n_layers)]
    names = [nm for nm in names if nm in b.hook_dict]
    cache: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        logits = b.run_with_hooks(tokens, fwd_hooks=[(nm, _keeper(cache, nm)) for nm in names])
    rows = torch.arange(len(batch), device=tokens.device)
    pos = batch.answer_pos
    norm_type = getattr(handle.cfg, "normalization_type", None)
    ln = getattr(b, "ln_final", None)
    params = dict(ln.named_parameters()) if ln is not None else {}
    w = next((p for n, p in params.items() if n.endswith("weight")), None)
    bias = next((p for n, p in params.items() if n.endswith("bias")), None)
    direction = (b.W_U[:, batch.answer] - b.W_U[:, batch.wrong]).T  # [batch, d_model]
    if w is not None:
        direction = direction * w
    scale = cache["ln_final.hook_scale"][rows, pos] if "ln_final.hook_scale" in cache else torch.ones(len(batch), 1)

    def read(x: torch.Tensor) -> torch.Tensor:  # [batch, d_model] at the answer position -> [batch]
        if norm_type in ("LN", "LNPre"):
            x = x - x.mean(-1, keepdim=True)
        return ((x / scale) * direction).sum(-1)

    with torch.no_grad():
        comps: dict[str, torch.Tensor] = {}
        for key, label in (("hook_embed", "embed"), ("hook_pos_embed", "pos_embed")):
            if key in cache:
                comps[label] = read(cache[key][rows, pos])
        per_head = torch.zeros(n_layers, handle.info.n_heads, len(batch))
        for la in range(n_layers):
            comps[f"attn {la}"] = read(cache[f"blocks.{la}.hook_attn_out"][rows, pos])
            z = cache[f"blocks.{la}.attn.hook_z"][rows, pos]  # [batch, head, d_head]
            out = torch.einsum("bhe,hed->bhd", z, b.blocks[la].attn.W_O)  # [batch, head, d_model]
            per_head[la] = torch.stack([read(out[:, h]) for h in range(out.shape[1])]).cpu()
            if f"blocks.{la}.hook_mlp_out" in cache:
                comps[f"mlp {la}"] = read(cache[f"blocks.{la}.hook_mlp_out"][rows, pos])
        const = torch.zeros(len(batch))
        if bias is not None:
            const = const + (bias * (b.W_U[:, batch.answer] - b.W_U[:, batch.wrong]).T).sum(-1).cpu()
        const = const + (b.b_U[batch.answer] - b.b_U[batch.wrong]).cpu()
        final = logits[rows, pos]
        ld = (final[rows, batch.answer] - final[rows, batch.wrong]).cpu()
    layers = pd.DataFrame([{"component": k, "dla": float(v.mean())} for k, v in comps.items()])
    return DLAResult(layers, per_head.mean(-1), per_head, float(const.mean()), float(ld.mean()))
