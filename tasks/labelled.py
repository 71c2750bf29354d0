"""Generic labelled text datasets for probes: a CSV of (text, label) plus the position rule to read at."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from interp import validate
from interp.errors import InvalidInput

Position = str | int | tuple[int, int]  # "last" | token index | (start, end) span mean
MAX_CSV_CHARS = 50_000_000  # characters of CSV text read at once


@dataclass
class LabelledTexts:
    """Texts with class ids (``classes`` names them) or real values (``classes`` is None)."""

    texts: list[str]
    labels: np.ndarray  # [n] int64 class ids or float64 values
    classes: list[str] | None
    position: Position

    def __len__(self) -> int:
        return len(self.texts)


def parse_position(rule: str | int | tuple[int, int]) -> Position:
    """'last' | 'mean' (whole span is not known before tokenizing: use 'start:end') | '3' | '1:4' -> a rule."""
    if isinstance(rule, tuple):
        try:
            a, b = (validate.integer(v, "Span bound") for v in rule)
        except ValueError:
            raise InvalidInput(f"A span is (start, end), got {rule!r}.") from None
        if not 0 <= a < b:
            raise InvalidInput(f"A span needs 0 <= start < end, got {rule!r}.")
        return (a, b)
    if not isinstance(rule, str):
        return validate.integer(rule, "Position")
    s = str(rule).strip().lower()
    if s == "last":
        return "last"
    try:
        if ":" in s:
            a, b = (int(v) for v in s.split(":"))
            if not 0 <= a < b:
                raise ValueError
            return (a, b)
        return int(s)
    except ValueError:
        raise InvalidInput(f"Unknown position rule {rule!r}.",
                           "Use 'last', a token index such as '3', or a span 'start:end' (mean over it).") from None


def parse_labelled_csv(data: bytes | str, *, text_column: str = "text", label_column: str = "label",
                       task: str = "classification", position: str | int | tuple[int, int] = "last",
                       source: str = "the CSV") -> LabelledTexts:
    """Parse CSV bytes/text into a :class:`LabelledTexts`, refusing bad input with a message that says where."""
    if task not in ("classification", "regression"):
        raise InvalidInput(f"task must be 'classification' or 'regression', got {task!r}.")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            raise InvalidInput(f"{source} is not UTF-8 text (bad byte at line {line}).",
                               "Re-save it as UTF-8 (e.g. in a spreadsheet: CSV UTF-8).") from None
    if not isinstance(data, str):
        raise InvalidInput(f"{source} must be CSV text or bytes, got {type(data).__name__}.")
    if len(data) > MAX_CSV_CHARS:
        raise InvalidInput(f"{source} holds {len(data):,} characters; at most {MAX_CSV_CHARS:,} are read.",
                           "Use fewer or shorter rows.")
    try:
        return _parse(data, text_column, label_column, task, position, source)
    except csv.Error as e:  # a field longer than the csv module's limit, a NUL byte, a broken quote
        raise InvalidInput(f"{source} could not be read as CSV ({e}).",
                           f"Keep each text under {csv.field_size_limit():,} characters and quote fields that hold "
                           "commas or line breaks.") from None


def _parse(data: str, text_column: str, label_column: str, task: str, position: str | int | tuple[int, int],
           source: str) -> LabelledTexts:
    reader = csv.DictReader(io.StringIO(data))
    cols = reader.fieldnames or []
    missing = [c for c in (text_column, label_column) if c not in cols]
    if missing:
        raise InvalidInput(f"{source} has no column {', '.join(map(repr, missing))}; its columns are "
                           f"{', '.join(map(repr, cols)) or '(none: the file is empty)'}.",
                           "Name the columns, or pass text_column / label_column.")
    texts, raw = [], []
    for i, row in enumerate(reader, start=2):  # line 1 is the header
        text, label = (row.get(text_column) or "").strip(), (row.get(label_column) or "").strip()
        if not text or not label:
            raise InvalidInput(f"{source} line {i} has an empty {'text' if not text else 'label'}.",
                               "Fill it in or delete the row.")
        texts.append(text)
        raw.append(label)
    if not texts:
        raise InvalidInput(f"{source} has a header but no rows.")
    if task == "regression":
        try:
            labels = np.array([float(v) for v in raw])
        except ValueError as e:
            raise InvalidInput(f"{source}: a regression label is not a number ({e}).") from None
        if not np.isfinite(labels).all():
            bad = int(np.nonzero(~np.isfinite(labels))[0][0])
            raise InvalidInput(f"{source} line {bad + 2}: the label {raw[bad]!r} is not a finite number.",
                               "A regression label must be a real number (not nan or inf).")
        if np.ptp(labels) == 0:
            raise InvalidInput(f"{source}: every label is {labels[0]}; there is nothing to predict.")
        return LabelledTexts(texts, labels, None, parse_position(position))
    classes = sorted(set(raw))
    if len(classes) < 2:
        raise InvalidInput(f"{source} has only one class ({classes[0]!r}); a probe needs at least two.")
    index = {c: k for k, c in enumerate(classes)}
    return LabelledTexts(texts, np.array([index[v] for v in raw], np.int64), classes, parse_position(position))


def load_labelled_csv(path: str | Path, **kw) -> LabelledTexts:
    """Read a CSV file of (text, label) rows; see :func:`parse_labelled_csv`."""
    p = Path(path)
    if not p.is_file():
        raise InvalidInput(f"No CSV file at {p}.", "Check the path.")
    return parse_labelled_csv(p.read_bytes(), source=str(p), **kw)


#: The last arguments of the bracket example: 60 different names, so the token read (the last one) takes 60 values
#: and a probe cannot pass the control task by memorising a handful of tokens.
LAST_ARGS = ("key", "value", "name", "path", "data", "item", "line", "text", "size", "index", "count", "result",
             "node", "args", "kwargs", "obj", "func", "cls", "module", "file", "mode", "buf", "msg", "code", "level",
             "state", "parent", "child", "target", "source", "default", "options", "config", "context", "request",
             "response", "header", "body", "token", "stream", "offset", "length", "start", "end", "limit",
             "timeout", "encoding", "errors", "prefix", "suffix", "pattern", "flags", "values", "items", "keys",
             "other", "tail", "head", "left", "right")


def bracket_example_csv() -> str:
    """A small built-in CSV (120 rows): is a bracket still open at the last token? Each text has a twin of the
    other class ending in the same token, so the token alone says nothing: above-majority accuracy must come from
    context (the embedding layer L0 cannot have it). The last tokens are 60 different names, so the control task
    (random labels tied to the token read) cannot be passed by memorising a few tokens."""
    names = ("foo", "print", "len", "max", "sorted", "call", "run", "self.get", "os.path.join", "dict")
    firsts = ("a", "x", "1", "self", "i", "name")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["text", "label"])
    for i, b in enumerate(LAST_ARGS):
        name, a = names[i % len(names)], firsts[i % len(firsts)]
        writer.writerow([f"{name}({a}, {b}", "open"])
        writer.writerow([f"{name}({a}), {b}", "closed"])
    return out.getvalue()
