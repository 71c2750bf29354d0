"""Text every machine has offline: the Python standard library's source, split into train/held-out by file."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from interp.errors import InvalidInput

SKIP_PARTS = {"site-packages", "test", "tests", "idlelib", "lib2to3", "__pycache__"}


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
    """Files under ``root`` with one of ``suffixes``, sorted (deterministic), skipping tests and packages."""
    return [p for p in sorted(root.rglob("*")) if p.suffix in suffixes and p.is_file()
            and not SKIP_PARTS.intersection(p.relative_to(root).parts)]


def is_heldout(name: str, fraction: float) -> bool:
    """A stable, seed-free split by file name (the same files are held out on every machine)."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction


def load_corpus(data_dir: str = "", *, heldout_fraction: float = 0.03, max_chars: int = 0) -> Corpus:
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
