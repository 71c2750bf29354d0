"""Checks every training loop runs each step: a loss that is not a finite number stops training with a message
naming the step (an ``inf`` learning rate or an exploding model must not run on silently or crash later)."""
from __future__ import annotations

import math

from interp.errors import WorkbenchError


class TrainingDiverged(WorkbenchError):
    """The loss became NaN or infinite; training stopped (the last good checkpoint, if any, is kept)."""


def check_loss(loss: float, step: int, hint: str = "Lower the learning rate (lr) or lengthen the warm-up.") -> float:
    """``loss`` if it is finite; else :class:`TrainingDiverged` naming ``step`` (counted from 1) and ``hint``."""
    if not math.isfinite(loss):
        raise TrainingDiverged(f"Training stopped at step {step}: the loss is {loss} (not a finite number).", hint)
    return loss
