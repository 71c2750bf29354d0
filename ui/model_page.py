"""Model page: choose a bundled model, a GPT-2-family Hub name or a local directory; show its anatomy and card."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from interp.loading import BUNDLED_DIR, bundled_models
from interp.model import ModelInfo
from interp.prompt_check import KIND_READS, kind_of
from ui import explain, figures, messages, models, state

SOURCES = ["Bundled", "Hub name (GPT-2 family)", "Local directory"]
BACKEND_LABELS = {"bridge": "TransformerLens (here)", "nnsight": "nnsight (here)", "ndif": "NDIF (remote)"}
BACKEND_HELP = ("Where and how the model runs. TransformerLens and nnsight run it in this process and give the "
                "same numbers; NDIF runs Hub models it hosts on its own servers (the key is read from "
                "NDIF_API_KEY, never shown or saved).")


def _preselect(current: str | None, bundled: list[str]) -> None:
    """Point the source and name pickers at the current model whenever it changed (Load, a link, the Train page);
    a name picked but not loaded yet stays as it is."""
    ss = st.session_state
    if current is None or ss.get("model_preselected_for") == current:
        return
    ss["model_preselected_for"] = current
    current, ss["model_backend"] = models.parse_ref(current)
    if ss["model_backend"] == "ndif":
        ss["model_ndif"] = current
    elif current in bundled:
        ss["model_source"], ss["model_bundled"] = SOURCES[0], current
    elif Path(current).is_dir():
        ss["model_source"], ss["model_dir"] = SOURCES[2], current
    else:
        ss["model_source"], ss["model_hub"] = SOURCES[1], current


def _load(choice: str | None, backend: str) -> None:
    ref = models.model_ref(choice.strip(), backend) if choice and choice.strip() else None  # type: ignore[arg-type]
    if ref and messages.guarded(models.cached_model, ref) is not None:
        st.session_state[state.MODEL] = ref


def _ndif_choice() -> str | None:
    """The NDIF side of the picker: the models NDIF runs now when it answers, else a Hub name typed in."""
    import os

    from interp.backends.ndif import KEY_ENV

    if os.environ.get(KEY_ENV, "").strip():
        st.caption(f"NDIF key: read from {KEY_ENV} (not shown).")
    else:
        st.warning(f"NDIF needs an API key: set {KEY_ENV} in the environment the app runs in (get one at "
                   "https://login.ndif.us), then restart the app.")
    hosted, why = models.hosted_models()
    if hosted:
        if st.session_state.get("model_ndif") not in hosted:
            st.session_state.pop("model_ndif", None)
        return st.selectbox("Model NDIF runs", hosted, key="model_ndif",
                            help="Asked from NDIF's status page (refreshed every minute).")
    st.info(f"NDIF's model list is unavailable ({why.rstrip('.')}). Type the Hub id of a model it hosts.")
    return st.text_input("Hub id on NDIF", key="model_ndif_typed", placeholder="openai-community/gpt2")


def attention_kind(info: ModelInfo) -> str:
    """Multi-head, grouped-query (several query heads share a key/value head) or multi-query attention."""
    kv = info.kv_heads
    if kv == info.n_heads:
        return f"multi-head ({info.n_heads} query heads, each with its own key/value head)"
    if kv == 1:
        return f"multi-query ({info.n_heads} query heads share 1 key/value head)"
    return (f"grouped-query ({info.n_heads} query heads share {kv} key/value heads, "
            f"{info.n_heads // kv} per group)")


def anatomy_table(info: ModelInfo) -> pd.DataFrame:
    """The model's anatomy as (property, value) strings: sizes, attention kind (KV heads), norm, positions,
    MLP activation and gating, and where the weights came from."""
    norm = {"LN": "LayerNorm", "LNPre": "LayerNorm (folded, no gain)", "RMS": "RMSNorm",
            "RMSPre": "RMSNorm (folded, no gain)"}.get(info.norm or "", "none")
    positions = {"standard": "learned absolute (W_pos)", "rotary": "rotary (RoPE)"}.get(info.positional,
                                                                                     info.positional)
    mlp = ("none (attention-only)" if info.attn_only else
           f"d_mlp {info.d_mlp}, {info.act_fn or '?'}" + (", gated (GLU)" if info.gated_mlp else ""))
    rows = [("layers", info.n_layers), ("query heads per layer", info.n_heads),
            ("key/value heads per layer", info.kv_heads), ("attention", attention_kind(info)),
            ("d_model", info.d_model), ("d_head", info.d_head), ("MLP", mlp), ("norm", f"{norm} (eps {info.eps:g})"),
            ("positions", positions), ("vocabulary", info.d_vocab), ("context (tokens)", info.n_ctx),
            ("BOS prepended", info.prepend_bos), ("parameters", f"{info.n_params:,}"),
            ("architecture", info.architecture), ("backend", info.backend), ("source", info.source),
            ("path", info.path), ("weights sha256", info.sha256), ("dtype / device", f"{info.dtype} / {info.device}")]
    return pd.DataFrame([(k, str(v)) for k, v in rows], columns=["property", "value"])


def model_card(path: str | None) -> str | None:
    """The model card (README.md) beside the weights, if there is one."""
    if not path:
        return None
    p = Path(path) / "README.md"
    try:
        return p.read_text(encoding="utf-8") if p.is_file() else None
    except (OSError, UnicodeDecodeError):
        return None


def draw() -> None:
    st.header("Model")
    explain.header("Model")
    bundled = bundled_models()
    _preselect(state.current_model_name(), bundled)
    for key in ("model_source", "model_bundled", "model_hub", "model_dir", "model_ndif_typed"):
        if key in st.session_state:  # kept while NDIF hides these pickers (Streamlit drops unrendered widgets' state)
            st.session_state[key] = st.session_state[key]
    backend = st.radio("Run on", list(BACKEND_LABELS), format_func=BACKEND_LABELS.__getitem__, horizontal=True,
                       key="model_backend", help=BACKEND_HELP)
    kind = st.radio("Source", SOURCES, horizontal=True, key="model_source") if backend != "ndif" else "NDIF"
    if kind == "NDIF":
        choice = _ndif_choice()
    elif kind == "Bundled":
        if not bundled:
            st.info(f"No bundled model in {BUNDLED_DIR}. Train one on the Reproductions page (train-text-lm), or "
                    "choose a local directory.")
            choice = None
        else:
            if st.session_state.get("model_bundled") not in bundled:
                st.session_state.pop("model_bundled", None)
            choice = st.selectbox("Bundled model", bundled, key="model_bundled")
    elif kind.startswith("Hub"):
        st.session_state.setdefault("model_hub", "gpt2")
        choice = st.text_input("Hub name", key="model_hub",
                               help="Loads only if the Hugging Face cache has it or the Hub is reachable.")
    else:
        choice = st.text_input("Directory (Hugging Face format)", key="model_dir")
    if st.button("Load", type="primary", key="model_load"):
        _load(choice, backend)
    handle = state.current_model()
    if handle is None:
        return
    info = handle.info.to_dict()
    where = "" if info["backend"] == "bridge" else f", on {BACKEND_LABELS.get(info['backend'], info['backend'])}"
    st.success(f"Current model: **{info['name']}** ({info['source']}{where}). Every page now uses it; it reads "
               f"{KIND_READS[kind_of(handle)]}.")
    c1, c2 = st.columns([2, 3])
    with c1:
        st.subheader("Anatomy")
        figures.table(anatomy_table(handle.info), key="model-anatomy", static=True, hide_index=True)
    with c2:
        st.subheader("Model card")
        card = model_card(info["path"])
        if card is None:
            st.info("This model has no model card (README.md beside its weights).")
        else:
            with st.container(height=560, border=True):
                st.markdown(card)
