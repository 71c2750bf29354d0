"""Ablate or steer one component on your own prompt and compare the logits before and after.

A *target* is a head (its ``z`` output, ``Site("z", layer)``), an MLP neuron (``Site("mlp_post", layer)``) or a
direction in the residual stream (``Site("resid_pre", layer)``, a unit vector ``d``). A *mode* says what the
edit does, at every position of the prompt:

- ``zero``: the head's output or the neuron's activation set to 0; for a direction, its component removed
  (``x - (x . d) d``).
- ``mean``: replaced by its mean over a reference batch (all rows and positions), the usual "mean ablation";
  for a direction, the component set to the reference's mean component.
- ``resample``: replaced by its value on a reference row at the same position (one seeded row, the same for
  every position; positions past the reference's length wrap), "resample ablation" (Chan et al. 2022).
- ``steer``: a head's output or a neuron's activation multiplied by ``scale``; for a direction, ``scale * d``
  added (activation steering, Turner et al. 2023).

The reference batch comes from the caller (the app takes corpus windows, or random tokens for models trained on
random tokens). One forward pass reads the reference, one the plain prompt, one the edited prompt; the result
holds both next-token distributions at one position.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch

from interp import validate
from interp.errors import InvalidInput
from interp.model import Model
from interp.sites import Site
from interp.tokens import TokenBatch

TargetKind = Literal["head", "neuron", "direction"]
EditMode = Literal["zero", "mean", "resample", "steer"]


@dataclass(frozen=True)
class Target:
    """What is edited: ``head`` (layer, index = head), ``neuron`` (layer, index = neuron) or ``direction``
    (layer = the block whose resid_pre holds it, ``vector [d_model]``, ``label`` saying what it is)."""

    kind: TargetKind
    layer: int
    index: int = 0
    vector: torch.Tensor | None = None  # [d_model] for a direction
    label: str = ""

    def describe(self) -> str:
        if self.kind == "head":
            return f"head {self.layer}.{self.index}"
        if self.kind == "neuron":
            return f"neuron {self.index} of layer {self.layer}"
        return f"direction {self.label or '(custom)'} in blocks.{self.layer}.hook_resid_pre"


def target_site(model: Model, target: Target) -> Site:
    """The site the edit hooks, after checking the target exists in this model (one line saying why not)."""
    layer = model.check_layer(target.layer)
    if target.kind == "head":
        model.check_head(layer, target.index)
        return model.require(Site("z", layer))
    if target.kind == "neuron":
        if model.info.attn_only or not model.info.d_mlp:
            raise InvalidInput(f"{model.info.name} is attention-only: it has no MLP neurons to edit.")
        validate.integer(target.index, "Neuron")
        if not 0 <= int(target.index) < model.info.d_mlp:
            raise InvalidInput(f"Neuron {target.index} does not exist: neurons 0..{model.info.d_mlp - 1}.")
        return model.require(Site("mlp_post", layer))
    if target.kind == "direction":
        v = target.vector
        if v is None or v.ndim != 1 or v.shape[0] != model.info.d_model:
            raise InvalidInput(f"A direction needs a vector of d_model = {model.info.d_model} numbers.")
        if not bool(torch.isfinite(v).all()) or float(v.norm()) < 1e-12:
            raise InvalidInput("The direction is zero or not finite; choose two different tokens or another vector.")
        return model.require(Site("resid_pre", layer))
    raise InvalidInput(f"Unknown target kind {target.kind!r}; choose head, neuron or direction.")


def token_direction(model: Model, plus: str, minus: str = "") -> tuple[torch.Tensor, str]:
    """The unembedding direction of a token (``W_U[:, plus]``), or of the difference of two tokens
    (``W_U[:, plus] - W_U[:, minus]``: the direction that raises one logit against the other), unit length."""
    ids = {}
    for name, text in (("plus", plus), ("minus", minus)):
        if name == "minus" and not text:
            continue
        got = model.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(got) != 1:
            raise InvalidInput(f"{text!r} is {len(got)} tokens for {model.info.name}; a direction needs exactly "
                               "one token (a leading space counts).")
        ids[name] = int(got[0])
    W_U = model.weights().W_U.float()  # [d_model, vocab]
    v = W_U[:, ids["plus"]] - (W_U[:, ids["minus"]] if "minus" in ids else 0.0)
    label = f"W_U[{plus!r}]" + (f" - W_U[{minus!r}]" if "minus" in ids else "")
    if float(v.norm()) < 1e-12:
        raise InvalidInput(f"{label} is zero; choose two different tokens.")
    return v / v.norm(), label


def _select(act: torch.Tensor, target: Target) -> torch.Tensor:
    """The edited part of an activation: ``[b, pos, d_head]`` of one head or ``[b, pos]`` of one neuron."""
    return act[:, :, target.index] if target.kind in ("head", "neuron") else act


def make_edit(target: Target, mode: EditMode, *, scale: float = 1.0, reference: torch.Tensor | None = None,
              row: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
    """``fn(activation) -> activation`` for :meth:`Model.run`'s ``edit``; ``reference`` is the site's activation
    on the reference batch (needed by mean and resample)."""
    if mode in ("mean", "resample") and reference is None:
        raise InvalidInput(f"{mode} ablation needs a reference batch.")
    unit = None if target.vector is None else target.vector / target.vector.norm()

    def fn(act: torch.Tensor) -> torch.Tensor:
        out = act.clone()
        if target.kind == "direction":
            d = unit.to(act.dtype).to(act.device)  # [d_model]
            comp = act @ d  # [b, pos]
            if mode == "steer":
                return out + scale * d
            if mode == "zero":
                new = torch.zeros_like(comp)
            elif mode == "mean":
                new = torch.full_like(comp, float((reference.to(act.dtype) @ d.cpu()).mean()))
            else:
                ref = reference[row].to(act.dtype).to(act.device) @ d  # [ref_pos]
                new = ref[torch.arange(act.shape[1], device=act.device) % ref.shape[0]].expand_as(comp)
            return out + (new - comp)[..., None] * d
        part = _select(out, target)  # a view into `out`
        if mode == "zero":
            part.zero_()
        elif mode == "steer":
            part.mul_(scale)
        elif mode == "mean":
            ref = _select(reference, target).to(act.dtype)  # [rb, rpos(, d_head)]
            part.copy_(ref.mean(dim=(0, 1)).to(act.device).expand_as(part))
        else:
            ref = _select(reference, target)[row].to(act.dtype).to(act.device)  # [rpos(, d_head)]
            idx = torch.arange(act.shape[1], device=act.device) % ref.shape[0]
            part.copy_(ref[idx].expand_as(part))
        return out

    return fn


@dataclass
class InterventionResult:
    """Next-token distributions at every position of the prompt, with and without the edit."""

    target: str
    mode: EditMode
    position: int  # the position asked for (the last by default)
    token_ids: list[int]  # the prompt's tokens
    logp_before_all: torch.Tensor  # [pos, vocab] log-probabilities of the plain run
    logp_after_all: torch.Tensor  # [pos, vocab] of the edited run
    kl_by_position: np.ndarray  # [pos] KL(before || after) at every position

    def _pos(self, position: int | None) -> int:
        p = self.position if position is None else int(position)
        n = len(self.token_ids)
        p = p + n if p < 0 else p
        if not 0 <= p < n:
            raise InvalidInput(f"Position {position} is outside the prompt's {n} tokens.")
        return p

    @property
    def logp_before(self) -> torch.Tensor:  # [vocab] at `position`
        return self.logp_before_all[self.position]

    @property
    def logp_after(self) -> torch.Tensor:  # [vocab] at `position`
        return self.logp_after_all[self.position]

    def kl_at(self, position: int | None = None) -> float:
        """KL(before || after) of the next-token distribution at ``position`` (nats)."""
        return float(self.kl_by_position[self._pos(position)])

    @property
    def kl(self) -> float:
        return self.kl_at()

    def top_table(self, model: Model, k: int = 10, position: int | None = None) -> pd.DataFrame:
        """At ``position``: the tokens most likely before or after, with probabilities (1-based ranks), the largest
        change first."""
        p = self._pos(position)
        lb, la = self.logp_before_all[p], self.logp_after_all[p]  # [vocab]
        ids = torch.unique(torch.cat([lb.topk(k).indices, la.topk(k).indices]))
        before, after = lb[ids].exp(), la[ids].exp()
        order = torch.argsort(-(after - before).abs(), stable=True)
        ids, before, after = ids[order], before[order], after[order]
        return pd.DataFrame({"token": [model.tokenizer.decode([int(i)]) for i in ids],
                             "p before": before.numpy(), "p after": after.numpy(),
                             "change": (after - before).numpy(),
                             "rank before": [int((lb > lb[i]).sum()) + 1 for i in ids],
                             "rank after": [int((la > la[i]).sum()) + 1 for i in ids]})


def intervene(model: Model, prompt: str | TokenBatch, target: Target, mode: EditMode, *, scale: float = 1.0,
              reference: torch.Tensor | None = None, seed: int = 0, position: int = -1) -> InterventionResult:
    """Run ``prompt`` plain and with ``target`` edited by ``mode``; compare the next-token distributions.

    ``reference`` ``[n, pos]`` tokens (mean and resample ablation; the row for resampling is drawn with ``seed``);
    ``position``: where to read the next-token distribution (-1: the last token)."""
    if mode not in ("zero", "mean", "resample", "steer"):
        raise InvalidInput(f"Mode must be zero, mean, resample or steer, got {mode!r}.")
    scale = float(scale)
    if not np.isfinite(scale):
        raise InvalidInput("The steering scale must be a finite number.")
    site = target_site(model, target)
    batch = model.tokenize(prompt)
    n = int(batch.lengths[0])
    pos = validate.integer(position, "Position")
    pos = pos + n if pos < 0 else pos
    if not 0 <= pos < n:
        raise InvalidInput(f"Position {position} is outside the prompt's {n} tokens.")
    ref_act, row = None, 0
    if mode in ("mean", "resample"):
        if reference is None or reference.ndim != 2 or reference.shape[0] < 1:
            raise InvalidInput(f"{mode} ablation needs a reference batch of token rows.")
        ref_act = model.run(reference, read=[site], stop_after=site)[site].float().cpu()
        row = int(torch.randint(reference.shape[0], (1,), generator=torch.Generator().manual_seed(int(seed))))
    edit = make_edit(target, mode, scale=scale, reference=ref_act, row=row)
    with torch.no_grad():
        before = model.run(batch).logits[0, :n].float().log_softmax(-1)  # [pos, vocab]
        after = model.run(batch, edit={site: edit}).logits[0, :n].float().log_softmax(-1)
    if not bool(torch.isfinite(after).all()):
        raise InvalidInput("The edited run gives non-finite logits; use a smaller steering scale.")
    kl = (before.exp() * (before - after)).sum(-1).clamp_min(0).numpy()  # [pos]
    return InterventionResult(target.describe(), mode, pos, batch.tokens[0, :n].tolist(), before, after, kl)
