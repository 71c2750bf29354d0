"""Splice an SAE into the forward pass: CE loss recovered and KL when its reconstruction replaces the activation
at its site (an edit through the model interface), and the check that an SAE fits a model at all."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from interp.errors import InvalidInput
from interp.model import Model
from interp.sites import Site
from learned.sae import SparseAutoencoder, variance_explained


@dataclass
class SpliceMetrics:
    """What splicing the SAE into the forward pass costs: CE with the clean activation, the reconstruction, and
    zero ablation; recovered = (CE_zero - CE_sae) / (CE_zero - CE_clean); KL(clean || spliced) per token."""

    ce_clean: float
    ce_sae: float
    ce_zero: float
    ce_recovered: float
    kl: float
    l0: float
    variance_explained: float
    n_tokens: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@torch.no_grad()
def splice_metrics(handle: Model, sae: SparseAutoencoder, tokens: torch.Tensor, *, batch_size: int = 16,
                   loss_mask: torch.Tensor | None = None) -> SpliceMetrics:
    """CE loss recovered and KL when ``sae``'s reconstruction replaces hook ``sae.cfg.hook_name`` (tokens [n, pos]).

    Next-token loss is over positions 0..pos-2; ``loss_mask`` [n, pos-1] bool excludes targets (e.g. padding).
    """
    site = sae_site(handle, sae)
    sums = {"clean": 0.0, "sae": 0.0, "zero": 0.0, "kl": 0.0, "l0": 0.0, "sse": 0.0}
    xs, n_tok, rows = [], 0, 0
    dev = handle.device
    for start in range(0, tokens.shape[0], batch_size):
        tok = tokens[start:start + batch_size].to(dev)  # [b, pos]
        mask = (loss_mask[start:start + batch_size].to(dev) if loss_mask is not None
                else torch.ones(tok.shape[0], tok.shape[1] - 1, dtype=torch.bool, device=dev))
        seen: dict[str, torch.Tensor] = {}

        def splice(act: torch.Tensor, seen: dict = seen) -> torch.Tensor:
            acts = sae.encode(act.to(torch.float32))
            seen["acts"] = acts
            return sae.decode(acts).to(act.dtype)

        clean_run = handle.run(tok, read=[site])
        clean = clean_run.logits
        spliced = handle.run(tok, edit={site: splice}).logits
        zeroed = handle.run(tok, edit={site: torch.zeros_like}).logits
        seen["x"] = clean_run.acts[site]
        target = tok[:, 1:]
        m = mask.float()
        for key, logits in (("clean", clean), ("sae", spliced), ("zero", zeroed)):
            ce = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), target.flatten(), reduction="none")
            sums[key] += float((ce.view_as(m) * m).sum())
        lp_clean = clean[:, :-1].float().log_softmax(-1)
        lp_sae = spliced[:, :-1].float().log_softmax(-1)
        kl = (lp_clean.exp() * (lp_clean - lp_sae)).sum(-1)  # [b, pos-1]
        sums["kl"] += float((kl * m).sum())
        n_tok += int(m.sum())
        x = seen["x"].to(torch.float32).flatten(0, -2)  # [b*pos, d_in]
        acts = seen["acts"].flatten(0, -2)
        sums["l0"] += float((acts > 0).float().sum())
        rows += x.shape[0]
        xs.append((x, sae.decode(acts)))
    xall = torch.cat([a for a, _ in xs])
    xhat = torch.cat([b for _, b in xs])
    ce_c, ce_s, ce_z = (sums[k] / max(1, n_tok) for k in ("clean", "sae", "zero"))
    gap = ce_z - ce_c
    return SpliceMetrics(ce_c, ce_s, ce_z, float((ce_z - ce_s) / gap) if abs(gap) > 1e-9 else float("nan"),
                         sums["kl"] / max(1, n_tok), sums["l0"] / max(1, rows), variance_explained(xall, xhat), n_tok)


def sae_site(handle: Model, sae: SparseAutoencoder) -> Site:
    """The site ``sae`` reads and writes, if ``handle`` has it and it matches the SAE's width; else InvalidInput."""
    try:
        site = handle.require(Site.parse(sae.cfg.hook_name))
    except InvalidInput:
        raise InvalidInput(f"{handle.info.name} has no site {sae.cfg.hook_name!r}; this SAE was trained on "
                           f"{sae.cfg.model_name or 'another model'!r}.") from None
    if site.kind.startswith("resid") and sae.cfg.d_in != handle.info.d_model:
        raise InvalidInput(f"This SAE takes {sae.cfg.d_in}-dimensional inputs; {handle.info.name}'s residual stream "
                           f"has {handle.info.d_model} dimensions.", "Pick an SAE trained on this model.")
    return site
