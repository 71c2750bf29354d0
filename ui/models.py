"""The models and forward passes the app caches across reruns: the current model, its attention patterns.

The model code (torch, TransformerLens) is imported on first use, not with this module."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

import streamlit as st

if TYPE_CHECKING:
    from interp import Model
    from interp.attention import PromptAttention
    from interp.model import LoadBackend

#: Forward passes run by the app in this process (tests assert that a head switch adds none).
FORWARD_PASSES = {"count": 0}


def default_model_name() -> str:
    """WORKBENCH_DEFAULT_MODEL if set (tests, custom setups), else the bundled default (may raise)."""
    from interp.loading import default_model

    return os.environ.get("WORKBENCH_DEFAULT_MODEL") or default_model()


def model_ref(name: str, backend: LoadBackend = "bridge") -> str:
    """How the app names a model it runs (the shared state, the URL, the caches): the name alone on the default
    backend, else ``backend:name`` (``ndif:openai-community/gpt2``). Never a key: NDIF's comes from the
    environment only."""
    from interp.loading import check_backend

    backend = check_backend(backend)
    return name if backend == "bridge" else f"{backend}:{name}"


def parse_ref(ref: str) -> tuple[str, LoadBackend]:
    """``(name, backend)`` of a :func:`model_ref` (a name without a known backend prefix runs on the bridge)."""
    from typing import get_args

    from interp.model import LoadBackend

    head, sep, rest = ref.partition(":")
    if sep and head in get_args(LoadBackend) and rest:
        return rest, head  # type: ignore[return-value]
    return ref, "bridge"


@st.cache_resource(show_spinner="Loading model...", max_entries=3)
def cached_model(ref: str) -> Model:
    """A model is loaded once per process and reference (name, and backend when not the bridge)."""
    from interp import load_model

    name, backend = parse_ref(ref)
    return load_model(name, backend=backend)


@st.cache_data(ttl=60, show_spinner="Asking NDIF which models it runs...")
def hosted_models() -> tuple[list[str], str]:
    """``(models NDIF runs now, "")``, or ``([], why it could not be asked)``; asked at most once a minute."""
    from interp.backends import ndif
    from interp.errors import WorkbenchError

    try:
        return ndif.hosted_models(), ""
    except WorkbenchError as e:
        return [], e.message


@st.cache_resource(show_spinner="Running the model...", max_entries=8)
def cached_attention(model_name: str, prompt: str) -> PromptAttention:
    """One forward pass per (model, prompt); layer/head changes reuse it."""
    from interp.attention import prompt_attention

    FORWARD_PASSES["count"] += 1
    return prompt_attention(cached_model(model_name), prompt)
