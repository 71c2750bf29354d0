"""Small vocabularies every layer shares: a head, the progress callback, where a model came from. Closed sets that
belong to one analysis (a probe kind, a patching metric...) are defined in that analysis's package.

A head travels as a :class:`Head` value (``str(Head(5, 1)) == "5.1"``, the literature's ``L.H``) and is parsed
from text in one place, :meth:`Head.parse`. Closed sets of options are ``Literal`` aliases, so a type checker
and the UI's pickers see the same names.
"""
from __future__ import annotations

import re
from typing import Literal, NamedTuple, Protocol

from interp.errors import InvalidInput

ModelSource = Literal["bundled", "local", "hub"]  # where a model was loaded from


class Progress(Protocol):
    """The one progress-callback signature: ``progress(fraction done in [0, 1], message)``."""
    def __call__(self, fraction: float, message: str = "") -> None: ...


_HEAD_RE = re.compile(r"\s*[Ll]?(\d+)\s*[.:,Hh ]\s*[Hh]?(\d+)\s*")


class Head(NamedTuple):
    """One attention head, ``layer`` and ``head`` from 0; prints as ``L.H``."""
    layer: int
    head: int

    def __str__(self) -> str:
        return f"{self.layer}.{self.head}"

    @classmethod
    def parse(cls, text: str | Head | tuple[int, int]) -> Head:
        """``"5.1"``, ``"L5H1"``, ``"5:1"`` or ``(5, 1)`` -> ``Head(5, 1)``; anything else is InvalidInput."""
        if isinstance(text, tuple) and len(text) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) or type(v).__module__ == "numpy"
                and type(v).__name__.startswith(("int", "uint")) for v in text):
            return cls(int(text[0]), int(text[1]))
        m = _HEAD_RE.fullmatch(text) if isinstance(text, str) and len(text) <= 40 else None
        if m is None or max(len(m.group(1)), len(m.group(2))) > 9:
            shown = repr(text) if len(repr(text)) <= 40 else repr(text)[:37] + "..."
            raise InvalidInput(f"{shown} is not a head; write it as layer.head, e.g. 5.1.")
        return cls(int(m.group(1)), int(m.group(2)))

    def check(self, n_layers: int, n_heads: int) -> Head:
        """This head if it exists in a model of ``n_layers`` x ``n_heads``; else InvalidInput with the range."""
        if not (0 <= self.layer < n_layers and 0 <= self.head < n_heads):
            raise InvalidInput(f"Head {self} does not exist: layers 0..{n_layers - 1}, heads 0..{n_heads - 1}.")
        return self


def all_heads(n_layers: int, n_heads: int) -> list[Head]:
    """Every head in layer-major order (the order of a flattened ``[layer, head]`` array)."""
    return [Head(layer, head) for layer in range(n_layers) for head in range(n_heads)]
