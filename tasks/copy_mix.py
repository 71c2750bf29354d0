"""Training batches that reward in-context copying, mixed with plain windows of the corpus.

Plain next-token training on the stdlib gives a small model little reason to copy what it has just read (the
shipped ``stdlib-gpt2`` has no induction head). This mixer replaces a share of each batch with rows where
copying pays: ``copy`` rows are corpus windows in which an earlier span recurs later (natural code, so the
induction heads it grows work on code); ``functions`` rows are synthetic but ordinary Python functions whose
parameters are used in their bodies (only ``tasks.copy`` *train* names, so the held-out argument-copy
task's names never occur in them); ``random`` rows are random tokens repeated (what the head detectors score);
``tiled`` rows are one block of corpus code repeated to fill the row: after its first period every token is a copy,
and since common tokens (``.``, newlines) recur inside the block, matching one token is not enough to find where
to copy from.
Every row is drawn from the step's generator, so a resumed run sees the same batches.
"""
from __future__ import annotations

import functools
import keyword
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import get_args

import numpy as np
import torch

from interp.errors import InvalidInput
from tasks.copy import FUNCTION_WORDS, NAME_WORDS, OPS, NameSource, cooccurring_names, names_for, vocab_names
from tasks.corpus import encode_docs, load_corpus, sample_windows

ROW_KINDS = ("plain", "copy", "functions", "random", "tiled")

VERBS = ("get", "make", "compute", "build", "check", "update", "apply", "combine", "scale", "merge", "find",
         "load", "parse", "format", "set", "add", "split", "join", "read", "write")

# Synthetic functions: {f} function name, {C} class name, {a}..{d} distinct parameter names, {op}/{op2} operators.
FUNCTION_TEMPLATES: tuple[str, ...] = (
    "def {f}({a}, {b}):\n    return {a} {op} {b}\n",
    "def {f}({a}, {b}):\n    return {b} {op} {a}\n",
    "def {f}({a}, {b}, {c}):\n    return {a} {op} {b} {op2} {c}\n",
    "def {f}({a}, {b}, {c}):\n    return {c} {op} {a} {op2} {b}\n",
    "def {f}({a}, {b}):\n    {c} = {a} {op} {b}\n    return {c}\n",
    "def {f}({a}, {b}):\n    if {a} > {b}:\n        return {a}\n    return {b}\n",
    "def {f}({a}, {b}=None):\n    if {b} is None:\n        {b} = {a}\n    return {b}\n",
    "def {f}({a}, {b}):\n    \"\"\"Return {a} {op} {b}.\"\"\"\n    return {a} {op} {b}\n",
    "def {f}(self, {a}, {b}):\n    self.{a} = {a}\n    self.{b} = {b}\n",
    "class {C}:\n    def __init__(self, {a}, {b}, {c}):\n        self.{a} = {a}\n        self.{b} = {b}\n"
    "        self.{c} = {c}\n",
    "def {f}({a}, {b}, {c}):\n    {d} = {a} {op} {c}\n    return {d} {op2} {b}\n",
    "def {f}({a}, {b}):\n    for {c} in {a}:\n        {b}.append({c})\n    return {b}\n",
    "{d} = {f}({a}, {b})\n{c} = {d} {op} {a}\n",
    "def {f}({a}, {b}):\n    return {f}_impl({a}={a}, {b}={b})\n",
)


@dataclass(frozen=True)
class CopyMix:
    """Shares of each batch by row kind; the rest is plain corpus windows."""
    copy_share: float = 0.0  # corpus windows in which an earlier span of span_min..span_max tokens recurs later
    function_share: float = 0.0  # windows of synthetic functions that use their parameters
    random_share: float = 0.0  # random tokens (period random_min..random_max) repeated to fill the row
    span_min: int = 8
    span_max: int = 64
    random_min: int = 10
    random_max: int = 60
    tiled_share: float = 0.0  # one corpus block (period tile_min..tile_max) repeated to fill the row
    tile_min: int = 16
    tile_max: int = 128

    def __post_init__(self) -> None:
        shares = tuple(self.shares.values())
        if min(shares) < 0 or sum(shares) > 1:
            raise InvalidInput(f"copy_share, function_share, random_share and tiled_share must be >= 0 and sum to "
                               f"<= 1, got {shares}.")
        if not 1 <= self.tile_min <= self.tile_max:
            raise InvalidInput(f"tile_min and tile_max must satisfy 1 <= tile_min <= tile_max, got "
                               f"{self.tile_min}, {self.tile_max}.")

    @property
    def shares(self) -> dict[str, float]:
        """Share of each row kind but plain (which gets the rest)."""
        return {"copy": self.copy_share, "functions": self.function_share, "random": self.random_share,
                "tiled": self.tiled_share}

    @property
    def active(self) -> bool:
        return sum(self.shares.values()) > 0

    def counts(self, batch_size: int) -> dict[str, int]:
        """Rows of each kind in a batch (largest-remainder rounding of the shares; plain gets the rest)."""
        shares = self.shares
        exact = {"plain": (1 - sum(shares.values())) * batch_size, **{k: v * batch_size for k, v in shares.items()}}
        out = {k: int(v + 1e-9) for k, v in exact.items()}
        for k in sorted(ROW_KINDS, key=lambda k: out[k] - exact[k])[: batch_size - sum(out.values())]:
            out[k] += 1
        return out


def repeat_span(window: np.ndarray, span: int, source: int, insert: int) -> np.ndarray:
    """``window`` with ``window[source:source+span]`` inserted again at ``insert`` (>= source + span), truncated
    to the window's length: the span recurs later, with the text that followed it before moving on."""
    if not source + span <= insert <= len(window) - span:
        raise InvalidInput(f"repeat_span needs source + span <= insert <= len - span, got {source}, {span}, {insert}.")
    return np.concatenate([window[:insert], window[source : source + span], window[insert:]])[: len(window)]


def copy_row(tokens: np.ndarray, seq_len: int, mix: CopyMix, rng: np.random.Generator) -> np.ndarray:
    """One corpus window with an earlier span repeated later (positions drawn from ``rng``)."""
    start = int(rng.integers(0, len(tokens) - seq_len))
    window = tokens[start : start + seq_len]
    span = int(rng.integers(mix.span_min, min(mix.span_max, seq_len // 3) + 1))
    source = int(rng.integers(0, seq_len - 2 * span + 1))
    insert = int(rng.integers(source + span, seq_len - span + 1))
    return repeat_span(window, span, source, insert)


def random_row(seq_len: int, vocab: int, mix: CopyMix, rng: np.random.Generator) -> np.ndarray:
    """Random tokens (never id 0, the BOS/EOS id) of a random period, tiled to ``seq_len``."""
    period = int(rng.integers(mix.random_min, mix.random_max + 1))
    return _tile(rng.integers(1, vocab, period), seq_len)


def tiled_row(tokens: np.ndarray, seq_len: int, mix: CopyMix, rng: np.random.Generator) -> np.ndarray:
    """One block of corpus tokens (period drawn from tile_min..tile_max, at most half the row) tiled to
    ``seq_len``: natural code repeated, the rows ``probes.skills.repeated_code_scores`` scores heads on."""
    high = max(1, min(mix.tile_max, seq_len // 2))
    period = int(rng.integers(min(mix.tile_min, high), high + 1))
    start = int(rng.integers(0, len(tokens) - period))
    return _tile(tokens[start : start + period], seq_len)


def _tile(block: np.ndarray, seq_len: int) -> np.ndarray:
    """``block`` repeated and cut to ``seq_len`` tokens."""
    return np.tile(block, seq_len // len(block) + 1)[:seq_len]


def _distinct(rng: random.Random, names: list[str], k: int) -> list[str]:
    """``k`` distinct names drawn from ``names`` (which may repeat a name to weight it)."""
    picked: dict[str, None] = {}
    while len(picked) < k:
        picked[rng.choice(names)] = None
    return list(picked)


def synthetic_functions(names: list[str], n: int, *, seed: int = 0, solo: list[str] | tuple[str, ...] = (),
                        solo_rate: float = 0.5) -> list[str]:
    """``n`` seeded modules of 4..12 synthetic functions each, parameters drawn from ``names`` (distinct per
    function). With ``solo`` names, a share ``solo_rate`` of modules has ONE parameter of one function renamed to
    one of them: a solo name is seen as a parameter, but never in a module with another solo name, so any two of
    them never co-occur. Deterministic for a given ``names``, ``solo`` and ``seed``."""
    if len(set(names)) < 4:
        raise InvalidInput(f"Synthetic functions need at least 4 distinct parameter names, got {len(set(names))}.")
    if set(solo) & set(names):
        raise InvalidInput("Solo names must not also be ordinary parameter names (they would co-occur).")
    rng, solo_rng = random.Random(seed), random.Random(f"solo:{seed}")
    modules = []
    for _ in range(n):
        parts = []
        n_funcs = rng.randint(4, 12)
        solo_at = solo_rng.randrange(n_funcs) if solo and solo_rng.random() < solo_rate else -1
        for i in range(n_funcs):
            a, b, c, d = _distinct(rng, names, 4)
            noun = rng.choice(names)
            f = rng.choice([f"{rng.choice(VERBS)}_{noun}", rng.choice(FUNCTION_WORDS)])
            if i == solo_at:  # a and b are used by every template
                a, b = (solo_rng.choice(solo), b) if solo_rng.random() < 0.5 else (a, solo_rng.choice(solo))
            parts.append(rng.choice(FUNCTION_TEMPLATES).format(
                f=f, C=noun.capitalize(), a=a, b=b, c=c, d=d, op=rng.choice(OPS), op2=rng.choice(OPS)))
        modules.append("\n\n".join(parts))
    return modules


def heldout_token_ids(tokenizer) -> set[int]:
    """Token ids of every held-out name (bare and after a space): what no training name may contain."""
    words = set(names_for(tokenizer, "heldout")) | set(vocab_names(tokenizer, "heldout"))
    return {tokenizer(s, add_special_tokens=False)["input_ids"][0] for w in words for s in (w, " " + w)}


def open_names(tokenizer, n: int = 20_000, *, seed: int = 0) -> list[str]:
    """A name pool in which about a third of draws are train-split words (``vocab_names``, repeated in the list)
    and the rest ``n`` distinct identifiers: the vocabulary's other identifier-like tokens (``buf``, ``ec``) and
    two of them joined (``bufsize``, ``node_id``). No name contains a held-out name's token, bare or after a
    space. The pool is far too large to memorise, so a model trained on it has to copy the names a
    function declares (the ``"words"`` and ``"vocab"`` pools, 144 and 371 names, were learnt as sets)."""
    banned = heldout_token_ids(tokenizer)
    reserved = {"self", "cls", "None", "True", "False"}
    pieces = sorted({text for tid in range(len(tokenizer)) if tid not in banned
                     and re.fullmatch(r"[A-Za-z][A-Za-z0-9]{1,11}", text := tokenizer.decode([tid]))
                     and not keyword.iskeyword(text) and text not in reserved})
    if len(pieces) < 8:
        raise InvalidInput(f"Only {len(pieces)} identifier-like tokens in this vocabulary; open names need >= 8.")
    words = vocab_names(tokenizer, "train")
    rng = random.Random(f"open-names:{seed}")
    out: dict[str, None] = {}
    for _ in range(20 * n):
        if len(out) == n:
            break
        name = (rng.choice(pieces) if rng.random() < 0.3
                else rng.choice(pieces).lower() + rng.choice(["", "_"]) + rng.choice(pieces).lower())
        if name in out or keyword.iskeyword(name) or not name.isidentifier():
            continue
        ids = {i for s in (name, " " + name) for i in tokenizer(s, add_special_tokens=False)["input_ids"]}
        if not ids & banned and name not in words:
            out[name] = None
    # words repeated so that about a third of the parameters a function declares are real words
    return list(out) + words * max(1, round(len(out) / (2 * len(words))))


def function_tokens(tokenizer, n_modules: int = 4000, *, seed: int = 0, names: NameSource = "words") -> np.ndarray:
    """The synthetic-function corpus as one token stream, modules separated by EOS. ``names``: ``"words"``, the
    train split of ``tasks.copy.NAME_WORDS`` (144); ``"vocab"``, every train-split single-token word of
    the vocabulary (``tasks.copy.vocab_names``, 371 for stdlib-gpt2); ``"open"``, 20,000 identifiers of
    one or two vocabulary tokens (``open_names``). These three never write a held-out task name.
    ``"open_unpaired"``: the open pool, plus the held-out task's names as *solo* names (``synthetic_functions``),
    at most one per module: each is seen as a parameter, but no two of them are ever seen together, which is
    what the held-out task then pairs (its names never co-occurred in training)."""
    if names not in get_args(NameSource):
        raise InvalidInput(f"Unknown name pool {names!r}.", f"Use one of {list(get_args(NameSource))}.")
    pool = (names_for(tokenizer, "train") if names == "words" else vocab_names(tokenizer, "train")
            if names == "vocab" else open_names(tokenizer, seed=seed))
    solo = names_for(tokenizer, "heldout") if names == "open_unpaired" else ()
    return encode_docs(tokenizer, synthetic_functions(pool, n_modules, seed=seed, solo=solo))


@functools.lru_cache(maxsize=1)
def stdlib_name_pairs() -> frozenset[frozenset[str]]:
    """Every pair of ``tasks.copy.NAME_WORDS`` that shares a line of the stdlib training files (the bundled
    text models' corpus), read once per process: pass it as ``copy_task_pairs(avoid=...)`` so a clean prompt never
    pairs names the model read together."""
    return frozenset(cooccurring_names(load_corpus().train, NAME_WORDS))


def mixed_batch_fn(train_tokens: np.ndarray, functions: np.ndarray | None, mix: CopyMix, *, batch_size: int,
                   seq_len: int, vocab: int) -> Callable[[int, torch.Generator], torch.Tensor]:
    """A ``batch_fn(step, gen)`` for ``training.lm.train_causal_lm``: [batch_size, seq_len] int64 rows, in
    ROW_KINDS order, with ``mix.counts(batch_size)`` rows of each kind; deterministic given ``gen``."""
    counts = mix.counts(batch_size)
    if counts["functions"] and (functions is None or len(functions) <= seq_len):
        raise InvalidInput("function_share > 0 needs a synthetic-function token stream longer than seq_len.")

    def batch(step: int, gen: torch.Generator) -> torch.Tensor:
        plain = sample_windows(train_tokens, counts["plain"], seq_len, gen) if counts["plain"] else None
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=gen)))
        rows = [] if plain is None else [plain]
        if counts["copy"]:
            rows.append(torch.from_numpy(np.stack([copy_row(train_tokens, seq_len, mix, rng)
                                                   for _ in range(counts["copy"])]).astype(np.int64)))
        if counts["functions"]:
            rows.append(sample_windows(functions, counts["functions"], seq_len, gen))
        if counts["random"]:
            rows.append(torch.from_numpy(np.stack([random_row(seq_len, vocab, mix, rng)
                                                   for _ in range(counts["random"])]).astype(np.int64)))
        if counts["tiled"]:
            rows.append(torch.from_numpy(np.stack([tiled_row(train_tokens, seq_len, mix, rng)
                                                   for _ in range(counts["tiled"])]).astype(np.int64)))
        return torch.cat(rows)  # [batch_size, seq_len]

    return batch
