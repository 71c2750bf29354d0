"""What a result was computed with: the versions of the libraries behind the model interface."""
from __future__ import annotations

import platform
from importlib import metadata

#: Distributions whose versions a results folder records (package name on PyPI).
LIBRARIES = ("torch", "transformer-lens", "transformers", "nnsight", "ray")


def library_versions() -> dict[str, str]:
    """``{"python": ..., "torch": ..., "transformer_lens": ...}`` from the installed distributions' metadata (not a
    module's ``__version__``, which TransformerLens does not set); a library that is not installed is left out."""
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name.replace("-", "_")] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out
