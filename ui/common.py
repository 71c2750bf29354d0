"""Shared UI plumbing: cached model/forward loaders, the current model, the state every page shares (model,
prompt, layer, head; mirrored in the URL), error display capped in length, figures with offline downloads."""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
import streamlit as st

from interp import Model, WorkbenchError, load_model
from interp.attention import PromptAttention, prompt_attention
from interp.loading import default_model
from interp.prompt_check import PromptCheck, check_prompt, example_prompts, truncate_to_fit
from interp.types import Head
from plots.select import head_from_points

#: Forward passes run by the app in this process (tests assert that a head switch adds none).
FORWARD_PASSES = {"count": 0}
#: Longest error text shown; the rest is cut (a failure never dumps a figure or a tensor on the page).
MAX_ERROR_CHARS = 600
#: Prompts up to this many characters travel in the URL (longer ones stay in the session only).
MAX_URL_PROMPT = 1500
#: Session keys of the shared state (the URL's ?model=&prompt=&layer=&head= mirror them).
PROMPT, LAYER, HEAD, MODEL = "wb_prompt", "wb_layer", "wb_head", "model_name"
URL_WARNINGS = "wb_url_warnings"


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


def current_model_name() -> str | None:
    """The model chosen on the Model page (or in the URL), else the default; None (with a message) when none."""
    if st.session_state.get(MODEL):
        return st.session_state[MODEL]
    try:
        return default_model_name()
    except WorkbenchError as e:
        show_error(e)
        return None


def current_model() -> Model | None:
    """The loaded current model, or None after showing why it could not be loaded."""
    name = current_model_name()
    if name is None:
        return None
    return guarded(cached_model, name)


def capped(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` cut to ``limit`` characters with a note saying how much was left out."""
    text = str(text)
    if len(text) <= limit:
        return text
    return text[:limit].rstrip() + f" … ({len(text) - limit:,} more characters not shown)"


def error_text(e: BaseException) -> str:
    """What the page says about a failure: a typed error's message, else its kind and first line, capped."""
    if isinstance(e, WorkbenchError):
        return capped(str(e))
    if isinstance(e, MemoryError) or "out of memory" in str(e).lower():
        return "The computation ran out of memory. Try a shorter prompt, fewer rows or a smaller model."
    if isinstance(e, PermissionError):
        return capped(f"Permission denied: {e.filename or 'a file'} cannot be read or written. Choose another "
                      "location.")
    if isinstance(e, FileNotFoundError):
        return capped(f"{e.filename or 'A file'} does not exist. Check the path.")
    if isinstance(e, UnicodeDecodeError):
        return "A file is not UTF-8 text; save it as UTF-8 and try again."
    if isinstance(e, OSError):
        return capped(f"Could not access {e.filename or 'a file'}: {e.strerror or type(e).__name__}.")
    first = (str(e).strip().splitlines() or [""])[0]
    return capped(f"Something went wrong ({type(e).__name__}): {first}" if first else
                  f"Something went wrong ({type(e).__name__}).")


def show_error(e: BaseException) -> None:
    """A typed error as a readable message with what to do; anything else without a traceback; both capped."""
    st.error(error_text(e))


def guarded(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """Call ``fn``; on failure show the message and return None so the page keeps working."""
    try:
        return fn(*args, **kw)
    except Exception as e:  # noqa: BLE001 - the UI shows every failure as a message, never a traceback
        show_error(e)
        return None


# ---------------------------------------------------------------- figures and downloads

@st.cache_data(show_spinner="Rendering PNG...", max_entries=16)
def _png(fig_json: str) -> bytes:
    """PNG bytes of a figure given as JSON (kaleido renders it in a headless Chromium)."""
    return pio.from_json(fig_json).to_image(format="png", scale=2)


def figure_html(fig: go.Figure) -> str:
    """A self-contained HTML page of ``fig`` with plotly.js inlined, so it opens offline."""
    return fig.to_html(include_plotlyjs=True, full_html=True)


def png_error_text(e: BaseException) -> str:
    return capped("Could not make the PNG: the export runs a headless Chromium through kaleido, which failed "
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


def figure(fig: go.Figure, key: str, *, on_head: Callable[[Head], None] | None = None) -> None:
    """Draw a figure with an offline HTML download and an on-demand PNG download.

    ``on_head``: the figure carries head pickers (plots/select.py); a click on one calls ``on_head(Head)`` before
    the page reruns (e.g. :func:`select_head`)."""
    chart_key = f"chart-{key}"
    if on_head is None:
        st.plotly_chart(fig, width="stretch", key=chart_key)
    else:
        st.plotly_chart(fig, width="stretch", key=chart_key, on_select=_selection_callback(chart_key, on_head),
                        selection_mode="points")
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


# ---------------------------------------------------------------- shared state and the URL

def url_warn(message: str) -> None:
    """Queue a warning about a URL parameter; it is shown once, on the next page drawn."""
    st.session_state.setdefault(URL_WARNINGS, []).append(message)


def show_url_warnings() -> None:
    """Show the queued URL warnings once, then forget them."""
    for w in st.session_state.pop(URL_WARNINGS, []):
        st.warning(w)


def _parse_index(name: str, raw: str) -> int | None:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        url_warn(f"The link's {name}={raw!r} is not a number; it was ignored.")
        return None
    return value  # the range is checked against the model by layer_head()


def init_state_from_url(pages: list[str], default_page: str) -> None:
    """Once per session: read ?page=&model=&prompt=&layer=&head=; a bad one is warned about once and dropped.

    Later the user's own choices win: the URL is only read here and then rewritten from the state (sync_url)."""
    ss = st.session_state
    if ss.get("wb_url_read"):
        return
    ss["wb_url_read"] = True
    qp = st.query_params
    page = qp.get("page")
    if page is not None and page not in pages:
        url_warn(f"The link asks for a page {capped(page, 40)!r} that does not exist; showing {default_page}.")
        del qp["page"]
        page = None
    ss.setdefault("page", page or default_page)
    model = qp.get("model")
    if model:
        try:
            cached_model(model)
        except Exception as e:  # noqa: BLE001 - a bad model in a link is a warning, the default opens instead
            url_warn(f"The link's model {capped(model, 80)!r} could not be opened, so the default is shown: "
                     f"{error_text(e)}")
            del qp["model"]
        else:
            ss[MODEL] = model
    prompt = qp.get("prompt")
    if prompt is not None:
        if prompt.strip():
            ss[PROMPT] = prompt
        else:
            url_warn("The link's prompt is empty; it was ignored.")
            del qp["prompt"]
    for name, state in (("layer", LAYER), ("head", HEAD)):
        raw = qp.get(name)
        if raw is None:
            continue
        value = _parse_index(name, raw)
        if value is None:
            del qp[name]
        else:
            ss[state] = value
            ss["wb_url_index"] = True  # range-checked against the model by the first page that uses it


def sync_url(page: str) -> None:
    """Write the current page, model, prompt, layer and head into the URL (only what changed)."""
    ss = st.session_state
    want: dict[str, str | None] = {"page": page, "model": ss.get(MODEL)}
    prompt = ss.get(PROMPT)
    want["prompt"] = prompt if prompt and len(prompt) <= MAX_URL_PROMPT and not ss.get("wb_prompt_default") else None
    want["layer"] = str(ss[LAYER]) if LAYER in ss else None
    want["head"] = str(ss[HEAD]) if HEAD in ss else None
    qp = st.query_params
    for k, v in want.items():
        if v is None:
            if k in qp:
                del qp[k]
        elif qp.get(k) != v:
            qp[k] = v


def layer_head(n_layers: int, n_heads: int) -> tuple[int, int]:
    """The shared (layer, head), kept inside this model; an out-of-range one from a link is warned about once."""
    ss = st.session_state
    layer, head = ss.get(LAYER, 0), ss.get(HEAD, 0)
    from_url = ss.pop("wb_url_index", False)
    if not 0 <= layer < n_layers:
        if from_url:
            st.warning(f"The link's layer={layer} is out of range (0..{n_layers - 1}); showing layer 0.")
        layer = 0
    if not 0 <= head < n_heads:
        if from_url:
            st.warning(f"The link's head={head} is out of range (0..{n_heads - 1}); showing head 0.")
        head = 0
    ss[LAYER], ss[HEAD] = layer, head
    return layer, head


def select_head(head: Head) -> None:
    """Make ``head`` the shared selection (every page's head picker follows it on its next draw)."""
    st.session_state[LAYER], st.session_state[HEAD] = int(head.layer), int(head.head)


def shared_prompt(default: str) -> str:
    """The prompt shared by Attention and Logit lens; ``default`` (an example for the current model) if none yet."""
    ss = st.session_state
    if not ss.get(PROMPT) or (ss.get("wb_prompt_default") and ss[PROMPT] != default):
        ss[PROMPT] = default  # the example of the previous model follows a model change; a typed prompt stays
        ss["wb_prompt_default"] = True
    return ss[PROMPT]


def set_prompt(text: str) -> None:
    st.session_state[PROMPT] = text
    st.session_state["wb_prompt_default"] = False


def prompt_box(widget_key: str, default: str, *, height: int, help: str) -> str:
    """A text area bound to the shared prompt: typed text is kept across pages and put in the URL."""
    value = shared_prompt(default)
    st.session_state[widget_key] = value

    def changed() -> None:
        set_prompt(st.session_state[widget_key])

    return st.text_area("Prompt", key=widget_key, height=height, help=help, on_change=changed)


def int_query_param(name: str, default: int, upper: int) -> int:
    """An int from the URL (?layer=3); out of range or not a number gives a warning (once) and the default."""
    raw = st.query_params.get(name)
    if raw is None:
        return default
    warned = st.session_state.setdefault("wb_param_warned", set())
    try:
        value = int(raw)
    except ValueError:
        if (name, raw) not in warned:
            warned.add((name, raw))
            st.warning(f"The link's {name}={raw!r} is not a number; showing {name} {default}.")
        return default
    if not 0 <= value < upper:
        if (name, raw) not in warned:
            warned.add((name, raw))
            st.warning(f"The link's {name}={value} is out of range (0..{upper - 1}); showing {name} {default}.")
        return default
    return value


def prompt_section(handle, key: str, height: int = 100) -> tuple[str, PromptCheck] | None:
    """Example buttons, the shared prompt box and its checks (length with a truncation offer, vocabulary).

    Returns (prompt, check) when the prompt can be run, else None after saying why. Shared by Attention and Logit
    lens, so both pages read the same prompt."""
    examples = example_prompts(handle)
    row = st.container(horizontal=True)
    row.caption(f"Examples for {handle.info.name}:")
    for i, (label, text) in enumerate(examples.items()):
        row.button(label, key=f"{key}_ex{i}", on_click=set_prompt, args=(text,))
    prompt = prompt_box(key, next(iter(examples.values())), height=height,
                               help=f"Up to {handle.info.n_ctx} tokens for {handle.info.name}.")
    check = guarded(check_prompt, handle, prompt)
    if check is None:
        return None
    if check.too_long:
        st.error(check.length_message)
        cut = guarded(truncate_to_fit, handle, prompt)
        if cut is not None:
            st.button(f"Keep the first {handle.info.n_ctx} tokens", key=f"{key}_truncate", type="primary",
                      on_click=set_prompt, args=(cut,))
        return None
    if check.vocab_warning:
        st.warning(check.vocab_warning)
    return prompt, check
