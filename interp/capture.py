"""Run a model capturing only the hooks an analysis names (a full cache costs 1.5x time and +1 GiB)."""
from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from . import validate
from .errors import InvalidInput
from .handle import ModelHandle
from .tokens import Prompts, TokenBatch, tokenize

#: Short names for the hooks analyses ask for most; ``{layer}`` is filled per block.
HOOK_TEMPLATES = {
    "pattern": "blocks.{layer}.attn.hook_pattern",  # [batch, head, query_pos, key_pos]
    "attn_scores": "blocks.{layer}.attn.hook_attn_scores",  # [batch, head, query_pos, key_pos]
    "q": "blocks.{layer}.attn.hook_q",  # [batch, pos, head, d_head]
    "k": "blocks.{layer}.attn.hook_k",
    "v": "blocks.{layer}.attn.hook_v",
    "z": "blocks.{layer}.attn.hook_z",  # [batch, pos, head, d_head]
    "resid_pre": "blocks.{layer}.hook_resid_pre",  # [batch, pos, d_model]
    "resid_mid": "blocks.{layer}.hook_resid_mid",
    "resid_post": "blocks.{layer}.hook_resid_post",
    "attn_out": "blocks.{layer}.hook_attn_out",
    "mlp_out": "blocks.{layer}.hook_mlp_out",
}


def hook_names(handle: ModelHandle, kind: str, layers: Iterable[int] | None = None) -> list[str]:
    """Full hook names of one kind (see HOOK_TEMPLATES) for the given layers (default: all)."""
    if kind not in HOOK_TEMPLATES:
        raise InvalidInput(f"Unknown hook kind {kind!r}; known: {', '.join(HOOK_TEMPLATES)}.")
    if handle.info.attn_only and kind in ("resid_mid", "mlp_out"):
        raise InvalidInput(f"{handle.info.name} is attention-only: it has no {kind} hooks.")
    if layers is None:
        layers = range(handle.info.n_layers)
    else:
        layers = [handle.check_layer(v) for v in validate.scalar_or_list(layers)]
    names = [HOOK_TEMPLATES[kind].format(layer=i) for i in layers]
    if kind in ("pattern", "attn_scores") and names and names[0] not in handle.bridge.hook_dict:
        raise InvalidInput(f"{handle.info.name} has no attention-pattern hooks ({names[0]} is missing): "
                           f"it is not an attention transformer (e.g. a state-space model such as Mamba).",
                           "Head scans, head reports and attention patterns need a model with attention heads.")
    return names


def require_attention_patterns(handle: ModelHandle) -> None:
    """InvalidInput unless every block of ``handle`` has an attention-pattern hook (Mamba-style models do not)."""
    hook_names(handle, "pattern")


def check_hook_names(handle: ModelHandle, names: str | Sequence[str]) -> list[str]:
    """``names`` as a list if every one is a hook of this model (a bare string is one name), else InvalidInput
    with the nearest match."""
    names = validate.hook_name_list(names)
    known = handle.bridge.hook_dict
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise InvalidInput(f"{handle.info.name} has no hook named {name!r}.{hint}")
    return list(names)


@dataclass
class Capture:
    """The result of one captured forward pass."""

    batch: TokenBatch
    logits: torch.Tensor | None  # [batch, pos, d_vocab]
    cache: Any  # transformer_lens.ActivationCache holding only the requested hooks

    @property
    def tokens(self) -> torch.Tensor:  # [batch, pos]
        return self.batch.tokens

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.cache[name]


def run_with_capture(
    handle: ModelHandle,
    prompts: Prompts | TokenBatch,
    hooks: Sequence[str] | Callable[[str], bool],
    *,
    prepend_bos: bool = True,
    truncate: bool = False,
    keep_logits: bool = True,
) -> Capture:
    """One no-grad forward pass that caches only ``hooks`` (a list of names or a name predicate).

    Padded batches pass an attention mask, so padding never changes real positions' activations.
    """
    batch = prompts if isinstance(prompts, TokenBatch) else tokenize(
        handle, prompts, prepend_bos=prepend_bos, truncate=truncate)
    names_filter: Any = hooks if callable(hooks) and not isinstance(hooks, str) else check_hook_names(handle, hooks)
    kwargs: dict[str, Any] = {}
    if batch.padded:
        kwargs["attention_mask"] = batch.attention_mask
    with torch.no_grad():
        logits, cache = handle.bridge.run_with_cache(batch.tokens, names_filter=names_filter, **kwargs)
    return Capture(batch=batch, logits=logits if keep_logits else None, cache=cache)


def forward_logits(handle: ModelHandle, prompts: Prompts | TokenBatch, **kw: Any) -> tuple[TokenBatch, torch.Tensor]:
    """Plain forward (no hooks cached): ``(batch, logits [batch, pos, d_vocab])``."""
    batch = prompts if isinstance(prompts, TokenBatch) else tokenize(handle, prompts, **kw)
    kwargs: dict[str, Any] = {"attention_mask": batch.attention_mask} if batch.padded else {}
    with torch.no_grad():
        logits = handle.bridge(batch.tokens, **kwargs)
    return batch, logits
