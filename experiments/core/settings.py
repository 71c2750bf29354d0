"""Typed, self-validating run settings: every config field documented once, checked when the config is built.

An experiment's ``Config`` is a dataclass that subclasses :class:`RunSettings` (seed, device, threads) and
declares each field with :func:`setting`: its default (the published setting), one line of help (shown by
``python -m experiments run NAME --help`` and ``list``) and its valid range. :func:`validate` checks every
field against its declaration and then calls the config's own ``check()`` for rules that tie fields together
(``n_heads`` divides ``d_model``, ``seg_min <= seg_max``); any violation is an :class:`InvalidInput` that names
the field and the valid range.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from interp.errors import InvalidInput

SEED_MAX = 2**32 - 1  # numpy's seed range
PathKind = Literal["dir", "file", "out", "model"]  # must exist as a folder / a file; writable target; a model


def setting(default: Any, help: str, *, low: float | None = None, high: float | None = None,
            choices: tuple[Any, ...] | None = None, path: PathKind | None = None,
            positive: bool = False) -> Any:
    """A documented config field: ``low``/``high`` bound numbers (inclusive), ``positive`` requires > 0,
    ``choices`` is a closed set, ``path`` says what a string names (empty string: not given)."""
    meta = {"help": help, "low": low, "high": high, "choices": choices, "path": path, "positive": positive}
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class RunSettings:
    """Settings every experiment takes. Subclass it; put the experiment's own fields after these."""

    seed: int = setting(0, "random seed; the same seed on CPU gives identical metrics", low=0, high=SEED_MAX)
    device: str = setting("cpu", "torch device: cpu, cuda, cuda:N or mps")
    threads: int = setting(0, "CPU threads for torch during the run (0: leave torch's default)", low=0, high=512)

    def check(self) -> None:
        """Rules that tie fields together; override and raise :class:`InvalidInput` (call super().check())."""


def field_help(config_cls: type) -> list[tuple[str, Any, str, str]]:
    """(name, default, help, valid range in words) for every field of a config class, in declaration order."""
    rows = []
    defaults = config_cls()
    for f in dataclasses.fields(config_cls):
        meta = f.metadata or {}
        rows.append((f.name, getattr(defaults, f.name), meta.get("help", ""), _range_words(meta)))
    return rows


def _range_words(meta: dict[str, Any]) -> str:
    if meta.get("choices"):
        return "one of " + ", ".join(map(str, meta["choices"]))
    low, high = meta.get("low"), meta.get("high")
    if meta.get("positive") and low is None:
        return "> 0" + (f" and <= {high:g}" if high is not None else "")
    if low is not None and high is not None:
        return f"{low:g} .. {high:g}"
    if low is not None:
        return f">= {low:g}"
    if high is not None:
        return f"<= {high:g}"
    return {"dir": "an existing folder", "file": "an existing file", "out": "a folder that can be written",
            "model": "a model name or directory"}.get(meta.get("path") or "", "")


def validate(config: Any) -> Any:
    """Check every field of ``config`` against its declaration, then ``config.check()``; returns ``config``."""
    for f in dataclasses.fields(config):
        _check_field(f, getattr(config, f.name))
    check = getattr(config, "check", None)
    if callable(check):
        check()
    return config


def _bad(name: str, value: Any, want: str) -> InvalidInput:
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return InvalidInput(f"Setting {name}={shown} is invalid: expected {want}.")


def _check_field(f: dataclasses.Field, value: Any) -> None:
    meta, name = f.metadata or {}, f.name
    default = f.default if f.default is not dataclasses.MISSING else None
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise _bad(name, value, "true or false")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(name, value, "a whole number")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _bad(name, value, "a finite number")
    elif isinstance(default, str) and not isinstance(value, str):
        raise _bad(name, value, "text")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = meta.get("low"), meta.get("high")
        if meta.get("positive") and not value > 0:
            raise _bad(name, value, "a number > 0")
        if (low is not None and value < low) or (high is not None and value > high):
            raise _bad(name, value, _range_words(meta))
    if meta.get("choices") and value not in meta["choices"]:
        raise _bad(name, value, _range_words(meta))
    if name == "device":
        check_device(value)
    if isinstance(value, str) and value and meta.get("path"):
        _check_path(name, value, meta["path"])


def check_device(device: str) -> None:
    """``cpu``, ``cuda``/``cuda:N`` when CUDA has that device, ``mps`` when available; else InvalidInput."""
    import torch

    if device == "cpu":
        return
    if device == "mps":
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return
        raise InvalidInput("Setting device=mps: this machine has no Apple GPU.", "Use --device cpu.")
    if device == "cuda" or device.startswith("cuda:"):
        index = device.partition(":")[2]
        if index and not index.isdigit():
            raise InvalidInput(f"Setting device={device!r} is invalid: expected cuda or cuda:N.")
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise InvalidInput(f"Setting device={device}: no CUDA GPU is available here.", "Use --device cpu.")
        if index and int(index) >= n:
            raise InvalidInput(f"Setting device={device}: this machine has {n} CUDA device(s), 0..{n - 1}.")
        return
    raise InvalidInput(f"Setting device={device!r} is not a device: expected cpu, cuda, cuda:N or mps.")


def _check_path(name: str, value: str, kind: PathKind) -> None:
    if len(value) > 1024 or "\x00" in value:
        raise InvalidInput(f"Setting {name}: the path is too long or holds a NUL byte.")
    p = Path(value).expanduser()
    if kind == "dir" and not p.is_dir():
        raise InvalidInput(f"Setting {name}={value!r}: no such folder.")
    if kind == "file" and not p.is_file():
        raise InvalidInput(f"Setting {name}={value!r}: no such file.")
    if kind == "out":
        check_writable_dir(p, name)


def check_writable_dir(p: Path, what: str) -> None:
    """``p`` is (or can be made as) a folder this process can write; else InvalidInput naming ``what``."""
    if len(str(p)) > 1024 or any(len(part) > 255 for part in p.parts):
        raise InvalidInput(f"{what}: the path {str(p)[:80]}... is too long (a name may have at most 255 characters).")
    if p.exists() and not p.is_dir():
        raise InvalidInput(f"{what}: {p} is a file, not a folder.", "Give a folder path.")
    probe = p
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise InvalidInput(f"{what}: cannot write into {probe} (permission denied).", "Choose a writable folder.")
