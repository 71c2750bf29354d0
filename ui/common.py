"""Shared UI plumbing: cached model/forward loaders, the current model, error display, downloads."""
from __future__ import annotations

import os
from typing import Any, Callable

import plotly.graph_objects as go
import streamlit as st

from interp import ModelHandle, WorkbenchError, load_model
from interp.attention import PromptAttention, prompt_attention
from interp.loading import default_model

#: Forward passes run by the app in this process (tests assert that a head switch adds none).
FORWARD_PASSES = {"count": 0}


def default_model_name() -> str:
    """WORKBENCH_DEFAULT_MODEL if set (tests, custom setups), else the bundled default (may raise)."""
    return os.environ.get("WORKBENCH_DEFAULT_MODEL") or default_model()


@st.cache_resource(show_spinner="Loading model...", max_entries=3)
def cached_model(name: str) -> ModelHandle:
    """A model is loaded once per process and name."""
    return load_model(name)


@st.cache_resource(show_spinner="Running the model...", max_entries=8)
def cached_attention(model_name: str, prompt: str) -> PromptAttention:
    """One forward pass per (model, prompt); layer/head changes reuse it."""
    FORWARD_PASSES["count"] += 1
    return prompt_attention(cached_model(model_name), prompt)


def current_model_name() -> str | None:
    """The model chosen on the Model page, else the default; None (with a message shown) when there is none."""
    if st.session_state.get("model_name"):
        return st.session_state["model_name"]
    try:
        return default_model_name()
    except WorkbenchError as e:
        show_error(e)
        return None


def current_model() -> ModelHandle | None:
    """The loaded current model, or None after showing why it could not be loaded."""
    name = current_model_name()
    if name is None:
        return None
    return guarded(cached_model, name)


def show_error(e: BaseException) -> None:
    """A typed error as a readable message with what to do; anything else without a traceback."""
    if isinstance(e, WorkbenchError):
        st.error(str(e))
    else:
        st.error(f"Unexpected error: {type(e).__name__}: {e}")


def guarded(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """Call ``fn``; on failure show the message and return None so the page keeps working."""
    try:
        return fn(*args, **kw)
    except Exception as e:  # noqa: BLE001 - the UI shows every failure as a message, never a traceback
        show_error(e)
        return None


@st.cache_data(show_spinner="Rendering PNG...", max_entries=16)
def _png(fig_json: str) -> bytes:
    return go.Figure(go.Figure(fig_json)).to_image(format="png", scale=2)


def figure(fig: go.Figure, key: str) -> None:
    """Draw a figure with HTML download and an on-demand PNG download (kaleido + chromium)."""
    st.plotly_chart(fig, width="stretch", key=f"chart-{key}")
    row = st.container(horizontal=True)  # buttons sized to their labels, also inside narrow columns
    row.download_button("Download HTML", fig.to_html(include_plotlyjs="cdn"), file_name=f"{key}.html",
                        mime="text/html", key=f"html-{key}")
    if row.button("Make PNG", key=f"mkpng-{key}"):
        png = guarded(_png, fig.to_json())
        if png is not None:
            row.download_button("Download PNG", png, file_name=f"{key}.png", mime="image/png", key=f"png-{key}")


def table(df: Any, key: str) -> None:
    """Draw a table with a CSV download."""
    st.dataframe(df, width="stretch")
    st.download_button("Download CSV", df.to_csv(index=False), file_name=f"{key}.csv", mime="text/csv",
                       key=f"csv-{key}")


def int_query_param(name: str, default: int, upper: int) -> int:
    """An int from the URL (?layer=3); out of range or not a number gives a warning and the default."""
    raw = st.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        st.warning(f"URL parameter {name}={raw!r} is not a number; showing {name} {default}.")
        return default
    if not 0 <= value < upper:
        st.warning(f"URL parameter {name}={value} is out of range (0..{upper - 1}); showing {name} {default}.")
        return default
    return value
