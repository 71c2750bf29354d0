"""Typed errors whose message tells the user what happened and what to do.

The app shows them with ``st.error``; the CLI prints them without a traceback and exits non-zero.
"""
from __future__ import annotations


class WorkbenchError(Exception):
    """Base class: ``str(err)`` is a complete, user-facing message (what happened + what to do)."""

    def __init__(self, message: str, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message}\n{hint}")


class ModelUnavailable(WorkbenchError):
    """A model could not be had: unknown name, offline hub, half-downloaded or unreadable files."""


class CheckpointRefused(ModelUnavailable):
    """A checkpoint that would need unpickling arbitrary Python objects; never loaded."""


class InvalidInput(WorkbenchError, ValueError):
    """A user input (prompt, layer/head index, dataset, option) that cannot be used as given."""


class LensUnavailable(ModelUnavailable):
    """A model has no tuned lens, or its tuned-lens files are corrupt or belong to other weights."""


class OutOfMemory(WorkbenchError):
    """The computation needed more memory than the machine has; nothing partial was kept."""


#: What torch and numpy say when an allocation fails (CPU allocator, CUDA, MPS).
_OOM_TEXT = ("can't allocate memory", "cannot allocate memory", "out of memory", "not enough memory",
             "unable to allocate")


def memory_error(e: BaseException, what: str = "The run") -> OutOfMemory | None:
    """An :class:`OutOfMemory` saying so in one line when ``e`` is an allocation failure (MemoryError, torch's
    OutOfMemoryError, a RuntimeError from its allocator), else None. Callers re-raise it instead of ``e``."""
    text = str(e).lower()
    if not isinstance(e, MemoryError) and not (isinstance(e, RuntimeError) and any(t in text for t in _OOM_TEXT)):
        if type(e).__name__ != "OutOfMemoryError":
            return None
    import re

    asked = re.search(r"allocate (\d+) bytes", text)
    size = f" (one allocation asked for {int(asked.group(1)) / 2**30:.1f} GiB)" if asked else ""
    try:
        import psutil

        free = f"; {psutil.virtual_memory().available / 2**30:.1f} GiB of memory is available"
    except Exception:  # noqa: BLE001 - psutil missing: say less
        free = ""
    return OutOfMemory(f"{what} ran out of memory: it needed more than is available{size}{free}, so it stopped "
                       "and nothing partial was written.",
                       "Use smaller settings (fewer steps' batch, a smaller width or "
                       "dictionary, fewer rows) or a smaller model, or free memory.")
