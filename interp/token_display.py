"""How each token of a prompt reads on screen: its exact bytes, and byte-level pieces of one character merged.

A byte-level BPE (GPT-2's) can split one UTF-8 character over several tokens ('é' -> 'Ã' '©'); decoding such a
token alone gives U+FFFD ("�"). :func:`token_pieces` decodes the bytes of consecutive tokens together, so a token
that holds part of a character is shown as its bytes (``⟨c3⟩``) with the merged character named alongside.
Whitespace is kept exactly (the renderer makes it visible); special tokens (BOS, pad, unknown) are flagged.
Only the tokenizer is used, never the model.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

#: A run of tokens whose bytes do not decode is given up on after this many tokens (a UTF-8 character has <= 4).
MAX_CHAR_TOKENS = 4


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's printable-character -> byte table (the inverse of its ``bytes_to_unicode``)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


@dataclass(frozen=True)
class TokenPiece:
    """One position: ``text`` is what to draw (exact whitespace; ``⟨e2 82⟩`` for bytes of a split character)."""

    index: int
    token_id: int
    text: str
    special: bool = False
    partial: bool = False  # holds bytes of a character that continues in a neighbouring token
    merged: str = ""  # for partial tokens: the text the group of tokens decodes to together
    group: tuple[int, int] = (0, 0)  # for partial tokens: first and last position of that group

    @property
    def title(self) -> str:
        """Hover text: position, id, the text as a Python literal, and the merged character if split."""
        base = f"{self.index}: {self.text!r} (id {self.token_id})"
        if self.special:
            return base + " · special token"
        if self.partial:
            return base + f" · bytes of {self.merged!r} (tokens {self.group[0]}-{self.group[1]} together)"
        return base


#: How whitespace reads in plain text (tables, tick labels): the same marks as the token strip.
VISIBLE_WS = {" ": "·", "\t": "→", "\n": "↵", "\r": "␍"}


def visible(text: str) -> str:
    """A token's text with its whitespace drawn (``·`` space, ``→`` tab, ``↵`` newline), so a newline + indent
    token reads ``↵····`` instead of a blank cell; an empty token reads ``∅``."""
    return "".join(VISIBLE_WS.get(ch, ch) for ch in text) or "∅"


def visible_tokens(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """:func:`visible` text of every token of ``ids`` (split characters as their bytes, see :func:`token_pieces`)."""
    return [visible(p.text) for p in token_pieces(tokenizer, ids)]


def _is_byte_level(tokenizer: Any) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    decoder = getattr(backend, "decoder", None) if backend is not None else None
    return decoder is not None and type(decoder).__name__ == "ByteLevel"


def token_bytes(tokenizer: Any, ids: Sequence[int]) -> list[bytes | None]:
    """Each token's exact bytes where the tokenizer is byte-level (GPT-2 style), else None per token."""
    if not _is_byte_level(tokenizer):
        return [None] * len(ids)
    table = _byte_decoder()
    out: list[bytes | None] = []
    for tok in tokenizer.convert_ids_to_tokens([int(i) for i in ids]):
        out.append(bytes(table[c] for c in tok) if tok is not None and all(c in table for c in tok) else None)
    return out


def _hex(b: bytes) -> str:
    return "⟨" + " ".join(f"{x:02x}" for x in b) + "⟩"


def _render(b: bytes) -> str:
    """The decodable text of ``b`` with every undecodable byte run shown as ``⟨hex⟩``."""
    out, i = [], 0
    while i < len(b):
        for j in range(min(len(b), i + 4), i, -1):
            try:
                out.append(b[i:j].decode("utf-8"))
                i = j
                break
            except UnicodeDecodeError:
                continue
        else:
            k = i + 1
            while k < len(b) and (b[k] & 0xC0) == 0x80:  # continuation bytes of the same broken character
                k += 1
            out.append(_hex(b[i:k]))
            i = k
    return "".join(out)


def token_pieces(tokenizer: Any, ids: Sequence[int]) -> list[TokenPiece]:
    """One :class:`TokenPiece` per token id: exact text, specials flagged, split characters shown as bytes."""
    ids = [int(i) for i in ids]
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    raw = token_bytes(tokenizer, ids)
    pieces: list[TokenPiece | None] = [None] * len(ids)
    i = 0
    while i < len(ids):
        b = raw[i]
        if ids[i] in special or b is None:
            pieces[i] = TokenPiece(i, ids[i], tokenizer.decode([ids[i]]), special=ids[i] in special)
            i += 1
            continue
        try:
            pieces[i] = TokenPiece(i, ids[i], b.decode("utf-8"))
            i += 1
            continue
        except UnicodeDecodeError:
            pass
        # find the shortest run i..j whose bytes decode together
        j, buf, merged = i, b, None
        while j + 1 < len(ids) and j - i + 1 < MAX_CHAR_TOKENS and raw[j + 1] is not None and ids[j + 1] not in special:
            j += 1
            buf += raw[j]  # type: ignore[operator]
            try:
                merged = buf.decode("utf-8")
                break
            except UnicodeDecodeError:
                continue
        if merged is None:  # never completes (cut prompt): show this token's bytes alone
            pieces[i] = TokenPiece(i, ids[i], _render(b), partial=True, merged=b.decode("utf-8", "replace"),
                                   group=(i, i))
            i += 1
            continue
        for k in range(i, j + 1):
            pieces[k] = TokenPiece(k, ids[k], _render(raw[k]), partial=True, merged=merged, group=(i, j))  # type: ignore[arg-type]
        i = j + 1
    return [p for p in pieces if p is not None]
