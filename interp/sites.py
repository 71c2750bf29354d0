"""The one vocabulary of places inside a model that an analysis reads or edits.

A :class:`Site` is a kind (a closed ``Literal``) and, for the kinds that live in a block, a layer. It prints as
TransformerLens's hook name (``str(Site("resid_pre", 2)) == "blocks.2.hook_resid_pre"``), the name results and
the literature use, and :meth:`Site.parse` reads such a name back: no other module builds or parses hook names.
Every backend maps sites to its own machinery (hooks of a TransformerBridge, modules of a Hugging Face tree).
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, get_args

from interp.errors import InvalidInput

ModelSiteKind = Literal["embed", "pos_embed", "final_scale", "final_normalized", "unembed_in", "logits"]
BlockSiteKind = Literal[
    "resid_pre", "resid_mid", "resid_post", "attn_in", "q_input", "k_input", "v_input", "ln1_scale",
    "ln1_normalized", "q", "k", "v", "rot_q", "rot_k", "attn_scores", "pattern", "z", "attn_out", "mlp_in",
    "ln2_scale", "ln2_normalized", "mlp_pre", "mlp_pre_linear", "mlp_post", "mlp_out",
]
SiteKind = ModelSiteKind | BlockSiteKind
MODEL_KINDS: tuple[str, ...] = get_args(ModelSiteKind)
BLOCK_KINDS: tuple[str, ...] = get_args(BlockSiteKind)

#: TransformerLens hook name of each kind; ``{layer}`` is the block.
HOOK_NAMES: dict[str, str] = {
    "embed": "hook_embed",  # [batch, pos, d_model] token embedding
    "pos_embed": "hook_pos_embed",  # [batch, pos, d_model] learned position embedding (absent with rotary)
    "final_scale": "ln_final.hook_scale",  # [batch, pos, 1] the final norm's divisor
    "final_normalized": "ln_final.hook_normalized",  # [batch, pos, d_model] before the final norm's gain/bias
    "unembed_in": "unembed.hook_in",  # [batch, pos, d_model] the final norm's output
    "logits": "unembed.hook_out",  # [batch, pos, d_vocab]
    "resid_pre": "blocks.{layer}.hook_resid_pre",  # [batch, pos, d_model]
    "resid_mid": "blocks.{layer}.hook_resid_mid",  # [batch, pos, d_model] after attention (not attn-only)
    "resid_post": "blocks.{layer}.hook_resid_post",  # [batch, pos, d_model]
    "attn_in": "blocks.{layer}.hook_attn_in",  # [batch, pos, d_model]
    "q_input": "blocks.{layer}.hook_q_input",  # [batch, pos, d_model]
    "k_input": "blocks.{layer}.hook_k_input",
    "v_input": "blocks.{layer}.hook_v_input",
    "ln1_scale": "blocks.{layer}.ln1.hook_scale",  # [batch, pos, 1]
    "ln1_normalized": "blocks.{layer}.ln1.hook_normalized",  # [batch, pos, d_model]
    "q": "blocks.{layer}.attn.hook_q",  # [batch, pos, head, d_head]
    "k": "blocks.{layer}.attn.hook_k",  # [batch, pos, kv_head, d_head]
    "v": "blocks.{layer}.attn.hook_v",  # [batch, pos, kv_head, d_head]
    "rot_q": "blocks.{layer}.attn.hook_rot_q",  # [batch, pos, head, d_head] after rotary
    "rot_k": "blocks.{layer}.attn.hook_rot_k",
    "attn_scores": "blocks.{layer}.attn.hook_attn_scores",  # [batch, head, query_pos, key_pos] before softmax
    "pattern": "blocks.{layer}.attn.hook_pattern",  # [batch, head, query_pos, key_pos]
    "z": "blocks.{layer}.attn.hook_z",  # [batch, pos, head, d_head] per-head weighted values
    "attn_out": "blocks.{layer}.hook_attn_out",  # [batch, pos, d_model]
    "mlp_in": "blocks.{layer}.hook_mlp_in",  # [batch, pos, d_model]
    "ln2_scale": "blocks.{layer}.ln2.hook_scale",  # [batch, pos, 1]
    "ln2_normalized": "blocks.{layer}.ln2.hook_normalized",
    "mlp_pre": "blocks.{layer}.mlp.hook_pre",  # [batch, pos, d_mlp] before the non-linearity
    "mlp_pre_linear": "blocks.{layer}.mlp.hook_pre_linear",  # [batch, pos, d_mlp] gated MLPs' linear branch
    "mlp_post": "blocks.{layer}.mlp.hook_post",  # [batch, pos, d_mlp] after it
    "mlp_out": "blocks.{layer}.hook_mlp_out",  # [batch, pos, d_model]
}
_PARSE = {re.escape(t).replace(r"\{layer\}", r"(\d+)"): kind for kind, t in HOOK_NAMES.items()}
_PARSE_RE = [(re.compile(pattern), kind) for pattern, kind in _PARSE.items()]


@dataclass(frozen=True, order=True)
class Site:
    """A place in the model: ``Site("z", 3)`` (layer 3's per-head outputs), ``Site("logits")``."""

    kind: SiteKind
    layer: int | None = None

    def __post_init__(self) -> None:
        if self.kind in BLOCK_KINDS:
            if isinstance(self.layer, bool) or not isinstance(self.layer, int) or self.layer < 0:
                raise InvalidInput(f"Site {self.kind!r} lives in a block: give a layer index >= 0, "
                                   f"got {self.layer!r}.")
        elif self.kind in MODEL_KINDS:
            if self.layer is not None:
                raise InvalidInput(f"Site {self.kind!r} belongs to the whole model, not to a layer.")
        else:
            raise InvalidInput(f"Unknown site kind {self.kind!r}; known: {', '.join(HOOK_NAMES)}.")

    @property
    def hook_name(self) -> str:
        """TransformerLens's name of this site, e.g. ``blocks.2.hook_resid_pre``."""
        return HOOK_NAMES[self.kind].format(layer=self.layer)

    def __str__(self) -> str:
        return self.hook_name

    @classmethod
    def parse(cls, name: str | Site) -> Site:
        """A site from its hook name (or a Site); InvalidInput naming the known kinds otherwise."""
        if isinstance(name, Site):
            return name
        if not isinstance(name, str):
            raise InvalidInput(f"A site is named by its hook name (text), got {type(name).__name__}.")
        for pattern, kind in _PARSE_RE:
            m = pattern.fullmatch(name)
            if m:
                return cls(kind, int(m.group(1)) if m.groups() else None)  # type: ignore[arg-type]
        number = re.search(r"\d+", name)
        known = [t.format(layer=number.group(0) if number else 0) for t in HOOK_NAMES.values()]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"Did you mean {close[0]!r}?" if close else f"Use a hook name such as {Site('resid_pre', 0)}."
        raise InvalidInput(f"{name[:80]!r} is not a site the workbench knows.", hint)


def sites(kind: SiteKind, layers: Iterable[int]) -> list[Site]:
    """``Site(kind, layer)`` for each layer, in order."""
    return [Site(kind, layer) for layer in layers]


def parse_sites(names: str | Site | Iterable[str | Site]) -> list[Site]:
    """One site, a hook name, or a list of either -> a list of Sites (InvalidInput on anything else)."""
    if isinstance(names, (str, Site)):
        return [Site.parse(names)]
    if isinstance(names, (dict, set, frozenset, bytes, bytearray)):  # a dict would silently read its keys
        raise InvalidInput(f"Sites must be a hook name or a list of them, got a {type(names).__name__}.")
    try:
        items = list(names)
    except TypeError:
        raise InvalidInput(f"Sites must be a hook name or a list of them, got {type(names).__name__}.") from None
    return [Site.parse(n) for n in items]


def stop_point(read: Iterable[Site]) -> Site | None:
    """A site after which every site of ``read`` has been computed, as early as is certain: the deepest one when all
    are of one kind, else the deepest block's ``resid_post``; None when a read needs the final norm or logits."""
    read = list(read)
    if not read or any(s.kind in MODEL_KINDS and s.kind not in ("embed", "pos_embed") for s in read):
        return None
    blocks = [s for s in read if s.layer is not None]
    if not blocks:
        return Site("resid_pre", 0)
    deepest = max(s.layer for s in blocks)  # type: ignore[type-var]
    if len({s.kind for s in read}) == 1:
        return Site(read[0].kind, deepest)
    return Site("resid_post", deepest)
