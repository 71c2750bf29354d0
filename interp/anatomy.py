"""Model anatomy statistics: residual-stream norm per layer and attention entropy per head."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from interp.model import Model
from interp.sites import Site
from interp.tokens import Prompts


@dataclass
class Anatomy:
    resid_norm: torch.Tensor  # [n_layers + 1] mean L2 norm of resid_pre 0..L-1 and the final resid_post
    attn_entropy: torch.Tensor  # [n_layers, n_heads] mean entropy (nats) of each head's attention row
    max_entropy: float  # mean over rows of log(#keys): the entropy of uniform attention
    n_tokens: int  # positions averaged over (BOS excluded)


def model_anatomy(handle: Model, prompts: Prompts, truncate: bool = True) -> Anatomy:
    """One capture of resid_pre/pattern hooks; BOS (position 0) is excluded from the norms and
    from the entropy average, since its residual is an outlier and its attention row is trivial."""
    n = handle.info.n_layers
    final = Site("resid_post", n - 1)
    batch = handle.tokenize(prompts, truncate=truncate)
    cap = handle.run(batch, read=handle.sites("resid_pre") + handle.sites("pattern") + [final], stop_after=final)
    mask = batch.attention_mask.bool().clone()  # [batch, pos]
    mask[:, 0] = False
    resids = [cap[s] for s in handle.sites("resid_pre")] + [cap[final]]
    norms = torch.stack([r.norm(dim=-1)[mask].mean() for r in resids])  # [n_layers + 1]
    entropies = []
    for layer in range(n):
        p = cap[Site("pattern", layer)].float()  # [batch, head, query, key]
        ent = -(p * torch.log(p.clamp_min(1e-12))).sum(-1)  # [batch, head, query]
        entropies.append(ent.permute(0, 2, 1)[mask].mean(0))  # [head]
    n_keys = torch.arange(1, batch.tokens.shape[1] + 1, dtype=torch.float)[None].expand_as(mask)[mask]
    return Anatomy(resid_norm=norms, attn_entropy=torch.stack(entropies), max_entropy=float(n_keys.log().mean()),
                   n_tokens=int(mask.sum()))
