"""The workbench core: load hooked models, capture the activations an analysis needs, and look inside.

Knows nothing of probes, experiments or Streamlit (see ../shared/DESIGN.md).
"""
from .capture import HOOK_TEMPLATES, Capture, check_hook_names, forward_logits, hook_names, run_with_capture
from .errors import CheckpointRefused, InvalidInput, ModelUnavailable, WorkbenchError
from .handle import ModelHandle, ModelInfo
from .loading import bundled_models, default_model, load_model
from .tokens import TokenBatch, tokenize

__all__ = [
    "HOOK_TEMPLATES", "Capture", "CheckpointRefused", "InvalidInput", "ModelHandle", "ModelInfo",
    "ModelUnavailable", "TokenBatch", "WorkbenchError", "bundled_models", "check_hook_names", "default_model",
    "forward_logits", "hook_names", "load_model", "run_with_capture", "tokenize",
]
