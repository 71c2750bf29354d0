"""The model handle: a hooked TransformerBridge, its tokenizer, and what we know about it."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from . import validate
from .types import Head, ModelSource


@dataclass(frozen=True)
class ModelInfo:
    """Plain metadata of a loaded model, JSON-serialisable (results and the app show it)."""

    name: str  # what the user asked for: bundled name, hub name, or directory
    source: ModelSource
    path: str | None  # directory the weights came from (hub: the cache snapshot), if any
    architecture: str  # e.g. "GPT2LMHeadModel", "TransformerLensNative"
    n_layers: int
    n_heads: int
    d_model: int
    d_head: int
    d_vocab: int
    n_ctx: int
    attn_only: bool
    n_params: int
    sha256: str  # of the weights file(s), in sorted filename order
    dtype: str
    device: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ModelHandle:
    """What every analysis takes: ``bridge`` (TransformerBridge), ``tokenizer`` and ``info``."""

    bridge: Any  # transformer_lens.model_bridge.TransformerBridge
    tokenizer: Any  # a Hugging Face tokenizer
    info: ModelInfo

    @property
    def cfg(self) -> Any:
        return self.bridge.cfg

    @property
    def device(self) -> torch.device:
        return torch.device(self.info.device)

    @property
    def bos_token_id(self) -> int | None:
        """The BOS prepended to prompts; None for a model saved with default_prepend_bos False (e.g. grokking-p113,
        whose inputs are exactly [a, b, =]: the bridge would otherwise invent a BOS out of its unknown token)."""
        if getattr(self.cfg, "default_prepend_bos", True) is False:
            return None
        return self.tokenizer.bos_token_id

    def check_layer(self, layer: Any) -> int:
        """``layer`` as an int if it names a block of this model (Python/numpy/torch integer), else InvalidInput."""
        return validate.layer_index(layer, self.info.n_layers, self.info.name)

    def check_head(self, layer: Any, head: Any) -> Head:
        """``Head(layer, head)`` if valid (a tuple of ints), else InvalidInput naming the valid range."""
        return Head(*validate.head_index(layer, head, self.info.n_layers, self.info.n_heads, self.info.name))

    def to_str_tokens(self, tokens: torch.Tensor) -> list[str]:
        """Readable strings for a 1-D token tensor (one string per token)."""
        return [self.tokenizer.decode([int(t)]) for t in tokens.reshape(-1).tolist()]
