"""Typed, self-validating run settings: every config field documented once, checked when the config is built.

An experiment's ``Config`` is a dataclass that subclasses :class:`RunSettings` (seed, device, threads) and
declares each field with :func:`setting`: its default (the published setting), one line of help (shown by
``python -m experiments run NAME --help`` and ``list``) and its valid range. A field annotated with a closed set
(a ``Literal`` type, defined once where the analysis lives) takes its choices from that type. :func:`validate`
checks every field against its declaration and then calls the config's own ``check()`` for rules that tie
fields together (``n_heads`` divides ``d_model``, ``seg_min <= seg_max``); any violation is an
:class:`InvalidInput` that names the field and the valid range.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
import tempfile
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from interp.errors import InvalidInput
from interp.loading.devices import resolve_device
from interp.model import LoadBackend

SEED_MAX = 2**32 - 1  # numpy's seed range
MAX_TEXT = 100_000  # characters in one text setting (a prompt list item, a template)
MAX_ITEMS = 10_000  # items in one list setting
#: What a path setting names: an existing folder / an existing file / a folder that can be written (created if
#: absent) / a model (bundled name, directory or Hub name) / an existing saved model directory (safetensors).
PathKind = Literal["dir", "file", "out", "model", "model_dir"]
MODEL_HELP = "model: a bundled name (see models/), a saved model directory or a Hugging Face name"


def setting(default: Any, help: str, *, low: float | None = None, high: float | None = None,
            choices: tuple[Any, ...] | None = None, path: PathKind | None = None,
            positive: bool = False, threshold: bool = False) -> Any:
    """A documented config field: ``low``/``high`` bound numbers (inclusive), ``positive`` requires > 0,
    ``choices`` is a closed set (leave it out when the field's type is a ``Literal``: its values are the choices),
    ``path`` says what a string names (empty string: not given), ``threshold`` marks a bar a check compares against
    (its default is the published one: a run that changes it says so beside the published value)."""
    meta = {"help": help, "low": low, "high": high, "choices": choices, "path": path, "positive": positive,
            "threshold": threshold}
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class RunSettings:
    """Settings every experiment takes. Subclass it; put the experiment's own fields after these."""
    seed: int = setting(0, "random seed; the same seed on CPU gives identical metrics", low=0, high=SEED_MAX)
    device: str = setting("cpu", "torch device: cpu, cuda, cuda:N, mps or auto")
    backend: LoadBackend = setting("bridge", "how the models it loads run: bridge (TransformerLens, here), nnsight "
                                   "(nnsight, here) or ndif (nnsight on NDIF's servers: Hub models NDIF hosts, "
                                   "key in NDIF_API_KEY)")
    threads: int = setting(0, "CPU threads for torch during the run (0: leave torch's default)", low=0, high=512)

    def check(self) -> None:
        """Rules that tie fields together; override and raise :class:`InvalidInput` (call super().check())."""


def field_help(config_cls: type) -> list[tuple[str, Any, str, str]]:
    """(name, default, help, valid range in words) for every field of a config class, in declaration order."""
    rows = []
    defaults = config_cls()
    for f in dataclasses.fields(config_cls):
        rows.append((f.name, getattr(defaults, f.name), (f.metadata or {}).get("help", ""),
                     _range_words(field_meta(config_cls, f))))
    return rows


def changed_thresholds(config: Any) -> list[tuple[str, Any, Any]]:
    """(name, this run's value, the published value) of every threshold setting that differs from its default."""
    base = type(config)()
    return [(f.name, getattr(config, f.name), getattr(base, f.name)) for f in dataclasses.fields(config)
            if (f.metadata or {}).get("threshold") and getattr(config, f.name) != getattr(base, f.name)]


@functools.cache
def _literal_choices(config_cls: type) -> dict[str, tuple[Any, ...]]:
    """Field name -> the values of its ``Literal`` annotation, for every field annotated with one."""
    out = {}
    for name, hint in typing.get_type_hints(config_cls).items():
        if typing.get_origin(hint) is Literal:
            out[name] = typing.get_args(hint)
    return out


def field_meta(config_cls: type, f: dataclasses.Field) -> dict[str, Any]:
    """A field's declaration, with its choices taken from its ``Literal`` type when it has one."""
    meta = dict(f.metadata or {})
    if not meta.get("choices"):
        meta["choices"] = _literal_choices(config_cls).get(f.name)
    return meta


def _num(x: float) -> str:
    """A bound in words: whole numbers exactly (4294967295, not 4.29497e+09), others compactly."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


def _range_words(meta: dict[str, Any]) -> str:
    if meta.get("choices"):
        return "one of " + ", ".join(map(str, meta["choices"]))
    low, high = meta.get("low"), meta.get("high")
    if meta.get("positive") and low is None:
        return "> 0" + (f" and <= {_num(high)}" if high is not None else "")
    if low is not None and high is not None:
        return f"{_num(low)} .. {_num(high)}"
    if low is not None:
        return f">= {_num(low)}"
    if high is not None:
        return f"<= {_num(high)}"
    return {"dir": "an existing folder", "file": "an existing file", "out": "a folder that can be written",
            "model": "a model name or directory",
            "model_dir": "a saved model directory (with *.safetensors)"}.get(meta.get("path") or "", "")


def validate(config: Any) -> Any:
    """Check every field of ``config`` against its declaration, then ``config.check()``; returns ``config``."""
    for f in dataclasses.fields(config):
        _check_field(f, getattr(config, f.name), field_meta(type(config), f))
    check = getattr(config, "check", None)
    if callable(check):
        check()
    return config


def _bad(name: str, value: Any, want: str) -> InvalidInput:
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return InvalidInput(f"Setting {name}={shown} is invalid: expected {want}.")


def _check_field(f: dataclasses.Field, value: Any, meta: dict[str, Any]) -> None:
    name = f.name
    default = f.default if f.default is not dataclasses.MISSING else (
        f.default_factory() if f.default_factory is not dataclasses.MISSING else None)  # list settings too
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise _bad(name, value, "true or false")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(name, value, "a whole number")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _bad(name, value, "a finite number")
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise _bad(name, value, "text")
        _check_text(name, value)
    elif isinstance(default, (tuple, list)):
        if not isinstance(value, (tuple, list)):
            raise _bad(name, value, "a comma-separated list")
        _check_items(name, value, default, meta)
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


def _check_text(name: str, value: str) -> None:
    if "\x00" in value or len(value) > MAX_TEXT:
        raise InvalidInput(f"Setting {name}: the text holds a NUL byte or is longer than {MAX_TEXT:,} characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"Setting {name}: the text is not valid Unicode (a lone surrogate).") from None


def _check_items(name: str, value: tuple | list, default: tuple | list, meta: dict[str, Any] | None = None) -> None:
    """Items of a list setting have the type of the default's items (numbers finite, each within the setting's
    ``low``/``high``/``positive``, e.g. ``size_ratios=1,nan`` or ``1,-2`` is refused at its item); texts are
    checked; at most :data:`MAX_ITEMS` items."""
    kinds = {type(v) for v in default}
    if len(value) > MAX_ITEMS:
        raise InvalidInput(f"Setting {name} has {len(value):,} items; at most {MAX_ITEMS:,} are taken.")
    meta = meta or {}
    low, high = meta.get("low"), meta.get("high")
    for i, item in enumerate(value):
        if isinstance(item, (int, float)) and not isinstance(item, bool) and math.isfinite(item):
            if (meta.get("positive") and not item > 0) or (low is not None and item < low) or (
                    high is not None and item > high):
                raise InvalidInput(f"Setting {name}: item {i + 1} ({item!r}) is out of range: each item must be "
                                   f"{_range_words(meta)}.")
        if kinds and int in kinds and float not in kinds and isinstance(item, float):
            raise _bad(name, value, "a list of whole numbers")
    for item in value:
        if isinstance(item, str):
            if kinds and str not in kinds:
                raise _bad(name, value, "a list of numbers")
            _check_text(name, item)
        elif isinstance(item, bool) or not isinstance(item, (int, float)):
            raise _bad(name, value, "a list of numbers or texts")
        elif kinds and not kinds & {int, float}:
            raise _bad(name, value, "a list of texts")
        elif not math.isfinite(item):
            raise _bad(name, value, "a list of finite numbers")


def check_device(device: str) -> None:
    """The one device rule (:func:`interp.loading.devices.resolve_device`), its message naming the setting."""
    try:
        resolve_device(device)
    except InvalidInput as e:
        raise InvalidInput(f"Setting device: {e.message}", e.hint or "Use --device cpu.") from None


def _check_path(name: str, value: str, kind: PathKind) -> None:
    shown = value if len(value) <= 80 else value[:77] + "..."
    if len(value) > 1024 or "\x00" in value or any(len(part) > 255 for part in Path(value).parts):
        raise InvalidInput(f"Setting {name}: the path {shown!r} is too long (a name may have at most 255 "
                           "characters, a path 1024) or holds a NUL byte.")
    p = Path(value).expanduser()
    try:
        if kind == "dir" and not p.is_dir():
            raise InvalidInput(f"Setting {name}={shown!r}: no such folder.", "Give an existing folder.")
        if kind == "file" and not p.is_file():
            raise InvalidInput(f"Setting {name}={shown!r}: no such file.", "Give an existing file.")
        if kind == "model_dir":
            check_model_dir(p, name)
        if kind == "out":
            check_writable_dir(p, f"Setting {name}")
    except OSError as e:  # a path the OS refuses to look at (too deep, permission denied on a parent)
        raise InvalidInput(f"Setting {name}={shown!r}: cannot be used ({e.strerror or e}).") from None


def check_model_dir(p: Path, what: str) -> None:
    """``p`` is a saved model directory: a folder holding config.json and *.safetensors; else InvalidInput."""
    if not p.is_dir():
        raise InvalidInput(f"{what}={str(p)[:80]!r}: no such folder.", "Give a saved model directory "
                           "(config.json + model.safetensors), e.g. models/stdlib-gpt2.")
    if not (p / "config.json").is_file() or not any(f.is_file() for f in p.glob("*.safetensors")):
        raise InvalidInput(f"{what}={str(p)[:80]!r} is not a model directory (no config.json with *.safetensors "
                           "weights).", "Give a saved model directory, e.g. models/stdlib-gpt2.")


def check_writable_dir(p: Path, what: str, *, max_name: int = 255) -> None:
    """``p`` is (or can be made as) a folder this process can write; else InvalidInput naming ``what``.

    ``max_name`` caps the last name's length (the runner needs room for a staging suffix)."""
    shown = str(p) if len(str(p)) <= 80 else str(p)[:77] + "..."
    if len(str(p)) > 1024 or "\x00" in str(p) or any(len(part) > 255 for part in p.parts) or len(p.name) > max_name:
        raise InvalidInput(f"{what}: the path {shown} is too long (a folder name may have at most {max_name} "
                           "characters, a path 1024).", "Choose a shorter name.")
    if p.exists() and not p.is_dir():
        raise InvalidInput(f"{what}: {shown} is a file, not a folder.", "Give a folder path.")
    probe = p.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise InvalidInput(f"{what}: {shown} lies under {probe}, which is a file, not a folder.",
                           "Give a folder path.")
    if not _can_write(probe):
        raise InvalidInput(f"{what}: cannot write into {probe} (read-only or permission denied).",
                           "Choose a writable folder.")


def _can_write(folder: Path) -> bool:
    """Try it (os.access says yes to root on a read-only folder and knows nothing of read-only mounts); a folder
    whose mode grants nobody write access counts as read-only even for root."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        if not folder.stat().st_mode & 0o222:  # marked read-only for everyone: respected even by root
            return False
        fd, name = tempfile.mkstemp(prefix=".write-check-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True
