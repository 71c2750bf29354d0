"""Failures as one capped line in the page's words, never a traceback."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from interp import WorkbenchError
from interp.errors import memory_error

#: Longest error text shown; the rest is cut (a failure never dumps a figure or a tensor on the page).
MAX_ERROR_CHARS = 600


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
    if (oom := memory_error(e, "The computation")) is not None:
        return capped(str(oom))
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
