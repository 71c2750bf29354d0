"""Glossary: the words the pages use, in plain terms with their formulas (``?page=Glossary&term=slug`` opens one).

The texts are in ``ui.explain.GLOSSARY``; this page lists them, puts the asked-for term first and filters by a
search box. Needs no model, so it opens at once.
"""
from __future__ import annotations

import streamlit as st

from ui import explain

TERM = "wb_glossary_term"


def _term_from_url() -> str | None:
    """``?term=`` once per visit: a known slug is remembered, an unknown one is said so."""
    raw = st.query_params.get("term")
    if raw is None:
        return st.session_state.get(TERM)
    if raw in explain.GLOSSARY:
        st.session_state[TERM] = raw
        return raw
    st.warning(f"The glossary has no term {raw[:60]!r}; all terms are listed below.")
    del st.query_params["term"]
    return None


def _show(slug: str, term: explain.Term, first: bool = False) -> None:
    box = st.container(border=True, key=f"gl-{slug}")
    box.markdown(f"#### {term.title}" + (" (the term you asked about)" if first else ""))
    box.markdown(term.text)
    if term.formula:
        box.latex(term.formula)
    if term.page:
        box.caption(f"Seen best on the [{term.page}](?page={term.page.replace(' ', '+')}) page.")


def draw() -> None:
    st.header("Glossary")
    explain.header("Glossary")
    asked = _term_from_url()
    query = st.text_input("Search the glossary", key="gl_search", placeholder="e.g. residual, softmax, probe")
    q = query.strip().lower()
    terms = sorted(explain.GLOSSARY.items(), key=lambda kv: kv[1].title.lower())
    if asked and not q:
        _show(asked, explain.GLOSSARY[asked], first=True)
    shown = 0
    for slug, term in terms:
        if q and q not in term.title.lower() and q not in term.text.lower():
            continue
        if slug == asked and not q:
            continue
        _show(slug, term)
        shown += 1
    if q and not shown:
        st.info(f"No term mentions {query.strip()[:60]!r}.")
