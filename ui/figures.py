"""Figures and tables with their offline downloads (HTML with plotly.js inside, PNG, CSV); click to select.

PNGs are rendered by kaleido in a headless Chromium. kaleido's one-shot ``to_image`` starts a browser per figure
(seconds); :class:`_PngRenderer` keeps one kaleido browser open on its own event loop, so every PNG after the
first takes a fraction of a second.
"""
from __future__ import annotations

import asyncio
import html
import json
import threading
from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
import streamlit as st

from interp.types import Head
from plots.select import head_from_points
from ui import messages, models

#: Longest wait for one PNG (the first one also starts the browser).
PNG_TIMEOUT_S = 120


class _PngRenderer:
    """One kaleido browser for the process, on a private event loop thread; renders one figure at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kaleido: Any = None

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or not self._loop.is_running():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, daemon=True, name="png-renderer").start()
            self._loop, self._kaleido = loop, None
        return self._loop

    async def _render(self, fig: dict, opts: dict) -> bytes:
        import kaleido

        if self._kaleido is None:
            k = kaleido.Kaleido(n=1)
            await k.open()
            self._kaleido = k
        try:
            return await self._kaleido.calc_fig(fig, opts=opts)
        except BaseException:
            k, self._kaleido = self._kaleido, None  # a broken browser is replaced on the next call
            try:
                await k.close()
            except Exception:  # noqa: BLE001 - closing a broken browser may fail too
                pass
            raise

    def png(self, fig: go.Figure, scale: float = 2) -> bytes:
        layout = fig.layout
        opts = dict(format="png", scale=scale, width=layout.width or 700, height=layout.height or 500)
        with self._lock:
            future = asyncio.run_coroutine_threadsafe(self._render(fig.to_plotly_json(), opts), self._ensure_loop())
            try:
                return future.result(timeout=PNG_TIMEOUT_S)
            except TimeoutError:
                future.cancel()
                raise TimeoutError(f"no PNG after {PNG_TIMEOUT_S} s") from None


@st.cache_resource(max_entries=1)
def _renderer() -> _PngRenderer:
    return _PngRenderer()


@st.cache_data(show_spinner="Rendering PNG...", max_entries=16)
def _png(fig_json: str) -> bytes:
    """PNG bytes of a figure given as JSON (kaleido renders it in a headless Chromium kept open)."""
    return _renderer().png(pio.from_json(fig_json))


def figure_html(fig: go.Figure, title: str | None = None) -> str:
    """A self-contained HTML page of ``fig`` with plotly.js inlined, so it opens offline; ``title`` (what the
    figure shows, which model, which prompt) becomes the page's title and a line above the figure."""
    page = fig.to_html(include_plotlyjs=True, full_html=True)
    if not title:
        return page
    safe = html.escape(title, quote=False)
    return page.replace("<head>", f"<head><meta charset=\"utf-8\" /><title>{safe}</title>", 1).replace(
        "<body>", f"<body><p style=\"font-family:Helvetica,Arial,sans-serif;font-size:13px;color:#444\">{safe}</p>", 1)


def view_title(fig: go.Figure) -> str:
    """The downloaded page's title: the figure's title, the model and (when the page uses it) the prompt."""
    ss = st.session_state
    text = fig.layout.title.text if fig.layout.title and fig.layout.title.text else "Figure"
    parts = [html.unescape(text.replace("<br>", " "))]
    model = ss.get("wb_figure_model") or ss.get("model_name")
    if not model:
        try:
            model = models.default_model_name()
        except Exception:  # noqa: BLE001 - no model: the title names none
            model = None
    if model:
        parts.append(f"model {model}")
    prompt = ss.get("wb_prompt") if ss.get("wb_uses_prompt") else None
    if prompt:
        parts.append("prompt " + json.dumps(messages.capped(prompt, 120), ensure_ascii=False))
    return " · ".join(parts)


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


def _points_callback(chart_key: str, on_point: Callable[[dict], None]) -> Callable[[], None]:
    def cb() -> None:
        event = st.session_state.get(chart_key) or {}
        sel = event.get("selection", {}) if isinstance(event, dict) else getattr(event, "selection", {})
        points = sel.get("points", []) if isinstance(sel, dict) else getattr(sel, "points", [])
        if points:
            on_point(dict(points[0]))
    return cb


def clicked_index(point: dict) -> int | None:
    """The integer a figure put in a point's ``customdata`` (its first entry when it is a list): a position, a
    node, a latent; None when the point carries none."""
    cd = point.get("customdata")
    if isinstance(cd, (list, tuple)):
        cd = cd[0] if cd else None
    if isinstance(cd, (int, float)) and not isinstance(cd, bool):
        return int(cd)
    return None


def figure(fig: go.Figure, key: str, *, on_head: Callable[[Head], None] | None = None,
           on_point: Callable[[dict], None] | None = None) -> None:
    """Draw a figure with an offline HTML download and an on-demand PNG download.

    ``on_head``: the figure carries head pickers (plots/select.py); a click on one calls ``on_head(Head)`` before
    the page reruns (e.g. :func:`select_head`). ``on_point``: a click on any point calls ``on_point(point)`` (a
    dict with ``customdata``, ``x``, ``y``, ``point_index``...)."""
    chart_key = f"chart-{key}"
    if on_head is not None:
        st.plotly_chart(fig, width="stretch", key=chart_key, on_select=_selection_callback(chart_key, on_head),
                        selection_mode="points")
    elif on_point is not None:
        st.plotly_chart(fig, width="stretch", key=chart_key, on_select=_points_callback(chart_key, on_point),
                        selection_mode="points")
    else:
        st.plotly_chart(fig, width="stretch", key=chart_key)
    row = st.container(horizontal=True)  # buttons sized to their labels, also inside narrow columns
    title = view_title(fig)
    row.download_button("Download HTML", lambda: figure_html(fig, title), file_name=f"{key}.html", mime="text/html",
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


#: Pixel height of a table row and its header in st.dataframe (for tables drawn without an inner scrollbar).
ROW_PX, HEADER_PX = 35, 38
#: Streamlit's tables wrap a cell's text only in rows taller than 4rem (64 px).
WRAP_ROW_PX = 66


def fit_height(n_rows: int) -> int:
    """The height at which st.dataframe shows ``n_rows`` rows without scrolling inside itself."""
    return HEADER_PX + ROW_PX * max(1, n_rows) + 2


def table(df: Any, key: str, *, on_row: Callable[[dict], None] | None = None, fit: bool = False,
          hide_index: bool | None = None, column_config: dict | None = None, static: bool = False,
          row_height: int | None = None) -> None:
    """Draw a table with a CSV download. ``on_row``: clicking a row calls ``on_row(that row as a dict)`` before the
    page reruns (e.g. open that latent); ``fit``: tall enough for every row (no inner scrollbar); ``static``: a
    plain table whose long cells wrap (nothing cut off, no scrolling), for short tables of long text;
    ``row_height`` above WRAP_ROW_PX lets long text wrap inside its cell (Streamlit wraps rows taller than 4rem)."""
    if static:
        st.table(df.set_index(df.columns[0]) if hide_index else df)
        st.download_button("Download CSV", df.to_csv(index=False), file_name=f"{key}.csv", mime="text/csv",
                           key=f"csv-{key}", on_click="ignore")
        return
    kw: dict[str, Any] = dict(width="stretch", hide_index=hide_index, column_config=column_config,
                              row_height=row_height)
    if fit:
        kw["height"] = fit_height(len(df))
    if on_row is not None:
        shown = df.reset_index(drop=True)

        def picked() -> None:
            event = st.session_state.get(f"table-{key}") or {}
            sel = event.get("selection", {}) if isinstance(event, dict) else getattr(event, "selection", {})
            rows = sel.get("rows", []) if isinstance(sel, dict) else getattr(sel, "rows", [])
            if rows and 0 <= int(rows[0]) < len(shown):
                on_row(shown.iloc[int(rows[0])].to_dict())

        st.dataframe(shown, key=f"table-{key}", on_select=picked, selection_mode="single-row", **kw)
    else:
        st.dataframe(df, **kw)
    st.download_button("Download CSV", df.to_csv(index=False), file_name=f"{key}.csv", mime="text/csv",
                       key=f"csv-{key}", on_click="ignore")
