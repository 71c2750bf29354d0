"""Model page: choose a bundled model, a GPT-2-family Hub name or a local directory; show its anatomy."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from interp.loading import bundled_models

from . import common


def draw() -> None:
    st.header("Model")
    bundled = bundled_models()
    kind = st.radio("Source", ["Bundled", "Hub name (GPT-2 family)", "Local directory"], horizontal=True,
                    key="model_source")
    if kind == "Bundled":
        if not bundled:
            st.info("No bundled model in models/. Train one with `python -m experiments run train-text-lm`, "
                    "or choose a local directory.")
            choice = None
        else:
            choice = st.selectbox("Bundled model", bundled, key="model_bundled")
    elif kind.startswith("Hub"):
        choice = st.text_input("Hub name", "gpt2", key="model_hub",
                               help="Loads only if the Hugging Face cache has it or the Hub is reachable.")
    else:
        choice = st.text_input("Directory (Hugging Face format)", key="model_dir")
    if st.button("Load", type="primary", key="model_load") and choice:
        if common.guarded(common.cached_model, choice.strip()) is not None:
            st.session_state["model_name"] = choice.strip()
    handle = common.current_model()
    if handle is None:
        return
    info = handle.info.to_dict()
    st.success(f"Current model: **{info['name']}** ({info['source']})")
    rows = [("layers", info["n_layers"]), ("heads per layer", info["n_heads"]), ("d_model", info["d_model"]),
            ("d_head", info["d_head"]), ("vocabulary", info["d_vocab"]), ("context (tokens)", info["n_ctx"]),
            ("attention-only", info["attn_only"]), ("parameters", f"{info['n_params']:,}"),
            ("architecture", info["architecture"]), ("source", info["source"]), ("path", info["path"]),
            ("weights sha256", info["sha256"]), ("dtype / device", f"{info['dtype']} / {info['device']}")]
    common.table(pd.DataFrame(rows, columns=["property", "value"]).astype(str), key="model-anatomy")
