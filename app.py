"""The workbench in a browser: `streamlit run app.py` (pages in ui/, analysis in interp/ and probes/)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import streamlit as st  # noqa: E402

from ui import attention_page, heads_page, lens_page, model_page, probes_page, reproductions_page, train_page  # noqa: E402

#: Pages in the sidebar, in this order; ?page=NAME in the URL opens one directly.
PAGES = {
    "Model": model_page.draw,
    "Attention": attention_page.draw,
    "Heads": heads_page.draw,
    "Logit lens": lens_page.draw,
    "Probes": probes_page.draw,
    "Reproductions": reproductions_page.draw,
    "Train": train_page.draw,
}

st.set_page_config(page_title="Interp workbench", layout="wide")
st.sidebar.title("Interp workbench")
requested = st.query_params.get("page", "Attention")
if requested not in PAGES:
    st.sidebar.warning(f"Unknown page {requested!r}; showing Attention.")
    requested = "Attention"
page = st.sidebar.radio("Page", list(PAGES), index=list(PAGES).index(requested), key="page")
PAGES[page]()
