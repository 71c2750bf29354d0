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
