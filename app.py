"""The workbench in a browser: `streamlit run app.py` (pages in ui/, analysis in interp/ and probes/)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import streamlit as st  # noqa: E402

from ui import (  # noqa: E402
    ablate_page,
    activations_page,
    attention_page,
    circuits_page,
    features_page,
    graph_page,
    heads_page,
    lens_page,
    model_page,
    neurons_page,
    patching_page,
    probes_page,
    reproductions_page,
    state,
    train_page,
)

#: Pages in the sidebar, in this order; ?page=NAME in the URL opens one directly.
PAGES = {
    "Model": model_page.draw,
    "Attention": attention_page.draw,
    "Heads": heads_page.draw,
    "Circuits": circuits_page.draw,
    "Logit lens": lens_page.draw,
    "Activations": activations_page.draw,
    "Neurons": neurons_page.draw,
    "Probes": probes_page.draw,
    "Patching": patching_page.draw,
    "Ablate & steer": ablate_page.draw,
    "Features": features_page.draw,
    "Graph": graph_page.draw,
    "Reproductions": reproductions_page.draw,
    "Train": train_page.draw,
}

st.set_page_config(page_title="Interp workbench", layout="wide")
st.sidebar.title("Interp workbench")
# The URL (?page=&model=&prompt=&layer=&head=) is read once per session, then follows the user's choices.
state.init_state_from_url(list(PAGES), "Attention")
if st.session_state.get("page") not in PAGES:
    st.session_state["page"] = "Attention"
page = st.sidebar.radio("Page", list(PAGES), key="page")
state.show_url_warnings()
state.begin_run()
PAGES[page]()
state.sync_url(page)
