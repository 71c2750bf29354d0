"""The few pure functions of an architecture that analyses recompute by hand (path patching, walkthroughs).

Each takes the weights of :class:`interp.model.Weights` and the kinds of :class:`interp.model.ModelInfo`, and
matches the model's own module to float tolerance; callers check that on the model before relying on it.
"""
from __future__ import annotations

import torch

from interp.errors import InvalidInput


def normalize(x: torch.Tensor, kind: str | None, weight: torch.Tensor | None, bias: torch.Tensor | None,
              eps: float) -> torch.Tensor:
    """``x [..., d_model]`` through a norm of ``kind`` ("LN", "LNPre", "RMS", "RMSPre" or None = identity)."""
    if kind is None:
        return x
    if kind in ("LN", "LNPre"):
        x = x - x.mean(-1, keepdim=True)
        scale = (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()  # [..., 1]
    elif kind in ("RMS", "RMSPre"):
        scale = (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()
    else:
        raise InvalidInput(f"Unknown normalisation {kind!r}.")
    out = x / scale
    if weight is not None and not kind.endswith("Pre"):
        out = out * weight
    if bias is not None and not kind.endswith("Pre"):
        out = out + bias
    return out
