"""The pieces of a transformer's forward pass written out by hand: norms with their parts, RoPE, the MLP's
non-linearities, masked softmax attention and a temperature softmax.

These are our own few lines rather than TransformerLens's modules on purpose: the walkthrough shows a learner the
arithmetic and then checks it against the model's own activations, so it must not call the code it checks. The
norm itself is :func:`interp.functional.normalize`, the one hand-written norm the workbench shares.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from interp.errors import InvalidInput
from interp.functional import normalize

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x.pow(3))))


def _gelu_erf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _silu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


def _quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


def _relu(x: torch.Tensor) -> torch.Tensor:
    return x.clamp_min(0.0)


#: TransformerLens's ``act_fn`` names -> (the function, its formula in LaTeX).
ACTIVATIONS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], str]] = {
    "gelu_new": (_gelu_tanh, r"\mathrm{GELU}(u) = \tfrac12 u\,(1 + \tanh(\sqrt{2/\pi}\,(u + 0.044715\,u^3)))"),
    "gelu_fast": (_gelu_tanh, r"\mathrm{GELU}(u) = \tfrac12 u\,(1 + \tanh(\sqrt{2/\pi}\,(u + 0.044715\,u^3)))"),
    "gelu_pytorch_tanh": (_gelu_tanh,
                          r"\mathrm{GELU}(u) = \tfrac12 u\,(1 + \tanh(\sqrt{2/\pi}\,(u + 0.044715\,u^3)))"),
    "gelu": (_gelu_erf, r"\mathrm{GELU}(u) = \tfrac12 u\,(1 + \mathrm{erf}(u/\sqrt2))"),
    "silu": (_silu, r"\mathrm{SiLU}(u) = u\,\sigma(u) = \frac{u}{1 + e^{-u}}"),
    "swish": (_silu, r"\mathrm{SiLU}(u) = u\,\sigma(u) = \frac{u}{1 + e^{-u}}"),
    "quick_gelu": (_quick_gelu, r"u\,\sigma(1.702\,u)"),
    "relu": (_relu, r"\mathrm{ReLU}(u) = \max(u, 0)"),
}


def activation(name: str) -> tuple[Callable[[torch.Tensor], torch.Tensor], str]:
    """(function, LaTeX formula) of an MLP non-linearity by its TransformerLens name; InvalidInput if unknown."""
    if name not in ACTIVATIONS:
        raise InvalidInput(f"The walkthrough cannot recompute the activation {name!r} by hand; it knows "
                           f"{', '.join(sorted(ACTIVATIONS))}.")
    return ACTIVATIONS[name]


@dataclass(frozen=True)
class NormParts:
    """A norm's arithmetic at every position: what is subtracted, divided by, then scaled and shifted."""

    mean: torch.Tensor | None  # [pos] LayerNorm subtracts it; None for RMSNorm
    spread: torch.Tensor  # [pos] the variance (LayerNorm) or mean square (RMSNorm) the divisor is made from
    scale: torch.Tensor  # [pos, 1] sqrt(spread + eps): the divisor (the model's hook_scale)
    normalized: torch.Tensor  # [pos, d_model] before the gain and bias (the model's hook_normalized)
    out: torch.Tensor  # [pos, d_model] after them


def norm_parts(x: torch.Tensor, kind: str, weight: torch.Tensor | None, bias: torch.Tensor | None,
               eps: float) -> NormParts:
    """``x [pos, d_model]`` through a LayerNorm ("LN") or RMSNorm ("RMS"), keeping each intermediate."""
    if kind in ("LN", "LNPre"):
        mean = x.mean(-1)  # [pos]
        centred = x - mean[:, None]
        spread = centred.pow(2).mean(-1)
    elif kind in ("RMS", "RMSPre"):
        mean, centred = None, x
        spread = x.pow(2).mean(-1)
    else:
        raise InvalidInput(f"Unknown normalisation {kind!r}.")
    scale = (spread + eps).sqrt()[:, None]  # [pos, 1]
    normalized = normalize(x, kind.removesuffix("Pre") + "Pre", None, None, eps)  # [pos, d_model]
    out = normalize(x, kind, weight, bias, eps)
    return NormParts(mean=mean, spread=spread, scale=scale, normalized=normalized, out=out)


def rope_angles(n_pos: int, dim: int, base: float) -> torch.Tensor:
    """``[pos, dim/2]``: the angle position p turns pair i by, p * base^(-2i/dim)."""
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))  # [dim/2]
    return torch.arange(n_pos, dtype=torch.float32)[:, None] * inv_freq[None, :]


def rope(x: torch.Tensor, base: float, dim: int = 0, adjacent_pairs: bool = False) -> torch.Tensor:
    """``x [pos, head, d_head]`` with RoPE applied: each pair of the first ``dim`` dimensions (all when 0) turned
    by its angle. Pairs are (i, i + dim/2) (Llama, NeoX) or, with ``adjacent_pairs``, (2i, 2i + 1) (GPT-J)."""
    n_pos, _, d_head = x.shape
    dim = dim or d_head
    if dim % 2 or dim > d_head:
        raise InvalidInput(f"RoPE over {dim} of {d_head} dimensions cannot pair them up.")
    angles = rope_angles(n_pos, dim, base).to(x.dtype)  # [pos, dim/2]
    cos, sin = angles.cos()[:, None, :], angles.sin()[:, None, :]  # [pos, 1, dim/2]
    turned, rest = x[..., :dim], x[..., dim:]
    if adjacent_pairs:
        a, b = turned[..., 0::2], turned[..., 1::2]  # [pos, head, dim/2]
        out = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)
    else:
        a, b = turned[..., : dim // 2], turned[..., dim // 2:]
        out = torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)
    return torch.cat([out, rest], dim=-1)


def causal_mask(n_pos: int) -> torch.Tensor:
    """``[query_pos, key_pos]`` True where the key comes after the query (masked)."""
    return torch.triu(torch.ones(n_pos, n_pos, dtype=torch.bool), diagonal=1)


def softmax_with_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``softmax(logits / T)`` over the last axis, in float64 so tiny probabilities keep their digits."""
    return torch.softmax(logits.double() / temperature, dim=-1)
