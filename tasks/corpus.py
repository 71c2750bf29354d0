"""Text every machine has offline: the Python standard library's source, split into train/held-out by file.

The one corpus reader: :func:`load_corpus` (whole corpora for language-model training) and :func:`stdlib_texts`
(a sample of one split, for SAE data and the app) walk the same files in the same order with the same split.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from interp.errors import InvalidInput

SKIP_PARTS = {"site-packages", "test", "tests", "idlelib", "lib2to3", "__pycache__"}
#: Share of files held out (chosen by a stable hash of the file's path).
HELDOUT_FRACTION = 0.03


@dataclass
class Corpus:
    train: list[str]  # documents (one per file)
    heldout: list[str]
    source: str  # where the text came from, for model cards and metadata
    n_files: int
    n_chars: int


def stdlib_dir() -> Path:
    return Path(os.__file__).resolve().parent


def text_files(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files under ``root`` with one of ``suffixes``, sorted by path (deterministic), never descending into tests,
    installed packages or caches (pruned while walking, so a small sample of the stdlib costs milliseconds)."""
    found = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x not in SKIP_PARTS]
        found += [Path(d) / f for f in files if Path(f).suffix in suffixes]
    return sorted(p for p in found if p.is_file())


def is_heldout(name: str, fraction: float) -> bool:
    """A stable, seed-free split by file name (the same files are held out on every machine)."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction


def load_corpus(data_dir: str = "", *, heldout_fraction: float = HELDOUT_FRACTION, max_chars: int = 0) -> Corpus:
    """The stdlib's .py files (default) or every .py/.txt/.md file of ``data_dir``; undecodable files are skipped."""
    root = Path(data_dir).expanduser() if data_dir else stdlib_dir()
    if not root.is_dir():
        raise InvalidInput(f"Text directory {root} does not exist.")
    files = text_files(root, (".py",) if not data_dir else (".py", ".txt", ".md", ".rst"))
    train: list[str] = []
    heldout: list[str] = []
    total = 0
    for p in files:
        try:
            text = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if not text.strip():
            continue
        (heldout if is_heldout(str(p.relative_to(root)), heldout_fraction) else train).append(text)
        total += len(text)
        if max_chars and total >= max_chars and heldout:
            break
    if not train or not heldout:
        raise InvalidInput(f"{root} holds too little text ({len(train)} train / {len(heldout)} held-out files).",
                           "Give a directory with more .py/.txt/.md files.")
    where = f"Python {os.sys.version.split()[0]} standard library" if not data_dir else str(root)
    return Corpus(train, heldout, f"{where}"
                  f" ({len(train) + len(heldout)} files)", len(train) + len(heldout), total)


def stdlib_texts(*, heldout: bool, max_chars: int = 0) -> list[str]:
    """The stdlib's train (or held-out) files, with :func:`load_corpus`'s split and order, read until ``max_chars``
    (0: all)."""
    root, docs, chars = stdlib_dir(), [], 0
    for p in text_files(root, (".py",)):
        if is_heldout(str(p.relative_to(root)), HELDOUT_FRACTION) != heldout:
            continue
        try:
            text = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if text.strip():
            docs.append(text)
            chars += len(text)
        if max_chars and chars >= max_chars:
            break
    return docs


def encode_docs(tokenizer, docs: list[str]) -> np.ndarray:
    """All documents as one uint16 token stream, separated by <|endoftext|>."""
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for enc in tokenizer(docs, add_special_tokens=False)["input_ids"]:
        ids.extend(enc)
        ids.append(eos)
    return np.asarray(ids, dtype=np.uint16 if len(tokenizer) < 65536 else np.int32)


def sample_windows(tokens: np.ndarray, n: int, seq_len: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` random windows of ``seq_len`` tokens from a 1-D array -> [n, seq_len] int64."""
    starts = torch.randint(0, len(tokens) - seq_len, (n,), generator=gen).numpy()
    return torch.from_numpy(np.stack([tokens[s : s + seq_len] for s in starts]).astype(np.int64))
