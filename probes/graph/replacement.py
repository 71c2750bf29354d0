"""The replacement model: a model's MLPs replaced by a transcoder set, through edits of the model interface.

- :func:`check_fits`: a transcoder set fits a model (layers, width, sites), else InvalidInput.
- :func:`mlp_io`: every layer's MLP input and output on some tokens (one forward pass, stopped after the last MLP).
- :func:`freeze_edits`: edits that detach every attention pattern and normalisation scale, so a gradient taken
  through ``Model.run(..., grad=True)`` sees the model as linear in its residual stream (circuit-tracer's frozen
  attention and norms; the forward values are unchanged).
- :func:`splice_edits` / :func:`splice_ce`: every MLP replaced by the transcoder's reconstruction (from the
  spliced model's own MLP inputs, so errors compound), optionally plus a fixed error term; CE loss recovered
  against zero-ablating every MLP, and KL to the clean model.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from interp.errors import InvalidInput
from interp.model import Edit, Model
from interp.sites import Site
from learned.transcoder import Transcoder, io_sites, normalized_mse


def check_fits(model: Model, tc: Transcoder) -> None:
    """InvalidInput unless ``tc`` replaces exactly ``model``'s MLPs (same layers, width and sites)."""
    info, c = model.info, tc.cfg
    if info.attn_only or info.d_mlp == 0:
        raise InvalidInput(f"{info.name} is attention-only: it has no MLPs for a transcoder to replace.")
    if c.n_layers != info.n_layers or c.d_model != info.d_model:
        raise InvalidInput(f"This transcoder set has {c.n_layers} layers of width {c.d_model}; {info.name} has "
                           f"{info.n_layers} of width {info.d_model}.", "Pick a transcoder trained on this model.")
    inputs, outputs = io_sites(c)
    for s in inputs + outputs:
        model.require(s)


@torch.no_grad()
def mlp_io(model: Model, tokens: torch.Tensor, tc: Transcoder) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)``: every layer's transcoder input and MLP output on ``tokens`` [batch, pos], each
    ``[batch, pos, L, d_model]`` float32."""
    inputs, outputs = io_sites(tc.cfg)
    r = model.run(tokens, read=inputs + outputs, stop_after=outputs[-1])
    return (torch.stack([r[s] for s in inputs], dim=2).float(), torch.stack([r[s] for s in outputs], dim=2).float())


def _detach(x: torch.Tensor) -> torch.Tensor:
    return x.detach()


def freeze_edits(model: Model) -> dict[Site, Edit]:
    """Detach every attention pattern and every normalisation scale the model has (forward values unchanged)."""
    L = model.info.n_layers
    candidates = [Site("pattern", layer) for layer in range(L)]
    candidates += [Site(kind, layer) for kind in ("ln1_scale", "ln2_scale") for layer in range(L)]
    candidates.append(Site("final_scale"))
    return {s: _detach for s in candidates if model.has(s)}


def splice_edits(tc: Transcoder, error: torch.Tensor | None = None, store: dict[str, list] | None = None, *,
                 adjust: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
                 hold_active: torch.Tensor | None = None) -> dict[Site, Edit]:
    """Edits that replace every MLP output by the transcoder's reconstruction from the run's own MLP inputs (plus
    ``error`` [batch, pos, L, d] when given).

    ``store`` receives each layer's pre-activations and activations (``store["pre"][l]``, ``store["acts"][l]``,
    [batch, pos, f]); ``adjust(layer, acts) -> acts`` changes a layer's activations before they are decoded (an
    ablation or steering); ``hold_active`` [batch, pos, L, f] bool keeps the given active set (activation =
    pre-activation there, 0 elsewhere: the linearisation the attribution graph makes)."""
    inputs, outputs = io_sites(tc.cfg)
    acts: list[torch.Tensor | None] = [None] * tc.cfg.n_layers
    edits: dict[Site, Edit] = {}

    def encoder(layer: int) -> Edit:
        def fn(x: torch.Tensor) -> torch.Tensor:
            pre = tc.pre_acts(x.float(), layer)  # [batch, pos, f]
            a = pre * hold_active[:, :, layer] if hold_active is not None else tc.activate(pre, layer)
            if adjust is not None:
                a = adjust(layer, a)
            acts[layer] = a
            if store is not None:
                store.setdefault("pre", [None] * tc.cfg.n_layers)[layer] = pre
                store.setdefault("acts", [None] * tc.cfg.n_layers)[layer] = a
            return x
        return fn

    def decoder(layer: int) -> Edit:
        def fn(y: torch.Tensor) -> torch.Tensor:
            out = tc.b_dec[layer].expand_as(y).float()
            for src in range(layer + 1):
                outs = tc.output_layers(src)
                if layer in outs:
                    out = out + acts[src] @ tc.W_dec[src][:, outs.index(layer)]  # type: ignore[operator]
            if error is not None:
                out = out + error[:, :, layer]
            return out.to(y.dtype)
        return fn

    for layer in range(tc.cfg.n_layers):
        edits[inputs[layer]] = encoder(layer)
        edits[outputs[layer]] = decoder(layer)
    return edits


def clamp_edits(model: Model, tokens: torch.Tensor, batch: int) -> dict[Site, Edit]:
    """Edits that hold every attention pattern and normalisation scale at its value on ``tokens`` [1, pos] for a
    run of ``batch`` copies (the replacement model's frozen attention and norms, in a forward pass)."""
    sites_ = list(freeze_edits(model))
    with torch.no_grad():
        r = model.run(tokens, read=sites_)
    return {s: (lambda c: (lambda act: c.to(act.dtype).expand_as(act).clone()))(r[s].expand(batch, *r[s].shape[1:]))
            for s in sites_}


@dataclass
class TranscoderSplice:
    """Every MLP replaced at once: CE with the clean model, the transcoders, and every MLP zero-ablated;
    recovered = (CE_zero - CE_tc) / (CE_zero - CE_clean); KL(clean || spliced) per token; per-layer normalised
    MSE and L0 of the transcoders on the clean model's own MLP inputs."""

    ce_clean: float
    ce_transcoder: float
    ce_zero: float
    ce_recovered: float
    kl: float
    nmse: list[float]
    l0: list[float]
    n_tokens: int

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def splice_ce(model: Model, tc: Transcoder, tokens: torch.Tensor, *, batch_size: int = 16) -> TranscoderSplice:
    """CE loss recovered and KL with every MLP replaced by ``tc`` on ``tokens`` [n, pos] (next-token loss on
    positions 0..pos-2), plus normalised MSE and L0 per layer on the clean model's MLP inputs."""
    check_fits(model, tc)
    if tokens.ndim != 2 or tokens.shape[1] < 2 or tokens.shape[0] < 1:
        raise InvalidInput("CE loss recovered needs tokens [n, pos] with at least 2 positions.")
    _, outputs = io_sites(tc.cfg)
    sums = {"clean": 0.0, "tc": 0.0, "zero": 0.0, "kl": 0.0}
    ys, yh, l0s, rows, n_tok = [], [], torch.zeros(tc.cfg.n_layers), 0, 0
    for start in range(0, tokens.shape[0], batch_size):
        tok = tokens[start:start + batch_size].to(model.device)
        x, y = mlp_io(model, tok, tc)
        acts = tc.encode(x)
        ys.append(y.flatten(0, 1))
        yh.append(tc.decode(acts).flatten(0, 1))
        l0s += (acts > 0).float().sum(-1).flatten(0, 1).sum(0)
        rows += tok.shape[0] * tok.shape[1]
        clean = model.logits(tok).float()
        spliced = model.run(tok, edit=splice_edits(tc)).logits.float()
        zeroed = model.run(tok, edit={s: torch.zeros_like for s in outputs}).logits.float()
        target = tok[:, 1:].flatten()
        for key, logits in (("clean", clean), ("tc", spliced), ("zero", zeroed)):
            sums[key] += float(F.cross_entropy(logits[:, :-1].flatten(0, 1), target, reduction="sum"))
        lp_c, lp_s = clean[:, :-1].log_softmax(-1), spliced[:, :-1].log_softmax(-1)
        sums["kl"] += float((lp_c.exp() * (lp_c - lp_s)).sum())
        n_tok += int(target.numel())
    ce_c, ce_t, ce_z = (sums[k] / n_tok for k in ("clean", "tc", "zero"))
    gap = ce_z - ce_c
    nmse = normalized_mse(torch.cat(ys), torch.cat(yh))
    return TranscoderSplice(ce_c, ce_t, ce_z, float((ce_z - ce_t) / gap) if abs(gap) > 1e-9 else float("nan"),
                            sums["kl"] / n_tok, [round(float(v), 5) for v in nmse],
                            [round(float(v) / rows, 3) for v in l0s], n_tok)
