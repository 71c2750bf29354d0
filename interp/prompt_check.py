"""Does a prompt fit a model's vocabulary and context? Checks that only tokenize (no forward pass).

Word-level models (the attention-only toys read ``t1``..``t999``, othello-gpt reads moves ``A1``..``H8``, grokking
models read numbers and ``=``) map every word they do not know to one special token, so an English prompt
silently becomes ``<bos> <bos> ...``. :func:`check_prompt` counts such tokens and says what the model reads;
:func:`example_prompts` gives prompts that fit each kind; :func:`truncate_to_fit` cuts an over-long prompt to the
model's context.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from transformers import AutoTokenizer

from interp.errors import InvalidInput
from interp.model import Model

VocabKind = Literal["t-tokens", "othello", "numbers", "code", "text"]

#: What each kind of model reads, in words (for messages).
KIND_READS: dict[VocabKind, str] = {
    "t-tokens": "word tokens t1 ... t999 separated by spaces (e.g. 't5 t17 t3')",
    "othello": "Othello moves A1 ... H8 separated by spaces (e.g. 'F5 D6 C3')",
    "numbers": "numbers and '=' separated by spaces (e.g. '3 5 =')",
    "code": "text (it was trained on Python code)",
    "text": "text",
}
#: An opening that is legal from the standard start (checked against tasks.othello in the tests).
OTHELLO_OPENING = "F5 D6 C3 D3 C4 F4 F6 F3 E6 E7 D7 C6"


def vocab_kind(tokenizer: Any, name: str = "") -> VocabKind:
    """Which kind of vocabulary a tokenizer has; ``name`` (model name or path) tells code models from text."""
    vocab = _vocab_keys(tokenizer)
    if len(vocab) <= 70 and {"A1", "F5", "H8"} <= vocab:
        return "othello"
    if {"t1", "t2", "t3"} <= vocab and len(vocab) <= 5000:
        return "t-tokens"
    if {"0", "1", "2", "="} <= vocab and all(v.isdigit() or not v.isalnum() for v in vocab) and len(vocab) <= 5000:
        return "numbers"
    return "code" if re.search(r"stdlib|code|python", name, re.I) else "text"


def _vocab_keys(tokenizer: Any) -> frozenset[str]:
    return _vocab_cached(id(tokenizer), tokenizer)


@lru_cache(maxsize=16)
def _vocab_cached(_key: int, tokenizer: Any) -> frozenset[str]:
    try:
        return frozenset(tokenizer.get_vocab())
    except Exception:  # noqa: BLE001 - a tokenizer without get_vocab reads as plain text
        return frozenset()


def kind_of(handle: Model) -> VocabKind:
    return vocab_kind(handle.tokenizer, f"{handle.info.name} {handle.info.path or ''}")


def kind_of_model_dir(path: str | Path) -> VocabKind | None:
    """The vocabulary kind of a model directory from its tokenizer alone (None when it has no tokenizer)."""
    p = Path(path)
    if not (p / "tokenizer.json").is_file() and not (p / "vocab.json").is_file():
        return None
    try:

        return vocab_kind(AutoTokenizer.from_pretrained(str(p)), str(p))
    except Exception:  # noqa: BLE001 - unreadable tokenizer: unknown kind
        return None


def example_prompts(handle: Model) -> dict[str, str]:
    """Prompts that fit this model's vocabulary, label -> prompt (the first is the page default)."""
    kind = kind_of(handle)
    if kind == "t-tokens":
        seg = "t5 t17 t3 t42 t8 t99 t23"
        return {"a random segment repeated (induction)": f"{seg} {seg}",
                "counting tokens": " ".join(f"t{i}" for i in range(1, 21))}
    if kind == "othello":
        return {"an opening (12 moves)": OTHELLO_OPENING, "the first three moves": "F5 D6 C3"}
    if kind == "numbers":
        return {"3 + 5 (mod p)": "3 5 =", "17 + 42 (mod p)": "17 42 ="}
    if kind == "code":
        return {"a Python function": "import os\n\ndef add(a, b):\n    return a + b\n",
                "a repeated line (induction)": "x = compute(a, b)\ny = 2\nx = compute(a, b)\n"}
    return {"a repeated sentence (induction)": "The cat sat on the mat. The cat sat on the mat.",
            "a short story": "Mary and John went to the store. John gave a drink to"}


@dataclass(frozen=True)
class PromptCheck:
    """How a prompt tokenizes for one model: length, special/unknown tokens, and a message when it misfits."""
    n_tokens: int  # including the BOS the workbench prepends
    n_ctx: int
    special_positions: tuple[int, ...]  # positions (after BOS) that became special or unknown tokens
    kind: VocabKind
    model: str
    n_bos: int = 1  # 1 when the workbench prepends BOS for this model, else 0 (grokking's "a b =")

    @property
    def too_long(self) -> bool:
        return self.n_tokens > self.n_ctx

    @property
    def vocab_warning(self) -> str | None:
        """A sentence saying how much of the prompt the model does not read, or None when it all fits."""
        n = len(self.special_positions)
        if not n:
            return None
        total = max(1, self.n_tokens - self.n_bos)
        return (f"{n} of the prompt's {total} tokens are special or unknown to {self.model} (shown as its "
                f"padding/BOS token), so the model sees almost nothing of them. {self.model} reads "
                f"{KIND_READS[self.kind]}; try one of its example prompts.")

    @property
    def length_message(self) -> str | None:
        if not self.too_long:
            return None
        return (f"The prompt is {self.n_tokens} tokens long, but {self.model} reads at most {self.n_ctx}. "
                f"Shorten it, or keep only its first {self.n_ctx} tokens.")


def _ids(handle: Model, text: str) -> list[int]:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("The prompt is empty.", "Type some text to analyse.")
    return list(handle.tokenizer(text, add_special_tokens=False)["input_ids"])


def check_prompt(handle: Model, text: str) -> PromptCheck:
    """Tokenize ``text`` (no forward pass) and report its length and the tokens the model does not know."""
    ids = _ids(handle, text)
    tok = handle.tokenizer
    special = set(getattr(tok, "all_special_ids", []) or [])
    if tok.unk_token_id is not None:
        special.add(tok.unk_token_id)
    bos = 1 if handle.bos_token_id is not None else 0
    pieces = _pieces(tok, text, len(ids))
    positions = tuple(i + bos for i, t in enumerate(ids) if t in special and not _literal(tok, t, pieces[i]))
    return PromptCheck(n_tokens=len(ids) + bos, n_ctx=handle.info.n_ctx, special_positions=positions,
                       kind=kind_of(handle), model=handle.info.name, n_bos=bos)


def is_unknown(tokenizer: Any, text: str, token_id: int) -> bool:
    """Whether ``token_id`` is the tokenizer's unknown-token id standing in for ``text`` that is not that token
    itself (a word-level vocabulary maps every word it lacks to it: ``"cat"`` -> ``"="`` for grokking-p113)."""
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None or int(token_id) != int(unk):
        return False
    return text.strip() != str(getattr(tokenizer, "unk_token", "") or "").strip()


def refuse_unknown(handle: Model, text: str, token_id: int, what: str) -> int:
    """``token_id`` when it is a real token for ``text``; InvalidInput when the vocabulary cannot express ``text``
    (never a silently substituted unknown token)."""
    if is_unknown(handle.tokenizer, text, token_id):
        raise InvalidInput(f"The {what} {text[:40]!r} is not in {handle.info.name}'s vocabulary: it would become the "
                           f"unknown token {str(handle.tokenizer.unk_token)!r}.",
                           f"{handle.info.name} reads {KIND_READS[kind_of(handle)]}.")
    return int(token_id)


def _pieces(tok: Any, text: str, n: int) -> list[str | None]:
    """The text each token came from (fast tokenizers' offsets), or None per token when unknown."""
    try:
        offsets = tok(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    except Exception:  # noqa: BLE001 - a slow tokenizer has no offsets: count every special id
        return [None] * n
    return [text[a:b] for a, b in offsets] if len(offsets) == n else [None] * n


def _literal(tok: Any, token_id: int, piece: str | None) -> bool:
    """Whether the special/unknown ``token_id`` was written as itself (grokking's '=' is its unknown token and a
    real one; '<|endoftext|>' typed into a GPT-2 prompt is that token), not standing in for an unknown word."""
    if piece is None or not piece.strip():
        return False
    return piece.strip() == str(tok.convert_ids_to_tokens(int(token_id))).strip()


def check_texts(handle: Model, texts: list[str], sample: int = 200) -> str | None:
    """The vocabulary warning for a dataset: None if its first ``sample`` texts fit, else one sentence."""
    tok = handle.tokenizer
    special = set(getattr(tok, "all_special_ids", []) or [])
    if tok.unk_token_id is not None:
        special.add(tok.unk_token_id)
    n_tok = n_bad = 0
    for t in texts[:sample]:
        if not isinstance(t, str) or not t.strip():
            continue
        ids = tok(t, add_special_tokens=False)["input_ids"]
        n_tok += len(ids)
        n_bad += sum(1 for i in ids if i in special)
    if not n_tok or n_bad / n_tok < 0.2:
        return None
    kind = kind_of(handle)
    return (f"{n_bad / n_tok:.0%} of the dataset's tokens are special or unknown to {handle.info.name}: it reads "
            f"{KIND_READS[kind]}, so a probe on these texts reads mostly padding. Choose a model that fits the data.")


def truncate_to_fit(handle: Model, text: str) -> str:
    """The longest prefix of ``text`` (cut at a token boundary) that fits the model's context with its BOS."""
    ids = _ids(handle, text)
    room = handle.info.n_ctx - (1 if handle.bos_token_id is not None else 0)
    if len(ids) <= room:
        return text
    keep = room
    while keep > 0:
        cut = handle.tokenizer.decode(ids[:keep])
        if cut.strip() and len(_ids(handle, cut)) <= room:
            return cut
        keep -= 1
    raise InvalidInput(f"No prefix of the prompt fits {handle.info.name}'s {handle.info.n_ctx}-token context.")
