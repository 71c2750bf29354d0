"""The workbench core: the model interface, loading, sites, tokens, and capture of what an analysis needs.

Knows nothing of probes, experiments or Streamlit (see ARCHITECTURE.md). Every analysis reaches a model through
:class:`Model` (``load_model`` returns one): ``run`` with reads and edits at :class:`Site` s, ``weights``,
``readout``.
"""
from interp.errors import CheckpointRefused, InvalidInput, ModelUnavailable, WorkbenchError
from interp.loading import bundled_models, default_model, load_model
from interp.model import Edit, Model, ModelInfo, Run, Weights
from interp.sites import Site, parse_sites, sites
from interp.tokens import TokenBatch, tokenize
from interp.types import Head

__all__ = [
    "CheckpointRefused", "Edit", "Head", "InvalidInput", "Model", "ModelInfo", "ModelUnavailable", "Run", "Site",
    "TokenBatch", "Weights", "WorkbenchError", "bundled_models", "default_model", "load_model", "parse_sites",
    "sites", "tokenize",
]
