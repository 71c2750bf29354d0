"""Figures and tables with their offline downloads (HTML with plotly.js inside, PNG, CSV); click to select."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
import streamlit as st

from interp.types import Head
from plots.select import head_from_points
from ui import messages


@st.cache_data(show_spinner="Rendering PNG...", max_entries=16)
def _png(fig_json: str) -> bytes:
    """PNG bytes of a figure given as JSON (kaleido renders it in a headless Chromium)."""
    return pio.from_json(fig_json).to_image(format="png", scale=2)


def figure_html(fig: go.Figure) -> str:
    """A self-contained HTML page of ``fig`` with plotly.js inlined, so it opens offline."""
    return fig.to_html(include_plotlyjs=True, full_html=True)


def png_error_text(e: BaseException) -> str:
    return messages.capped("Could not make the PNG: the export runs a headless Chromium through kaleido, which failed "
                  f"({type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}). Download the HTML instead; "
                  "it opens in any browser, offline.", 400)


def _selection_callback(chart_key: str, on_head: Callable[[Head], None]) -> Callable[[], None]:
    def cb() -> None:
        event = st.session_state.get(chart_key) or {}
        sel = event.get("selection", {}) if isinstance(event, dict) else getattr(event, "selection", {})
        points = sel.get("points", []) if isinstance(sel, dict) else getattr(sel, "points", [])
        label = head_from_points(points)
        if label is not None:
            on_head(Head.parse(label))
    return cb


def _points_callback(chart_key: str, on_points: Callable[[list], None]) -> Callable[[], None]:
    def cb() -> None:
        event = st.session_state.get(chart_key) or {}
        sel = event.get("selection", {}) if isinstance(event, dict) else getattr(event, "selection", {})
        points = sel.get("points", []) if isinstance(sel, dict) else getattr(sel, "points", [])
        if points:
            on_points(list(points))
    return cb


def figure(fig: go.Figure, key: str, *, on_head: Callable[[Head], None] | None = None,
           on_points: Callable[[list], None] | None = None) -> None:
    """Draw a figure with an offline HTML download and an on-demand PNG download.

    ``on_head``: the figure carries head pickers (plots/select.py); a click on one calls ``on_head(Head)`` before
    the page reruns (e.g. :func:`select_head`). ``on_points``: a click calls it with the clicked points (plotly's
    point dicts, ``customdata`` included)."""
    chart_key = f"chart-{key}"
    if on_head is not None:
        st.plotly_chart(fig, width="stretch", key=chart_key, on_select=_selection_callback(chart_key, on_head),
                        selection_mode="points")
    elif on_points is not None:
        st.plotly_chart(fig, width="stretch", key=chart_key, on_select=_points_callback(chart_key, on_points),
                        selection_mode="points")
    else:
        st.plotly_chart(fig, width="stretch", key=chart_key)
    row = st.container(horizontal=True)  # buttons sized to their labels, also inside narrow columns
    row.download_button("Download HTML", lambda: figure_html(fig), file_name=f"{key}.html", mime="text/html",
                        key=f"html-{key}", help="A single HTML file with plotly.js inside: opens offline.",
                        on_click="ignore")
    if row.button("Make PNG", key=f"mkpng-{key}"):
        try:
            png = _png(fig.to_json())
        except Exception as e:  # noqa: BLE001 - no Chromium, sandbox refusal...: a short message, never the JSON
            st.error(png_error_text(e))
        else:
            row.download_button("Download PNG", png, file_name=f"{key}.png", mime="image/png", key=f"png-{key}",
                                on_click="ignore")


def table(df: Any, key: str) -> None:
    """Draw a table with a CSV download."""
    st.dataframe(df, width="stretch")
    st.download_button("Download CSV", df.to_csv(index=False), file_name=f"{key}.csv", mime="text/csv",
                       key=f"csv-{key}", on_click="ignore")
