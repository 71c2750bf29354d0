"""Interventions along probe directions: add or subtract a multiple of a direction, project it out, or push
an activation until a probe reads a chosen class; each is an :data:`interp.Edit` for ``Model.run(edit=...)``."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from interp import validate
from interp.errors import InvalidInput
from interp.model import Edit
from probes.probing.linear import Probe

InterventionMode = Literal["add", "subtract", "project_out"]  # how a direction edits the residual stream


def _rows(act: torch.Tensor, positions: Sequence[int] | int | None) -> tuple[torch.Tensor, Any]:
    """Index selecting the edited positions of [batch, pos, d]: all, one position, or one per batch row."""
    if positions is None:
        return act, (slice(None), slice(None))
    n_pos = act.shape[1]
    if not isinstance(positions, (list, tuple, np.ndarray, torch.Tensor)) or getattr(positions, "ndim", 1) == 0:
        p = validate.integer(positions, "Position")
        if not -n_pos <= p < n_pos:
            raise InvalidInput(f"Position {p} does not exist: the sequence has {n_pos} positions.")
        return act[:, p], (slice(None), p)
    ps = [validate.integer(p, "Position") for p in validate.scalar_or_list(positions)]
    if any(not -n_pos <= p < n_pos for p in ps):
        raise InvalidInput(f"Positions must lie in 0..{n_pos - 1}, got {ps}.")
    pos = torch.as_tensor(ps, device=act.device)
    if len(pos) != act.shape[0]:
        raise InvalidInput(f"{len(pos)} positions given for a batch of {act.shape[0]}.")
    idx = (torch.arange(act.shape[0], device=act.device), pos)
    return act[idx], idx


def _direction(direction: Any) -> torch.Tensor:
    """A finite, non-zero 1-D direction tensor."""
    d = torch.as_tensor(direction) if not isinstance(direction, torch.Tensor) else direction
    if d.ndim != 1 or d.numel() == 0 or not d.is_floating_point():
        raise InvalidInput(f"A direction must be a 1-D float vector, got shape {tuple(d.shape)} dtype {d.dtype}.")
    if not bool(torch.isfinite(d).all()) or float(d.norm()) == 0:
        raise InvalidInput("A direction must be finite and non-zero.")
    return d.detach()


def add_direction(act: torch.Tensor, direction: torch.Tensor, alpha: float) -> torch.Tensor:
    """``act + alpha * direction`` (direction [d], broadcast over leading dims); subtract with alpha < 0."""
    return act + alpha * direction.to(act)


def project_out(act: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Remove ``act``'s component along ``direction`` (any norm)."""
    u = direction.to(act) / direction.norm().clamp_min(1e-12)
    return act - (act @ u)[..., None] * u


def direction_edit(direction: torch.Tensor, *, alpha: float = 1.0, mode: InterventionMode = "add",
                   positions: Sequence[int] | int | None = None) -> Edit:
    """An edit of [batch, pos, d] activations: mode 'add', 'subtract' or 'project_out'."""
    if not isinstance(mode, str) or mode not in ("add", "subtract", "project_out"):
        raise InvalidInput(f"Intervention mode must be add, subtract or project_out, got {mode!r}.")
    alpha = validate.number(alpha, "alpha")
    direction = _direction(direction)

    def edit(act: torch.Tensor) -> torch.Tensor:
        sel, idx = _rows(act, positions)
        new = project_out(sel, direction) if mode == "project_out" else \
            add_direction(sel, direction, alpha if mode == "add" else -alpha)
        act = act.clone()
        act[idx] = new
        return act

    return edit


def push_to_class(x: torch.Tensor, probe: Probe, task: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray,
                  margin: float = 4.0, avoid: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
    """Move each row of ``x`` [b, d] along the probe's (target - current) direction until the probe's logit for
    ``target`` beats the current top class by ``margin`` (Li et al.'s edit, done with a linear probe).

    ``task`` [b]: which probe task (e.g. board square) per row; ``target`` [b]: the class to write. ``avoid``
    [b] (optional): a class whose direction is left untouched, e.g. "empty" when swapping mine/theirs.
    """
    if probe.kind != "logistic":
        raise InvalidInput("push_to_class needs a logistic (classification) probe.")
    margin = validate.number(margin, "margin", low=0.0)
    task, target = torch.as_tensor(task).long(), torch.as_tensor(target).long()
    raw = probe.raw_directions().to(x)  # [d, tasks, classes]
    out = x.clone()
    for _ in range(3):  # one linear step is exact for the pair; re-check the others
        logits = probe.scores(out)[torch.arange(len(x)), task]  # [b, classes]
        masked = logits.clone()
        masked[torch.arange(len(x)), target] = -torch.inf
        rival = masked.argmax(-1)  # strongest class other than the target
        gap = logits[torch.arange(len(x)), target] - logits[torch.arange(len(x)), rival]
        need = (margin - gap).clamp_min(0)  # [b]
        if not (need > 0).any():
            break
        v = raw[:, task, target].T - raw[:, task, rival].T  # [b, d]
        out = out + (need / (v * v).sum(-1).clamp_min(1e-12))[:, None] * v
    return out


def probe_push_edit(probe: Probe, task: Sequence[int], target: Sequence[int], positions: Sequence[int],
                    margin: float = 4.0) -> Edit:
    """An edit applying :func:`push_to_class` at one position per batch row."""
    def edit(act: torch.Tensor) -> torch.Tensor:
        sel, idx = _rows(act, positions)
        act = act.clone()
        act[idx] = push_to_class(sel, probe, np.asarray(task), np.asarray(target), margin)
        return act

    return edit


def output_change(clean: torch.Tensor, edited: torch.Tensor) -> dict[str, float]:
    """How much an edit moved the next-token distribution: mean KL(clean || edited), top-1 change rate."""
    lp, lq = clean.log_softmax(-1), edited.log_softmax(-1)
    kl = (lp.exp() * (lp - lq)).sum(-1)
    return {"kl": float(kl.mean()), "top1_changed": float((clean.argmax(-1) != edited.argmax(-1)).float().mean())}
