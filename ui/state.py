"""The state every page shares (model, prompt, layer, head) and each page's own choices, mirrored in the URL so a
view can be shared.

Shared state: ``?page=&model=&prompt=&layer=&head=``. A page's own choices (Patching's pair and metric, Features'
latent, thresholds, sort orders...) are *bound* to URL parameters with :func:`bind` before their widget is drawn:
the link's value is applied once (on the page the link names), the value survives a visit to another page
(Streamlit forgets a widget's value when its page is not drawn), and :func:`sync_url` writes the values of this
run's bindings into the URL, so a link restores what the page drew.

Light to import (no torch): the app's first page draws before the model code is loaded; ``ui.models`` is imported
where a model is needed.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import streamlit as st

from interp import WorkbenchError
from interp.types import Head
from ui import messages

if TYPE_CHECKING:
    from interp import Model

#: Prompts up to this many characters travel in the URL (longer ones stay in the session only).
MAX_URL_PROMPT = 1500
#: Session keys of the shared state (the URL's ?model=&prompt=&layer=&head= mirror them).
PROMPT, LAYER, HEAD, MODEL = "wb_prompt", "wb_layer", "wb_head", "model_name"
URL_WARNINGS = "wb_url_warnings"
CHOSEN = "wb_head_chosen"  # the shared head was chosen (a click, a picker, a link), not just defaulted to 0.0
#: The URL parameters the app itself reads; every other one is a page's own (see bind()).
SHARED_PARAMS = ("page", "model", "prompt", "layer", "head")
#: Session keys: the link's page parameters not yet applied, this run's bindings, values kept across pages,
#: the parameters left out of the link because it grew too long, whether this run used the shared prompt.
_PENDING, _BOUND, _KEPT, _LEFT_OUT, _USES_PROMPT = ("wb_url_pending", "wb_url_bound", "wb_kept", "wb_url_left_out",
                                                    "wb_uses_prompt")
#: The whole query string is kept under this many characters; the longest text values are left out first.
MAX_URL_CHARS = 4 * MAX_URL_PROMPT


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
    # the page's own parameters wait for that page to draw its widgets (bind); one page's sort= is not another's
    ss[_PENDING] = {k: qp.get(k) for k in qp.keys() if k not in SHARED_PARAMS}
    page = qp.get("page")
    if page is not None and page not in pages:
        url_warn(f"The link asks for a page {messages.capped(page, 40)!r} that does not exist; "
                 f"showing {default_page}.")
        del qp["page"]
        page = None
    ss.setdefault("page", page or default_page)
    ss["wb_url_page"] = page or default_page  # the page whose own parameters the link carries
    model = qp.get("model")
    if model:
        from ui import models

        try:
            models.cached_model(model)
        except Exception as e:  # noqa: BLE001 - a bad model in a link is a warning, the default opens instead
            url_warn(f"The link's model {messages.capped(model, 80)!r} could not be opened, so the default is "
                     f"shown: {messages.error_text(e)}")
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
            ss[CHOSEN] = True
            ss["wb_url_index"] = True  # range-checked against the model by the first page that uses it


@dataclass(frozen=True)
class Binding:
    """A page's session key mirrored in the URL as ``param``; ``parse`` reads the text back (ValueError: bad)."""

    key: str
    param: str
    parse: Callable[[str], Any]
    format: Callable[[Any], str]
    default: Any = None


def begin_run() -> None:
    """Start a script run: forget the previous run's bindings (app.py calls it before drawing the page)."""
    ss = st.session_state
    ss[_BOUND] = {}
    ss[_USES_PROMPT] = False
    ss.pop("wb_figure_model", None)
    if ss.get("page") != ss.get("wb_url_page"):
        ss[_PENDING] = {}  # the user moved on before the linked page drew everything: its leftovers lapse


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parse_bool(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def parse_int(raw: str) -> int:
    value = float(raw) if raw.strip().lower() not in ("nan", "inf", "-inf") else None
    if value is None or value != int(value) or abs(value) > 2**53:
        raise ValueError(raw)
    return int(value)


def parse_float(raw: str) -> float:
    value = float(raw)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(raw)
    return value


def bind(key: str, param: str, *, default: Any = None, kind: type = str, choices: Sequence[Any] | None = None,
         lo: float | None = None, hi: float | None = None, label: str | None = None) -> bool:
    """Mirror the session key ``key`` (a widget's key, drawn right after this call, or any page state) in the URL
    as ``?param=``.

    On the page a link names, its ``param`` is applied once, checked by ``kind`` (str, int, float, bool), against
    ``choices`` and the range ``lo..hi``; a bad one is warned about in one line and ignored. A value chosen earlier
    in the session is restored when the widget was not drawn in between. ``default`` fills an empty key (pass no
    ``value=`` to the widget then) and is left out of the link. The widget's value is written back by sync_url.
    Returns True when this call applied the link's value."""
    ss = st.session_state
    parse = {int: parse_int, float: parse_float, bool: parse_bool}.get(kind, str)
    ss.setdefault(_BOUND, {})[param] = Binding(key, param, parse, _format, default)
    pending = ss.get(_PENDING) or {}
    name = label or param
    if param in pending and ss.get("page") == ss.get("wb_url_page"):
        raw = pending.pop(param)
        try:
            value = parse(raw)
            if choices is not None and value not in choices:
                raise ValueError(raw)
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                raise ValueError(raw)
        except (TypeError, ValueError, OverflowError):
            allowed = ""
            if choices is not None:
                shown = [_format(c) for c in list(choices)[:8]]
                allowed = f" (one of {', '.join(shown)}{', ...' if len(choices) > 8 else ''})"
            elif lo is not None or hi is not None:
                allowed = f" ({_format(lo) if lo is not None else '...'}..{_format(hi) if hi is not None else '...'})"
            st.warning(f"The link's {name}={messages.capped(raw, 60)!r} is not valid here{allowed}; it was ignored.")
        else:
            ss[key] = value
            ss[_KEPT + key] = value
            return True
    if key not in ss:
        if _KEPT + key in ss:
            ss[key] = ss[_KEPT + key]  # the widget's page was not drawn in between: Streamlit dropped its value
        elif default is not None:
            ss[key] = default
    return False


def keep(key: str, value: Any) -> None:
    """Set a bound key from code (an example after a model change, a click) and keep it across pages."""
    st.session_state[key] = value
    st.session_state[_KEPT + key] = value


def forget(key: str) -> None:
    """Drop a bound key and its kept value: the next draw gives it its default again."""
    st.session_state.pop(key, None)
    st.session_state.pop(_KEPT + key, None)


def uses_prompt() -> None:
    """This page draws from the shared prompt: the link carries it (other pages' links leave it out)."""
    st.session_state[_USES_PROMPT] = True


def link_left_out() -> list[str]:
    """The parameters left out of the current link because it would have grown too long (last run's)."""
    return list(st.session_state.get(_LEFT_OUT, []))


def sync_url(page: str) -> None:
    """Write the page, model, layer and head, the shared prompt when this page uses it, and the values of this run's
    bindings into the URL (only what changed); parameters of other pages are dropped. Text values longer than
    MAX_URL_PROMPT, and the longest ones when the query would pass MAX_URL_CHARS, stay out of the link."""
    ss = st.session_state
    want: dict[str, str | None] = {"page": page, "model": ss.get(MODEL)}
    prompt = ss.get(PROMPT)
    want["prompt"] = (prompt if prompt and ss.get(_USES_PROMPT) and not ss.get("wb_prompt_default") else None)
    want["layer"] = str(ss[LAYER]) if LAYER in ss else None
    want["head"] = str(ss[HEAD]) if HEAD in ss else None
    for param, b in (ss.get(_BOUND) or {}).items():
        value = ss.get(b.key)
        if b.key in ss:
            ss[_KEPT + b.key] = value
        want[param] = None if value is None or value == "" or value == b.default else b.format(value)
    left_out = [k for k, v in want.items() if v is not None and len(v) > MAX_URL_PROMPT]
    for k in left_out:
        want[k] = None
    while sum(len(k) + len(v) + 2 for k, v in want.items() if v is not None) > MAX_URL_CHARS:
        longest = max((k for k, v in want.items() if v is not None and k not in ("page", "model")),
                      key=lambda k: len(want[k] or ""))
        want[longest] = None
        left_out.append(longest)
    ss[_LEFT_OUT] = left_out
    qp = st.query_params
    for k in [k for k in qp.keys() if k not in want]:
        del qp[k]
    for k, v in want.items():
        if v is None:
            if k in qp:
                del qp[k]
        elif qp.get(k) != v:
            qp[k] = v


def sync_now() -> None:
    """Write the link now, before a slow part of the page (a live training) that a click may interrupt: the URL
    is otherwise written only when the whole script run ends (app.py, and fragments themselves)."""
    sync_url(str(st.session_state.get("page", "")))


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


def select_head(head: Head, chosen: bool = True) -> None:
    """Make ``head`` the shared selection (every page's head picker follows it on its next draw); ``chosen=False``
    for a head a page picks for the user (a later page may pick a better one)."""
    st.session_state[LAYER], st.session_state[HEAD] = int(head.layer), int(head.head)
    st.session_state[CHOSEN] = chosen or bool(st.session_state.get(CHOSEN))


def head_chosen() -> bool:
    """Whether the user chose the shared head (a click, a picker, a link) rather than a page defaulting it."""
    return bool(st.session_state.get(CHOSEN))


def shared_prompt(default: str) -> str:
    """The prompt shared by Attention and Logit lens; ``default`` (an example for the current model) if none yet."""
    ss = st.session_state
    uses_prompt()
    if not ss.get(PROMPT) or (ss.get("wb_prompt_default") and ss[PROMPT] != default):
        ss[PROMPT] = default  # the example of the previous model follows a model change; a typed prompt stays
        ss["wb_prompt_default"] = True
    return ss[PROMPT]


def set_prompt(text: str) -> None:
    st.session_state[PROMPT] = text
    st.session_state["wb_prompt_default"] = False


def current_model_name() -> str | None:
    """The model chosen on the Model page (or in the URL), else the default; None (with a message) when none."""
    from ui import models

    if st.session_state.get(MODEL):
        return st.session_state[MODEL]
    try:
        return models.default_model_name()
    except WorkbenchError as e:
        messages.show_error(e)
        return None


def current_model() -> Model | None:
    """The loaded current model, or None after showing why it could not be loaded."""
    from ui import models

    name = current_model_name()
    if name is None:
        return None
    return messages.guarded(models.cached_model, name)


def preset(page: str, *, model: str | None = None, prompt: str | None = None, head: Head | None = None,
           widgets: dict[str, object] | None = None, drop: tuple[str, ...] = ()) -> None:
    """Open ``page`` set up to show one thing (the guided path's steps): the shared model, prompt and head, and
    values for the page's own widgets (``widgets``; ``drop`` forgets keys so the page makes them afresh). With no
    ``head`` the shared selection is cleared, so the page chooses (Attention: the strongest head). Call it from a
    button's ``on_click``: it runs before the page's widgets exist."""
    ss = st.session_state
    if model is not None:
        ss[MODEL] = model
    if prompt is not None:
        set_prompt(prompt)
    if head is None:
        for key in (LAYER, HEAD, CHOSEN):
            ss.pop(key, None)
    else:
        select_head(head)
    for key in drop:
        forget(key)
    for key, value in (widgets or {}).items():
        keep(key, value)
    ss["page"] = page


def link(page: str, *, model: str | None = None, prompt: str | None = None, head: Head | None = None) -> str:
    """A relative URL opening ``page`` with that model, prompt and head (what :func:`sync_url` would write)."""
    import urllib.parse

    q = {"page": page, "model": model, "prompt": prompt if prompt and len(prompt) <= MAX_URL_PROMPT else None,
         "layer": str(head.layer) if head else None, "head": str(head.head) if head else None}
    return "?" + urllib.parse.urlencode({k: v for k, v in q.items() if v is not None})
