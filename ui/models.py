"""The models and forward passes the app caches across reruns: the current model, its attention patterns."""
from __future__ import annotations

import os

import streamlit as st

from interp import Model, load_model
from interp.attention import PromptAttention, prompt_attention
from interp.loading import default_model

#: Forward passes run by the app in this process (tests assert that a head switch adds none).
FORWARD_PASSES = {"count": 0}


def default_model_name() -> str:
    """WORKBENCH_DEFAULT_MODEL if set (tests, custom setups), else the bundled default (may raise)."""
    return os.environ.get("WORKBENCH_DEFAULT_MODEL") or default_model()


@st.cache_resource(show_spinner="Loading model...", max_entries=3)
def cached_model(name: str) -> Model:
    """A model is loaded once per process and name."""
    return load_model(name)


@st.cache_resource(show_spinner="Running the model...", max_entries=8)
def cached_attention(model_name: str, prompt: str) -> PromptAttention:
    """One forward pass per (model, prompt); layer/head changes reuse it."""
    FORWARD_PASSES["count"] += 1
    return prompt_attention(cached_model(model_name), prompt)
