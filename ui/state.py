"""The state every page shares (model, prompt, layer, head), mirrored in the URL so a view can be shared.

Light to import (no torch): the app's first page draws before the model code is loaded; ``ui.models`` is imported
where a model is needed."""
from __future__ import annotations

from typing import TYPE_CHECKING

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
        url_warn(f"The link asks for a page {messages.capped(page, 40)!r} that does not exist; "
                 f"showing {default_page}.")
        del qp["page"]
        page = None
    ss.setdefault("page", page or default_page)
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
        ss.pop(LAYER, None)
        ss.pop(HEAD, None)
    else:
        select_head(head)
    for key in drop:
        ss.pop(key, None)
    ss.update(widgets or {})
    ss["page"] = page


def link(page: str, *, model: str | None = None, prompt: str | None = None, head: Head | None = None) -> str:
    """A relative URL opening ``page`` with that model, prompt and head (what :func:`sync_url` would write)."""
    import urllib.parse

    q = {"page": page, "model": model, "prompt": prompt if prompt and len(prompt) <= MAX_URL_PROMPT else None,
         "layer": str(head.layer) if head else None, "head": str(head.head) if head else None}
    return "?" + urllib.parse.urlencode({k: v for k, v in q.items() if v is not None})
