"""Load the heavy parts in the background while the first page is read: the model code (torch, TransformerLens),
the default model and its attention on the first example prompt, so the first page the reader opens next is
quick. Once per server process; a failure is left for the page that needs the model to report."""
from __future__ import annotations

import importlib
import logging
import threading

_LOCK = threading.Lock()
_STATE = {"started": False, "done": False, "error": None}


def start(model: str | None = None) -> None:
    """Start the warm-up thread (for ``model``, else the default) unless one already ran in this process."""
    with _LOCK:
        if _STATE["started"]:
            return
        _STATE["started"] = True
    threading.Thread(target=_warm, args=(model,), name="workbench-warmup", daemon=True).start()


def _warm(model: str | None) -> None:
    # cached functions called outside a script run log "missing ScriptRunContext"; harmless here
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)
    try:
        from interp.prompt_check import example_prompts
        from ui import models

        name = model or models.default_model_name()
        handle = models.cached_model(name)
        models.cached_attention(name, next(iter(example_prompts(handle).values())))
        for page in ("ui.attention_page", "ui.walkthrough_page"):
            importlib.import_module(page)
    except Exception as e:  # noqa: BLE001 - the page that needs the model says what is wrong
        _STATE["error"] = e
    finally:
        _STATE["done"] = True
