"""One hook's activations for a token batch, running the model only as far as that hook needs.

SAE training reads one hook per forward pass, many times: ``activations_at`` stops the bridge after the
hook's block (TransformerBridge's ``stop_at_layer``), so e.g. ``blocks.2.hook_resid_pre`` costs the
embedding and two blocks, not the whole model and its unembedding. For many hooks of a dataset written to
disk, use :func:`interp.streaming.stream_activations` instead.
"""
from __future__ import annotations

import re

import torch

from .capture import check_hook_names
from .handle import ModelHandle

_RESID_PRE = re.compile(r"blocks\.(\d+)\.hook_resid_pre")
_BLOCK = re.compile(r"blocks\.(\d+)\.")


@torch.no_grad()
def activations_at(handle: ModelHandle, tokens: torch.Tensor, hook: str,
                   attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Activation of ``hook`` for tokens [batch, pos] -> [batch, pos, ...] (float32, on the model's device)."""
    check_hook_names(handle, [hook])
    tokens = tokens.to(handle.device)
    kwargs = {"attention_mask": attention_mask.to(handle.device)} if attention_mask is not None else {}
    m = _RESID_PRE.fullmatch(hook)
    if m:  # the residual entering block L is what the bridge returns when it stops there
        return handle.bridge.run_with_hooks(tokens, stop_at_layer=int(m.group(1)), **kwargs).to(torch.float32)
    seen: dict[str, torch.Tensor] = {}

    def keep(act: torch.Tensor, hook=None) -> torch.Tensor:
        seen["x"] = act.detach()
        return act

    b = _BLOCK.match(hook)
    stop = int(b.group(1)) + 1 if b and int(b.group(1)) + 1 < handle.info.n_layers else None
    handle.bridge.run_with_hooks(tokens, fwd_hooks=[(hook, keep)], stop_at_layer=stop, **kwargs)
    return seen["x"].to(torch.float32)
