"""The workbench in a browser: `streamlit run app.py` (pages in ui/, analysis in interp/ and probes/).

A page's module is imported when the page is first drawn, so the first page (Start here, which needs no model)
draws before torch and TransformerLens are loaded."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import streamlit as st  # noqa: E402

from ui import state  # noqa: E402

#: Pages in the sidebar, in this order, and the module whose draw() shows each; ?page=NAME opens one directly.
PAGES = {
    "Start here": "ui.start_page",
    "Inside the model": "ui.walkthrough_page",
    "Model": "ui.model_page",
    "Attention": "ui.attention_page",
    "Heads": "ui.heads_page",
    "Circuits": "ui.circuits_page",
    "Logit lens": "ui.lens_page",
    "Activations": "ui.activations_page",
    "Neurons": "ui.neurons_page",
    "Probes": "ui.probes_page",
    "Patching": "ui.patching_page",
    "Ablate & steer": "ui.ablate_page",
    "Features": "ui.features_page",
    "Graph": "ui.graph_page",
    "Reproductions": "ui.reproductions_page",
    "Train": "ui.train_page",
    "Glossary": "ui.glossary_page",
}
DEFAULT_PAGE = "Start here"

st.set_page_config(page_title="Interp workbench", layout="wide")
st.sidebar.title("Interp workbench")
# The URL (?page=&model=&prompt=&layer=&head=) is read once per session, then follows the user's choices.
state.init_state_from_url(list(PAGES), DEFAULT_PAGE)
if st.session_state.get("page") not in PAGES:
    st.session_state["page"] = DEFAULT_PAGE
page = st.sidebar.radio("Page", list(PAGES), key="page")
state.show_url_warnings()
state.begin_run()
importlib.import_module(PAGES[page]).draw()
state.sync_url(page)
