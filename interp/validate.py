"""The one place library inputs are checked: indices, prompts, token tensors, hook names, numbers, probe data.

Every check either returns the value in a canonical form (a Python ``int``, a list of names, a contiguous
array) or raises :class:`InvalidInput` saying what is wrong and what is accepted. Integers may come as Python,
numpy or 0-d torch integer scalars (``np.int64(1)`` is 1); bools, floats (even 1.0: no silent truncation of
1.5), None, NaN and strings are refused. The interp and probes modules call these instead of checking by hand.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from interp.errors import InvalidInput

_MAX_SHOWN = 60


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


# ----------------------------------------------------------------------------- integers and indices


def integer(value: Any, what: str) -> int:
    """``value`` as a Python int if it is an integer scalar (Python, numpy, 0-d integer tensor), else InvalidInput."""
    if isinstance(value, torch.Tensor):
        if value.ndim != 0 or value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool:
            raise InvalidInput(f"{what} must be a whole number, got a tensor of shape {tuple(value.shape)} "
                               f"and dtype {str(value.dtype).replace('torch.', '')}.")
        return int(value.item())
    if isinstance(value, (bool, np.bool_)):
        raise InvalidInput(f"{what} must be a whole number, got the boolean {value!r}.")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        shown = "NaN" if math.isnan(value) else _show(float(value))
        raise InvalidInput(f"{what} must be a whole number, got the float {shown}.",
                           "Pass an int such as 1 (floats are not rounded for you).")
    if value is None:
        raise InvalidInput(f"{what} is missing (None); give a whole number.")
    raise InvalidInput(f"{what} must be a whole number, got {type(value).__name__} {_show(value)}.")


def index(value: Any, n: int, what: str, *, owner: str = "") -> int:
    """An index in ``0..n-1`` (see :func:`integer`); the message names the valid range."""
    i = integer(value, what)
    if not 0 <= i < n:
        where = f"{owner} has {n}" if owner else f"there are {n}"
        raise InvalidInput(f"{what} {i} does not exist: {where} (0..{n - 1}).")
    return i


def layer_index(value: Any, n_layers: int, model: str = "the model") -> int:
    """A block index of a model with ``n_layers`` blocks."""
    i = integer(value, "Layer")
    if not 0 <= i < n_layers:
        raise InvalidInput(f"Layer {i} does not exist: {model} has {n_layers} layers (0..{n_layers - 1}).")
    return i


def head_index(layer: Any, head: Any, n_layers: int, n_heads: int, model: str = "the model") -> tuple[int, int]:
    """(layer, head) of a model with ``n_layers`` x ``n_heads``, as Python ints."""
    lay = layer_index(layer, n_layers, model)
    h = integer(head, "Head")
    if not 0 <= h < n_heads:
        raise InvalidInput(f"Head {lay}.{h} does not exist: {model} has {n_heads} heads per layer "
                           f"(0..{n_heads - 1}).")
    return lay, h


def count(value: Any, what: str, *, low: int = 1, high: int | None = None) -> int:
    """A whole number in ``low..high`` (e.g. n_batch >= 1, seq_len in 2..n)."""
    i = integer(value, what)
    if i < low or (high is not None and i > high):
        rng = f"{low}..{high}" if high is not None else f">= {low}"
        raise InvalidInput(f"{what} must be in {rng}, got {i}.")
    return i


#: The seed range every seeded function takes (numpy's: 0 .. 2^32 - 1).
SEED_MAX = 2**32 - 1


def seed_value(value: Any, what: str = "seed") -> int:
    """A random seed: a whole number in 0..2^32-1 (numpy's range; larger ones overflow inside numpy and torch)."""
    return count(value, what, low=0, high=SEED_MAX)


def number(value: Any, what: str, *, low: float | None = None, high: float | None = None,
           low_open: bool = False) -> float:
    """A finite real number (not a bool) within the bounds, as a Python float."""
    if isinstance(value, torch.Tensor) and value.ndim == 0 and value.dtype != torch.bool:
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InvalidInput(f"{what} must be a number, got {type(value).__name__} {_show(value)}.")
    v = float(value)
    if not math.isfinite(v):
        raise InvalidInput(f"{what} must be a finite number, got {v}.")
    if low is not None and (v <= low if low_open else v < low):
        raise InvalidInput(f"{what} must be {'>' if low_open else '>='} {low}, got {v}.")
    if high is not None and v > high:
        raise InvalidInput(f"{what} must be <= {high}, got {v}.")
    return v


# ----------------------------------------------------------------------------- text and tokens


def prompt_text(text: Any, i: int | None = None, *, n: int = 1) -> str:
    """A prompt that is text, not blank, and encodable as UTF-8 (no lone surrogates)."""
    label = "The prompt" if i is None or n == 1 else f"Prompt {i}"
    if not isinstance(text, str):
        raise InvalidInput(f"{label} is a {type(text).__name__}, not text.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidInput(f"{label} holds a character that is not valid Unicode text (a lone surrogate "
                           f"{text[e.start]!r} at character {e.start}).",
                           "Remove it; it usually comes from text decoded with the wrong codec.") from None
    if not text.strip():
        raise InvalidInput(f"{label} is empty.", "Type some text to analyse.")
    return text


def prompt_list(prompts: Any) -> list[str]:
    """One prompt (a str is ONE prompt) or a non-empty sequence of prompts -> a list of checked prompts."""
    if isinstance(prompts, str):
        return [prompt_text(prompts)]
    if prompts is None or isinstance(prompts, (bytes, bytearray, dict)) or not isinstance(prompts, Iterable):
        raise InvalidInput(f"Prompts must be text or a list of texts, got {type(prompts).__name__}.")
    texts = list(prompts)
    if not texts:
        raise InvalidInput("No prompts given.")
    return [prompt_text(t, i, n=len(texts)) for i, t in enumerate(texts)]


def token_tensor(tokens: Any, d_vocab: int, model: str = "the model") -> torch.Tensor:
    """Token ids as a [batch, pos] int64 tensor: integer dtype, 1-D or 2-D, >= 1 row and position, ids in range."""
    if isinstance(tokens, np.ndarray):
        if not np.issubdtype(tokens.dtype, np.integer):
            raise InvalidInput(f"Token ids must be integers, got a numpy array of dtype {tokens.dtype}.")
        tokens = torch.from_numpy(np.array(tokens, dtype=np.int64, copy=True))  # keeps 0-d as 0-d
    if not isinstance(tokens, torch.Tensor):
        raise InvalidInput(f"Tokens must be a tensor of ids, got {type(tokens).__name__}.")
    if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
        raise InvalidInput(f"Token ids must be integers, got dtype {str(tokens.dtype).replace('torch.', '')}.",
                           "Convert with .long() only if the values are whole token ids.")
    t = tokens.long()
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2 or t.shape[0] == 0 or t.shape[1] == 0:
        raise InvalidInput(f"Token tensor must be [batch, pos] with batch >= 1 and pos >= 1, "
                           f"got shape {tuple(tokens.shape)}.")
    lo, hi = int(t.min()), int(t.max())
    if lo < 0 or hi >= d_vocab:
        bad = lo if lo < 0 else hi
        raise InvalidInput(f"Token ids must lie in 0..{d_vocab - 1} for {model}; got {bad}.")
    return t


def hook_name_list(hooks: Any) -> list[str]:
    """A bare string is ONE hook name; otherwise a sequence of strings (empty: no hooks)."""
    if isinstance(hooks, str):
        hooks = [hooks]
    if hooks is None or isinstance(hooks, (bytes, dict)) or not isinstance(hooks, Iterable):
        raise InvalidInput(f"Hook names must be a name or a list of names, got {type(hooks).__name__}.")
    names = list(hooks)
    for n in names:
        if not isinstance(n, str):
            raise InvalidInput(f"A hook name must be text, got {type(n).__name__} {_show(n)}.")
    return names


def scalar_or_list(values: Any) -> list[Any]:
    """A list of the items of ``values``; a scalar (str, number, 0-d tensor/array, None) is one item."""
    if isinstance(values, (str, bytes)) or getattr(values, "ndim", 1) == 0 or not isinstance(values, Iterable):
        return [values]
    return list(values)


# ----------------------------------------------------------------------------- probe data


def features(x: Any, what: str = "Features") -> np.ndarray | torch.Tensor:
    """A [n, d] real array (numpy, memmap or tensor) with n >= 1, d >= 1 and every value finite; returned as is
    (numpy lists are converted) so memmaps are not copied. Finiteness is checked in chunks."""
    if isinstance(x, torch.Tensor):
        arr: Any = x.detach()
        if arr.dtype.is_complex or arr.dtype == torch.bool or not (arr.dtype.is_floating_point
                                                                    or arr.dtype in _INT_TORCH):
            raise InvalidInput(f"{what} must be real numbers, got dtype {str(arr.dtype).replace('torch.', '')}.")
    else:
        try:
            arr = x if isinstance(x, np.ndarray) else np.asarray(x)
        except (ValueError, TypeError) as e:
            raise InvalidInput(f"{what} are not a numeric array ({e}).") from None
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise InvalidInput(f"{what} must be real numbers, got dtype {arr.dtype}.")
        if arr.dtype == np.bool_:
            raise InvalidInput(f"{what} must be real numbers, got booleans.")
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidInput(f"{what} must be a [rows, features] array with at least one of each, "
                           f"got shape {tuple(arr.shape)}.")
    step = max(1, (1 << 22) // max(1, arr.shape[1]))
    for lo in range(0, arr.shape[0], step):
        c = arr[lo:lo + step]
        ok = bool(torch.isfinite(c).all()) if isinstance(c, torch.Tensor) else bool(np.isfinite(c).all())
        if not ok:
            bad = int(lo + (np.nonzero(~np.isfinite(np.asarray(c.cpu() if isinstance(c, torch.Tensor) else c)))[0][0]))
            raise InvalidInput(f"{what} hold NaN or infinite values (first in row {bad}).",
                               "Drop or fix those rows; a probe cannot be fitted on them.")
    return arr


_INT_TORCH = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def labels(y: Any, n_rows: int, *, task: str = "classification") -> np.ndarray:
    """Labels [n] or [n, tasks] matching ``n_rows``: whole, non-negative class ids (classification; integral
    floats accepted) or finite numbers (regression). Returned as int64 / float64 numpy."""
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    try:
        arr = np.asarray(y)
    except (ValueError, TypeError) as e:
        raise InvalidInput(f"Labels are not an array ({e}).") from None
    if arr.ndim not in (1, 2) or arr.shape[0] == 0:
        raise InvalidInput(f"Labels must be [rows] or [rows, tasks], got shape {arr.shape}.")
    if arr.shape[0] != n_rows:
        raise InvalidInput(f"{arr.shape[0]} labels for {n_rows} feature rows; give one label per row.")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.int64) if task == "classification" else arr
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InvalidInput(f"Labels must be numbers (class ids 0, 1, ...), got dtype {arr.dtype}.",
                           "Map class names to ids first, e.g. with tasks.labelled.parse_labelled_csv.")
    if not np.isfinite(arr).all():
        raise InvalidInput("Labels hold NaN or infinite values.")
    if task == "regression":
        return arr.astype(np.float64)
    if np.issubdtype(arr.dtype, np.floating):
        if not (arr == np.round(arr)).all():
            raise InvalidInput("Class labels must be whole numbers; got fractional values "
                               f"(e.g. {arr[arr != np.round(arr)].flat[0]}).",
                               "Use task 'regression' (ridge) for real-valued targets.")
    if arr.min() < 0:
        raise InvalidInput(f"Class labels must be >= 0, got {arr.min()}.")
    return arr.astype(np.int64)


def split_fractions(fractions: Any) -> tuple[float, float]:
    """(train, validation) fractions, each in (0, 1), summing to less than 1 (the rest is the test part)."""
    try:
        a, b = fractions
    except (TypeError, ValueError):
        raise InvalidInput(f"Split fractions must be (train, validation), got {_show(fractions)}.") from None
    a = number(a, "Train fraction", low=0, high=1, low_open=True)
    b = number(b, "Validation fraction", low=0, high=1, low_open=True)
    if a + b >= 1:
        raise InvalidInput(f"Train + validation fractions must be below 1 (the rest is the test part), "
                           f"got {a} + {b} = {a + b}.")
    return a, b


def rows(r: Any, n: int, what: str) -> np.ndarray:
    """Row indices into n rows: a 1-D integer array, every index in 0..n-1."""
    arr = np.asarray(r)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise InvalidInput(f"{what} rows must be a 1-D array of row indices, got {arr.dtype} {arr.shape}.")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise InvalidInput(f"{what} rows must lie in 0..{n - 1}.")
    return arr


def grid(values: Any, what: str, *, low: float = 0.0) -> list[float]:
    """A non-empty sequence of finite numbers >= ``low`` (e.g. an l2 grid)."""
    if isinstance(values, (numbers.Real, torch.Tensor)) and not isinstance(values, bool):
        values = [values]
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise InvalidInput(f"{what} must be a list of numbers, got {type(values).__name__}.")
    out = [number(v, what, low=low) for v in values]
    if not out:
        raise InvalidInput(f"{what} is empty; give at least one value.")
    return out


def finite_result(t: torch.Tensor, what: str, hint: str = "") -> torch.Tensor:
    """Refuse a NaN/inf result instead of returning it."""
    if not bool(torch.isfinite(t).all()):
        raise InvalidInput(f"{what} came out NaN or infinite.", hint or None)
    return t


# ----------------------------------------------------------------------------- settings objects

#: A field rule for :func:`settings`: ("int", low, high) | ("real", low, high) (low exclusive when given as
#: ``("real>", low, high)``) | ("bool",) | ("choice", (values...)).
FieldRule = tuple


def settings(obj: Any, rules: dict[str, FieldRule], what: str = "") -> None:
    """Check the fields of a settings dataclass (a trainer's config) against ``rules`` before any allocation or
    training: whole numbers in range (no bools, no fractions, seeds within numpy's range), finite reals in range
    (NaN, inf and a negative learning rate refused), booleans, closed sets. InvalidInput names the field."""
    prefix = f"{what}: " if what else ""
    for name, rule in rules.items():
        v = getattr(obj, name)
        kind = rule[0]
        label = f"{prefix}{name}"
        if kind == "int":
            count(v, label, low=rule[1], high=rule[2])
        elif kind in ("real", "real>"):
            number(v, label, low=rule[1], high=rule[2], low_open=kind == "real>")
        elif kind == "bool":
            if not isinstance(v, (bool, np.bool_)):
                raise InvalidInput(f"{label} must be true or false, got {_show(v)}.")
        elif kind == "choice":
            if not isinstance(v, str) or v not in rule[1]:
                raise InvalidInput(f"{label} must be one of {', '.join(map(str, rule[1]))}, got {_show(v)}.")
        else:  # pragma: no cover - a programming error in a rule table
            raise ValueError(f"unknown rule kind {kind!r}")
