"""The workbench core: the model interface, loading, sites, tokens, and capture of what an analysis needs.

Knows nothing of probes, experiments or Streamlit (see ARCHITECTURE.md). Every analysis reaches a model through
:class:`Model` (``load_model`` returns one): ``run`` with reads and edits at :class:`Site` s, ``weights``,
``readout``.

The names below are imported on first use (PEP 562), so ``import interp.errors`` or ``from interp import
WorkbenchError`` does not pull in torch, transformers and TransformerLens (seconds): the app draws its first page
before any of them is loaded.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from interp.errors import CheckpointRefused, InvalidInput, ModelUnavailable, WorkbenchError

#: name -> the module that defines it (imported when the name is first asked for).
_LAZY = {
    "bundled_models": "interp.loading", "default_model": "interp.loading", "load_model": "interp.loading",
    "Edit": "interp.model", "Model": "interp.model", "ModelInfo": "interp.model", "Run": "interp.model",
    "Weights": "interp.model", "Site": "interp.sites", "parse_sites": "interp.sites", "sites": "interp.sites",
    "TokenBatch": "interp.tokens", "tokenize": "interp.tokens", "Head": "interp.types",
}

if TYPE_CHECKING:
    from interp.loading import bundled_models, default_model, load_model
    from interp.model import Edit, Model, ModelInfo, Run, Weights
    from interp.sites import Site, parse_sites, sites
    from interp.tokens import TokenBatch, tokenize
    from interp.types import Head


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'interp' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "CheckpointRefused", "Edit", "Head", "InvalidInput", "Model", "ModelInfo", "ModelUnavailable", "Run", "Site",
    "TokenBatch", "Weights", "WorkbenchError", "bundled_models", "default_model", "load_model", "parse_sites",
    "sites", "tokenize",
]
