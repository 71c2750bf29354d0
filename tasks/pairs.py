"""Prompt pairs for activation patching: (clean, corrupted, answer, wrong answer), validated into token tensors.

Patching copies activations position by position from one run into the other, so a pair is usable only when
both prompts tokenize to the same number of tokens and the answers are single tokens (the metric reads one
next-token logit). :func:`encode_pairs` checks both and says, with the tokenizations, what to change.

Sources: free text (one pair per line, fields split on ``|``), CSV text (columns clean, corrupted, answer,
wrong), or generators that build token pairs directly (:func:`repeated_sequence_pairs`: repeated random
sequences with the first copy made fresh, or with the token before the answer's first occurrence replaced).
Parsers take text, never paths: reading files is the caller's job.
"""
from __future__ import annotations

import io
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd
import torch

from interp.errors import InvalidInput
from interp.model import Model
from interp.prompt_check import kind_of, refuse_unknown
from interp.tokens import tokenize
from interp.validate import count, prompt_text, seed_value
from tasks.copy import copy_task_pairs

RepeatCorruption = Literal["fresh", "prev_token"]  # first copy replaced by fresh tokens / one key token replaced
CSV_COLUMNS = ("clean", "corrupted", "answer", "wrong")
MAX_PAIRS = 100_000  # pairs in one batch (a generator or a list); more is a mistake, not a dataset


@dataclass(frozen=True)
class PromptPair:
    """One clean/corrupted pair; ``answer`` should win on the clean prompt, ``wrong`` on the corrupted one."""
    clean: str
    corrupted: str
    answer: str
    wrong: str | None = None


@dataclass
class PairBatch:
    """Validated pairs as tokens: equal length within each pair, right-padded across pairs."""
    clean: torch.Tensor  # [batch, pos] int64
    corrupted: torch.Tensor  # [batch, pos] int64
    answer: torch.Tensor  # [batch] token id the clean run should predict at the last real position
    wrong: torch.Tensor  # [batch] token id of the wrong answer (-1: none given)
    lengths: torch.Tensor  # [batch] real tokens per row (the answer is predicted at lengths - 1)
    clean_str: list[list[str]] = field(default_factory=list)
    corrupted_str: list[list[str]] = field(default_factory=list)
    answer_str: list[str] = field(default_factory=list)
    wrong_str: list[str] = field(default_factory=list)
    pairs: list[PromptPair] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.clean.shape[0])

    @property
    def answer_pos(self) -> torch.Tensor:  # [batch]
        return self.lengths - 1

    @property
    def same_length(self) -> bool:
        return bool((self.lengths == self.lengths[0]).all())

    @property
    def has_wrong(self) -> bool:
        return bool((self.wrong >= 0).all())

    def diff_positions(self, row: int = 0) -> list[int]:
        """Positions where the clean and corrupted tokens of pair ``row`` differ."""
        n = int(self.lengths[row])
        return [p for p in range(n) if int(self.clean[row, p]) != int(self.corrupted[row, p])]

    def alignment(self, row: int = 0) -> list[dict[str, object]]:
        """Per position: index, clean token, corrupted token, whether they differ (the UI's alignment table)."""
        n = int(self.lengths[row])
        cs = self.clean_str[row] if self.clean_str else [str(int(t)) for t in self.clean[row, :n]]
        rs = self.corrupted_str[row] if self.corrupted_str else [str(int(t)) for t in self.corrupted[row, :n]]
        return [{"pos": p, "clean": cs[p], "corrupted": rs[p], "differs": cs[p] != rs[p]} for p in range(n)]

    def select(self, rows: Sequence[int]) -> PairBatch:
        """The pairs ``rows`` as a new batch (trimmed to their longest row); InvalidInput for no rows or a row
        that does not exist."""
        if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence) and not hasattr(rows, "__iter__"):
            raise InvalidInput(f"Rows must be a list of pair indices, got {type(rows).__name__}.")
        rows = [count(r, "A pair index", low=0, high=len(self) - 1) for r in rows]
        if not rows:
            raise InvalidInput("No pairs selected.", "Select at least one pair.")
        idx = torch.tensor(list(rows), dtype=torch.long)
        n = int(self.lengths[idx].max())
        pick = list(rows)
        return PairBatch(self.clean[idx, :n], self.corrupted[idx, :n], self.answer[idx], self.wrong[idx],
                         self.lengths[idx], [self.clean_str[i] for i in pick] if self.clean_str else [],
                         [self.corrupted_str[i] for i in pick] if self.corrupted_str else [],
                         [self.answer_str[i] for i in pick] if self.answer_str else [],
                         [self.wrong_str[i] for i in pick] if self.wrong_str else [],
                         [self.pairs[i] for i in pick] if self.pairs else [])


# ----------------------------------------------------------------------------- parsing


def _field(text: str) -> str:
    """A text field: a JSON-quoted string is taken literally (keeps a leading space), anything else stripped."""
    s = text.strip()
    if len(s) >= 2 and s[0] == s[-1] == '"':
        try:
            return str(json.loads(s))
        except json.JSONDecodeError:
            pass
    return s


def pairs_from_text(text: str, sep: str = "|") -> list[PromptPair]:
    """One pair per non-empty line: ``clean | corrupted | answer | wrong`` (wrong optional).

    Write an answer in double quotes to keep its leading space: ``" height"`` (most BPE tokenizers start a
    word after a space with the space). Lines starting with ``#`` are comments.
    """
    pairs = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(sep)
        if len(parts) not in (3, 4):
            raise InvalidInput(f"Line {i} has {len(parts)} fields separated by {sep!r}; a pair needs 3 or 4: "
                               f"clean {sep} corrupted {sep} answer {sep} wrong answer.",
                               f"Line {i} reads: {line[:120]!r}")
        fields = [_field(p) for p in parts]
        pairs.append(PromptPair(fields[0], fields[1], fields[2], fields[3] if len(fields) == 4 else None))
    if not pairs:
        raise InvalidInput("No prompt pairs given.", f"Write one pair per line: clean {sep} corrupted {sep} "
                           f"answer {sep} wrong answer.")
    return pairs


def pairs_from_csv(text: str) -> list[PromptPair]:
    """Pairs from CSV text with a header naming ``clean, corrupted, answer`` and optionally ``wrong``.

    Cells are read verbatim (no whitespace stripping), so quote a cell to keep a leading space: ``" height"``.
    """
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise InvalidInput(f"The CSV could not be read ({str(e).splitlines()[0]}).",
                           "Give a header line clean,corrupted,answer,wrong and one pair per row.") from None
    return pairs_from_rows(df.to_dict("records"))


def pairs_from_rows(rows: Sequence[dict[str, object]]) -> list[PromptPair]:
    """Pairs from mappings with keys ``clean, corrupted, answer`` (and optionally ``wrong``)."""
    if not rows:
        raise InvalidInput("The table has no rows.", "Give one pair per row: clean, corrupted, answer, wrong.")
    cols = {str(k).strip().lower(): k for k in rows[0]}
    missing = [c for c in CSV_COLUMNS[:3] if c not in cols]
    if missing:
        raise InvalidInput(f"The table lacks the column(s) {', '.join(missing)}; it has {', '.join(map(str, cols))}.",
                           "Name the columns clean, corrupted, answer and (optionally) wrong.")
    pairs = []
    for i, row in enumerate(rows):
        vals = {c: ("" if row.get(cols[c]) is None else str(row.get(cols[c]))) for c in CSV_COLUMNS if c in cols}
        for c in CSV_COLUMNS[:3]:
            if not vals[c].strip():
                raise InvalidInput(f"Row {i + 1}: the {c} cell is empty.", "Fill every clean, corrupted and answer "
                                   "cell.")
        wrong = vals.get("wrong") or None
        pairs.append(PromptPair(vals["clean"], vals["corrupted"], vals["answer"], wrong))
    return pairs


# ----------------------------------------------------------------------------- validation


def _show(tokens: Sequence[str]) -> str:
    return "[" + ", ".join(repr(t) for t in tokens) + "]"


def single_token(handle: Model, text: str, what: str) -> int:
    """The one token id of ``text``; InvalidInput showing how it tokenizes when it is not exactly one token."""
    if not isinstance(text, str):
        raise InvalidInput(f"The {what} must be text, got {type(text).__name__} {str(text)[:40]!r}.")
    prompt_text(text)  # not blank, valid Unicode
    ids = handle.tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) == 1:
        return refuse_unknown(handle, text, int(ids[0]), what)
    pieces = [handle.tokenizer.decode([i]) for i in ids]
    hint = "Pick a word that is one token for this model"
    if ids:
        hint += f", or use its first token {pieces[0]!r}"
    alt = " " + text if not text.startswith(" ") else text.lstrip()
    alt_ids = handle.tokenizer(alt, add_special_tokens=False)["input_ids"] if alt.strip() else []
    if len(alt_ids) == 1:
        hint += f"; {alt!r} (with{'out' if text.startswith(' ') else ''} a leading space) is one token"
    raise InvalidInput(f"The {what} {text!r} is {len(ids)} tokens {_show(pieces)}, but the metric reads a single "
                       "next-token logit, so it must be exactly one token.", hint + ".")


def check_pairs(pairs: object) -> list[PromptPair]:
    """A non-empty list (at most :data:`MAX_PAIRS`) of :class:`PromptPair` whose prompts are text (not blank,
    valid Unicode) and whose answers are text (wrong: text or None); InvalidInput naming the first bad pair."""
    if isinstance(pairs, PromptPair):
        raise InvalidInput("Give a list of prompt pairs, not one bare PromptPair.", "Wrap it: [pair].")
    if isinstance(pairs, (str, bytes, dict)) or not isinstance(pairs, Sequence):
        raise InvalidInput(f"Prompt pairs must be a list of PromptPair, got {type(pairs).__name__}.")
    if not pairs:
        raise InvalidInput("No prompt pairs given.")
    if len(pairs) > MAX_PAIRS:
        raise InvalidInput(f"{len(pairs):,} prompt pairs given; at most {MAX_PAIRS:,} are taken at once.")
    for i, p in enumerate(pairs):
        label = "" if len(pairs) == 1 else f"Pair {i + 1}: "
        if not isinstance(p, PromptPair):
            raise InvalidInput(f"{label}expected a PromptPair(clean, corrupted, answer, wrong), got "
                               f"{type(p).__name__} {str(p)[:40]!r}.")
        for what, v in (("clean prompt", p.clean), ("corrupted prompt", p.corrupted), ("answer", p.answer),
                        ("wrong answer", p.wrong)):
            if v is None and what == "wrong answer":
                continue
            if not isinstance(v, str):
                raise InvalidInput(f"{label}the {what} must be text, got {type(v).__name__} {str(v)[:40]!r}.")
            try:
                prompt_text(v)
            except InvalidInput as e:
                raise InvalidInput(f"{label}the {what}: {e.message[0].lower() + e.message[1:]}", e.hint) from None
    return list(pairs)


def encode_pairs(handle: Model, pairs: Sequence[PromptPair], *, need_wrong: bool = True) -> PairBatch:
    """Tokenize and validate pairs (BOS prepended as everywhere in the workbench).

    Raises InvalidInput when a pair's prompts tokenize to different lengths (showing both tokenizations and
    the alignment patching needs), when an answer is not one token (showing its tokens), or when a wrong
    answer is missing and ``need_wrong`` (the logit-difference metric needs one).
    """
    pairs = check_pairs(pairs)
    clean_rows, corr_rows, answers, wrongs, cs, rs, a_s, w_s = [], [], [], [], [], [], [], []
    for i, p in enumerate(pairs):
        label = "" if len(pairs) == 1 else f"Pair {i + 1}: "
        lead = "The clean" if not label else f"{label}the clean"
        c = tokenize(handle, p.clean).tokens[0].cpu()
        r = tokenize(handle, p.corrupted).tokens[0].cpu()
        c_str, r_str = handle.to_str_tokens(c), handle.to_str_tokens(r)
        if len(c) != len(r):
            raise InvalidInput(
                f"{lead} prompt is {len(c)} tokens and the corrupted prompt {len(r)} tokens. Patching copies "
                "activations position by position, so both must tokenize to the same number of tokens, with the "
                "tokens that differ at the same positions.",
                f"clean:     {_show(c_str)}\ncorrupted: {_show(r_str)}\nReplace the changed words by ones with as "
                "many tokens as the originals (for example single-token names).")
        answers.append(single_token(handle, p.answer, f"{label}answer".strip()))
        if p.wrong is None:
            if need_wrong:
                raise InvalidInput(f"{label}no wrong answer given; the logit-difference metric compares the answer "
                                   "with a wrong answer.", "Add a wrong answer, or choose the prob or logprob metric.")
            wrongs.append(-1)
        else:
            wrongs.append(single_token(handle, p.wrong, f"{label}wrong answer".strip()))
        clean_rows.append(c)
        corr_rows.append(r)
        cs.append(c_str)
        rs.append(r_str)
        a_s.append(handle.tokenizer.decode([answers[-1]]))
        w_s.append(handle.tokenizer.decode([wrongs[-1]]) if wrongs[-1] >= 0 else "")
    batch = _stack(handle, clean_rows, corr_rows, answers, wrongs)
    batch.clean_str, batch.corrupted_str, batch.answer_str, batch.wrong_str = cs, rs, a_s, w_s
    batch.pairs = list(pairs)
    return batch


def _stack(handle: Model, clean_rows: list[torch.Tensor], corr_rows: list[torch.Tensor], answers: list[int],
           wrongs: list[int]) -> PairBatch:
    lengths = torch.tensor([len(r) for r in clean_rows])
    pad = handle.tokenizer.pad_token_id if handle.tokenizer.pad_token_id is not None else (handle.bos_token_id or 0)
    clean = torch.full((len(clean_rows), int(lengths.max())), pad, dtype=torch.long)  # [batch, pos]
    corr = clean.clone()
    for i, (c, r) in enumerate(zip(clean_rows, corr_rows)):
        clean[i, : len(c)] = c
        corr[i, : len(r)] = r
    return PairBatch(clean.to(handle.device), corr.to(handle.device), torch.tensor(answers, device=handle.device),
                     torch.tensor(wrongs, device=handle.device), lengths.to(handle.device))


def pairs_from_tokens(handle: Model, clean: torch.Tensor, corrupted: torch.Tensor, answer: torch.Tensor,
                      wrong: torch.Tensor | None = None) -> PairBatch:
    """A PairBatch from token tensors (``[batch, pos]`` each, same shape; answers ``[batch]`` ids)."""
    for name, t in (("clean", clean), ("corrupted", corrupted), ("answer", answer), ("wrong", wrong)):
        if t is None and name == "wrong":
            continue
        if not isinstance(t, torch.Tensor) or t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
            raise InvalidInput(f"The {name} tokens must be an integer tensor, got "
                               f"{getattr(t, 'dtype', type(t).__name__)}.")
    if clean.shape != corrupted.shape or clean.ndim != 2 or clean.shape[0] < 1 or clean.shape[1] < 1:
        raise InvalidInput(f"Clean and corrupted tokens must both be [batch, pos] of one shape, not empty; got "
                           f"{tuple(clean.shape)} and {tuple(corrupted.shape)}.")
    n = clean.shape[0]
    if clean.shape[1] > handle.info.n_ctx:
        raise InvalidInput(f"The pairs are {clean.shape[1]} tokens long; {handle.info.name} reads at most "
                           f"{handle.info.n_ctx}.")
    wrong = torch.full((n,), -1, dtype=torch.long) if wrong is None else wrong.long()
    if answer.shape != (n,) or wrong.shape != (n,):
        raise InvalidInput(f"answer and wrong must be [batch] = [{n}] token ids; got {tuple(answer.shape)} and "
                           f"{tuple(wrong.shape)}.")
    vocab = handle.info.d_vocab
    for name, t, low in (("clean", clean, 0), ("corrupted", corrupted, 0), ("answer", answer, 0), ("wrong", wrong, -1)):
        if int(t.min()) < low or int(t.max()) >= vocab:
            raise InvalidInput(f"{name} token ids must lie in {low}..{vocab - 1} for {handle.info.name}"
                               + (" (-1: no wrong answer)." if low < 0 else "."))
    batch = _stack(handle, list(clean.long().cpu()), list(corrupted.long().cpu()), answer.long().tolist(),
                   wrong.tolist())
    batch.clean_str = [handle.to_str_tokens(r) for r in batch.clean.cpu()]
    batch.corrupted_str = [handle.to_str_tokens(r) for r in batch.corrupted.cpu()]
    batch.answer_str = [handle.tokenizer.decode([int(a)]) for a in batch.answer]
    batch.wrong_str = [handle.tokenizer.decode([int(w)]) if int(w) >= 0 else "" for w in batch.wrong]
    return batch


# ----------------------------------------------------------------------------- generators


def repeated_sequence_pairs(handle: Model, n_pairs: int, seq_len: int, *, seed: int = 0,
                            corruption: RepeatCorruption = "fresh") -> PairBatch:
    """Induction pairs: clean = BOS + A + A[:-1] (answer A[-1], which only induction can predict).

    ``"fresh"``: the corrupted first copy is fresh random tokens B (nothing to copy); wrong answer B[-1].
    ``"prev_token"``: the corrupted prompt equals the clean one except the first copy's A[-2] (the token
    before the answer's first occurrence) is replaced by a token not in A, so the answer's key no longer
    carries "previous token = current token" while its value is unchanged (isolates K-composition); wrong
    answer that replacement token. Tokens are distinct within a sequence and never BOS.
    """
    if handle.info.n_ctx < 6:
        raise InvalidInput(f"{handle.info.name} reads at most {handle.info.n_ctx} tokens: too few for a repeated "
                           "sequence (BOS + A + A needs at least 6).")
    seq_len = count(seq_len, "seq_len", low=3, high=handle.info.n_ctx // 2)
    n_pairs = count(n_pairs, "n_pairs", low=1, high=MAX_PAIRS)
    seed = seed_value(seed)
    if corruption not in ("fresh", "prev_token"):
        raise InvalidInput(f"corruption must be 'fresh' or 'prev_token', got {str(corruption)[:40]!r}.")
    bos = handle.bos_token_id if handle.bos_token_id is not None else 0
    vocab = handle.info.d_vocab
    if vocab - 1 < 2 * seq_len:
        raise InvalidInput(f"{handle.info.name}'s vocabulary is too small for seq_len {seq_len}.")
    gen = torch.Generator().manual_seed(seed)
    ids = torch.tensor([t for t in range(vocab) if t != bos])
    clean, corr, ans, wrong = [], [], [], []
    for _ in range(n_pairs):
        perm = ids[torch.randperm(len(ids), generator=gen)[: 2 * seq_len]]
        a, b = perm[:seq_len], perm[seq_len:]
        row = torch.cat([torch.tensor([bos]), a, a[:-1]])  # [2 * seq_len]
        if corruption == "fresh":
            bad = torch.cat([torch.tensor([bos]), b, a[:-1]])
            w = b[-1]
        elif corruption == "prev_token":
            bad = row.clone()
            bad[seq_len - 1] = b[0]  # row[1 + (seq_len - 2)] holds A[-2] in the first copy
            w = b[0]
        else:
            raise InvalidInput(f"corruption must be 'fresh' or 'prev_token', got {corruption!r}.")
        clean.append(row)
        corr.append(bad)
        ans.append(a[-1])
        wrong.append(w)
    return pairs_from_tokens(handle, torch.stack(clean), torch.stack(corr), torch.stack(ans), torch.stack(wrong))


def example_pair(handle: Model, avoid: Collection[frozenset[str]] = ()) -> PromptPair:
    """A pair that suits the model, for a first look: numbered-token models (``t1``..``t999``, the attention-only
    ones) get a repeated sequence with a fresh first copy; text models the argument-copy task, with names no pair
    in ``avoid`` joins (pass ``copy_tasks.cooccurring_names`` of the model's training text, so the example tests
    copying rather than a remembered pair)."""
    tok = handle.tokenizer
    def known(t: str) -> bool:  # one token that decodes back to itself (an unknown-token id would not)
        ids = tok(t, add_special_tokens=False)["input_ids"]
        return len(ids) == 1 and tok.decode(ids).strip() == t

    if kind_of(handle) == "numbers":  # a modular-arithmetic model (grokking): "a b =" -> (a + b) mod p
        p = sum(1 for t in tok.get_vocab() if t.isdigit())
        if p >= 11:
            a, b, c = 3, 5, 7
            return PromptPair(f"{a} {b} =", f"{a} {c} =", str((a + b) % p), str((a + c) % p))
    if all(known(t) for t in ("t1", "t2", "t999")):
        a = ["t12", "t47", "t305", "t8", "t96", "t51", "t230"]
        b = ["t611", "t83", "t19", "t742", "t5", "t377", "t64"]
        return PromptPair(" ".join(a + a[:-1]), " ".join(b + a[:-1]), a[-1], b[-1])

    try:
        p = copy_task_pairs(tok, 1, split="heldout", seed=0, avoid=avoid)[0]
        return PromptPair(p.clean, p.corrupted, p.answer, p.wrong)
    except InvalidInput:
        pass
    batch = repeated_sequence_pairs(handle, 1, 6, seed=0)
    text = [tok.decode(row[1:].tolist()) for row in (batch.clean[0], batch.corrupted[0])]
    return PromptPair(text[0], text[1], batch.answer_str[0], batch.wrong_str[0])
