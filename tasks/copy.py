"""Argument-copy prompt pairs: ``def f(a, b):\\n    return a * `` -> `` b`` (the parameter not yet used).

A model that completes these has to find the function's parameters in context and copy the one the body has
not used yet, so they test in-context copying of identifiers rather than memorised text. Each pair comes with a
corrupted prompt that has the same tokens except every parameter name (fresh names), for activation patching:
logit difference answer - wrong is large on the clean prompt and near 0 on the corrupted one.

Names are split once, by a stable hash, into ``"train"`` names (the only ones ``tasks.copy_mix`` writes into
synthetic code) and ``"heldout"`` names (the only ones the evaluation uses), so the held-out task's names never
co-occur in that synthetic training data. Only names that are ONE token both bare (``width``, after ``(``) and
with a leading space (`` width``) under the model's tokenizer are used, so clean and corrupted prompts align
token for token and the answer is a single token.
"""
from __future__ import annotations

import keyword
import random
import re
import zlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Literal, get_args

import torch

from interp.errors import InvalidInput
from interp.model import Model
from interp.validate import count, seed_value

Split = Literal["train", "heldout"]
TemplateName = Literal["two_args", "swapped", "three_args"]
NameSource = Literal["words", "vocab", "open", "open_unpaired"]  # training parameter-name pools (tasks.copy_mix)

# Plain identifier words a programmer would use as parameter names (fragments such as "gener" left out).
NAME_WORDS: tuple[str, ...] = (
    "action", "addr", "address", "alias", "archive", "arg", "argument", "attr", "attribute", "base", "block",
    "body", "bound", "buf", "buffer", "byte", "cache", "callback", "char", "charset", "child", "chunk", "cmd",
    "code", "codec", "col", "color", "command", "comment", "config", "conn", "connection", "content", "context",
    "count", "current", "data", "date", "day", "default", "dest", "diff", "directory", "doc", "document",
    "domain", "dst", "elem", "element", "encoding", "entry", "env", "err", "error", "event", "exc", "expected",
    "ext", "extension", "extra", "factory", "field", "filename", "fileobj", "flag", "flags", "frame", "func",
    "function", "group", "handle", "handler", "header", "host", "indent", "index", "info", "instance", "item",
    "key", "label", "left", "length", "level", "limit", "line", "lineno", "link", "loader", "locale", "lock",
    "logger", "loop", "master", "member", "message", "method", "mode", "module", "month", "msg", "name",
    "namespace", "node", "num", "number", "obj", "offset", "opt", "option", "options", "order", "orig", "other",
    "output", "pair", "param", "parent", "parser", "part", "path", "pattern", "pid", "pipe", "platform", "point",
    "policy", "port", "pos", "position", "prefix", "process", "proto", "protocol", "queue", "reader", "request",
    "resp", "response", "result", "right", "root", "row", "screen", "script", "section", "separator", "server",
    "signal", "signature", "size", "sock", "socket", "source", "spec", "src", "stack", "start", "state",
    "status", "stream", "string", "table", "tag", "tail", "target", "task", "temp", "text", "thread", "timeout",
    "title", "token", "top", "tree", "url", "user", "val", "value", "values", "var", "version", "widget",
    "width", "word", "writer", "year", "total", "amount", "weight", "scale", "factor", "rate", "price", "speed",
    "radius", "depth", "height", "ratio", "delta", "step", "shape", "mask", "matrix", "vector", "table",
)
FUNCTION_WORDS: tuple[str, ...] = (
    "area", "scale", "combine", "compute", "total", "merge", "apply", "mix", "measure", "product", "blend",
    "join", "adjust", "weigh", "fold", "reduce", "pack", "mult", "shift", "span",
)
OPS: tuple[str, ...] = ("*", "+", "-", "/")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# template -> (text with {f} {a} {b} {c} {op}, the parameter that is the answer, the distractor parameter)
TEMPLATES: dict[str, tuple[str, str, str]] = {
    "two_args": ("def {f}({a}, {b}):\n    return {a} {op}", "b", "a"),
    "swapped": ("def {f}({a}, {b}):\n    return {b} {op}", "a", "b"),
    "three_args": ("def {f}({a}, {b}, {c}):\n    return {a} {op} {b} {op}", "c", "b"),
}


def name_split(name: str) -> Split:
    """A stable, seed-free split of name words: about a quarter are held out for evaluation."""
    return "heldout" if zlib.crc32(name.encode()) % 4 == 0 else "train"


def is_single_token(tokenizer, name: str) -> bool:
    """True when ``name`` and `` name`` are each one token (so it can fill a parameter slot anywhere)."""
    return all(len(tokenizer(s, add_special_tokens=False)["input_ids"]) == 1 for s in (name, " " + name))


def names_for(tokenizer, split: Split, words: tuple[str, ...] = NAME_WORDS) -> list[str]:
    """The single-token names of ``split`` under ``tokenizer``, sorted and de-duplicated."""
    return sorted({w for w in words if name_split(w) == split and is_single_token(tokenizer, w)})


@dataclass(frozen=True)
class CopyPair:
    """One clean/corrupted prompt pair. ``answer``/``wrong`` are the clean prompt's correct and distractor
    next tokens (with their leading space); the corrupted prompt renames every parameter, so neither occurs in it;
    ``corrupted_answer`` is what the corrupted prompt should be completed with."""

    clean: str
    corrupted: str
    answer: str
    wrong: str
    corrupted_answer: str
    template: str


def _fill(template: str, f: str, names: list[str], op: str) -> tuple[str, str, str]:
    text, ans, wrong = TEMPLATES[template]
    slots = dict(zip("abc", names))
    return text.format(f=f, op=op, **slots), " " + slots[ans], " " + slots[wrong]


def cooccurring_names(texts: Iterable[str], names: Iterable[str]) -> set[frozenset[str]]:
    """Every pair of ``names`` that appears as identifiers on one line of ``texts``: pass the training corpus to
    ``copy_task_pairs(avoid=...)`` so the task's clean prompts pair only names the model never saw together."""
    wanted = set(names)
    pairs: set[frozenset[str]] = set()
    for text in texts:
        for line in text.splitlines():
            present = sorted(set(_IDENT.findall(line)) & wanted)
            pairs |= {frozenset((a, b)) for i, a in enumerate(present) for b in present[i + 1 :]}
    return pairs


#: Pairs one call draws at most (each is checked by tokenizing it).
MAX_COPY_PAIRS = 100_000


def copy_task_pairs(tokenizer, n: int = 100, *, template: TemplateName = "two_args", split: Split = "heldout",
                    seed: int = 0, avoid: Collection[frozenset[str]] = ()) -> list[CopyPair]:
    """``n`` seeded prompt pairs of ``template`` whose names all come from ``split``; with ``avoid``
    (``cooccurring_names`` of a training corpus) no two names of a clean prompt form an avoided pair.

    Every pair is checked: the clean and corrupted prompts tokenize to the same length and each answer is one
    token; a tokenizer for which too few names are single tokens gets an InvalidInput saying so.
    """
    if not isinstance(template, str) or template not in TEMPLATES:
        raise InvalidInput(f"Unknown copy template {str(template)[:40]!r}.", f"Use one of {sorted(TEMPLATES)}.")
    if not isinstance(split, str) or split not in get_args(Split):
        raise InvalidInput(f"Unknown name split {str(split)[:40]!r}.", f"Use one of {', '.join(get_args(Split))}.")
    n = count(n, "The number of copy pairs", low=1, high=MAX_COPY_PAIRS)
    seed = seed_value(seed)
    names = names_for(tokenizer, split)
    k = sum("{" + slot + "}" in TEMPLATES[template][0] for slot in "abc")  # parameter slots
    if len(names) < 2 * k:
        raise InvalidInput(f"Only {len(names)} {split} names are single tokens under this tokenizer; "
                           f"the {template} task needs at least {2 * k}.")
    rng = random.Random(f"{seed}:{template}:{split}")
    pairs = []
    for _ in range(n):
        f, op = rng.choice(FUNCTION_WORDS), rng.choice(OPS)
        for _ in range(1000):
            picked = rng.sample(names, 2 * k)
            if not any(frozenset((a, b)) in avoid for i, a in enumerate(picked[:k]) for b in picked[i + 1 : k]):
                break
        else:
            raise InvalidInput(f"Almost every pair of {split} names co-occurs in the avoided pairs; the {template} "
                               "task cannot draw names that never co-occurred.")
        clean, answer, wrong = _fill(template, f, picked[:k], op)
        corrupted, corrupted_answer, _ = _fill(template, f, picked[k:], op)
        lc, lx = (len(tokenizer(s, add_special_tokens=False)["input_ids"]) for s in (clean, corrupted))
        if lc != lx:
            raise InvalidInput(f"Copy pair does not align: {clean!r} is {lc} tokens, {corrupted!r} is {lx}.")
        pairs.append(CopyPair(clean, corrupted, answer, wrong, corrupted_answer, template))
    return pairs


def repeated_text_tokens(handle: Model, texts: list[str], seq_len: int = 50) -> torch.Tensor:
    """[n, 1 + 2 * seq_len] rows of BOS + A + A where A is ``seq_len`` tokens of natural text: the first
    ``seq_len`` tokens of each text that has that many (shorter texts are skipped)."""
    bos = handle.bos_token_id if handle.bos_token_id is not None else 0
    rows = []
    for text in texts:
        ids = handle.tokenizer(text, add_special_tokens=False)["input_ids"][:seq_len]
        if len(ids) == seq_len:
            rows.append([bos] + ids + ids)
    if not rows:
        raise InvalidInput(f"No text is {seq_len} tokens long; give longer texts or a smaller seq_len.")
    return torch.tensor(rows)


def vocab_names(tokenizer, split: Split) -> list[str]:
    """Every lowercase word of 3-12 letters that is one token both bare and after a space under ``tokenizer``
    (not a Python keyword), in ``split``: a much wider pool than NAME_WORDS, so a model trained on it learns to
    copy whatever name a function declares rather than a fixed set of names. Sorted."""
    words = set()
    for tid in range(len(tokenizer)):
        text = tokenizer.decode([tid])
        if re.fullmatch(r" [a-z]{3,12}", text) and not keyword.iskeyword(text[1:]):
            words.add(text[1:])
    return sorted(w for w in words if name_split(w) == split and is_single_token(tokenizer, w))
