"""What a small code LM has learned, measured: next-token skills on hand-written Python prompts, argument copying
(:func:`score_copy_task`) and induction on repeated real code (:func:`repeated_code_scores`).

Each case is a prompt and the continuation a Python programmer would write (closing a bracket, ``self``
after ``def f(``, copying an identifier seen earlier, a keyword the syntax forces). A case is scored by the
log-probability of the continuation's tokens given the prompt's tokens (tokenized separately, as greedy
generation would see them) and by whether greedy decoding reproduces it exactly. Prompts end where a
byte-level BPE puts a token boundary in real code (no trailing space), so the split is the one seen in training.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from interp.errors import InvalidInput
from interp.model import Model
from probes.heads.detectors import capture_patterns, repeated_sequence_scores
from tasks.copy import CopyPair, repeated_text_tokens
from tasks.pairs import PairBatch


@dataclass(frozen=True)
class SkillCase:
    skill: str
    prompt: str
    expected: str


#: Prompts in the style of the standard library; continuations that are forced (or nearly) by Python.
PYTHON_SKILLS: tuple[SkillCase, ...] = (
    SkillCase("close bracket", "n = len(items", ")"),
    SkillCase("close bracket", "x = max(abs(a), abs(b", "))"),
    SkillCase("close bracket", "values = [1, 2, 3", "]"),
    SkillCase("close bracket", "d = {'a': 1, 'b': 2", "}"),
    SkillCase("self after def (", "class Foo:\n    def bar(", "self"),
    SkillCase("self after def (", "class Reader(object):\n\n    def __init__(", "self"),
    SkillCase("self after def (", "    def __len__(", "self"),
    SkillCase("copy identifier", "frobnicate_widget = 3\nprint(frobnicate", "_widget"),
    SkillCase("copy identifier", "def compute_checksum(data):\n    pass\n\nresult = compute", "_checksum"),
    SkillCase("copy identifier", "class ZorblaxParser:\n    pass\n\np = Zorblax", "Parser"),
    SkillCase("syntax keyword", "try:\n    import zlib\nexcept", " ImportError"),
    SkillCase("syntax keyword", "if __name__ == '__", "main"),
    SkillCase("syntax keyword", "for key, value in d.", "items"),
)


@dataclass
class SkillScore:
    case: SkillCase
    logprob: float  # sum over the continuation's tokens, nats
    first_prob: float  # probability of the continuation's first token
    first_rank: int  # 0 = top-1
    greedy: bool  # greedy decoding reproduces the whole continuation
    greedy_text: str  # what greedy decoding wrote instead (as many tokens as the continuation)


def score_skills(handle: Model, cases: tuple[SkillCase, ...] = PYTHON_SKILLS) -> list[SkillScore]:
    """Score every case with one forward pass each (prompt + continuation, teacher-forced); cases longer than the
    model's context are left out (a tiny model with a small vocabulary and context may fit only some)."""
    if not cases:
        raise InvalidInput("No skill cases given.")
    tok = handle.tokenizer
    out = []
    n_ctx = handle.info.n_ctx
    for case in cases:
        p_ids = tok(case.prompt, add_special_tokens=False)["input_ids"]
        e_ids = tok(case.expected, add_special_tokens=False)["input_ids"]
        if not p_ids or not e_ids:
            raise InvalidInput(f"Skill case {case.prompt!r} -> {case.expected!r} tokenizes to nothing.")
        bos = [handle.bos_token_id] if handle.bos_token_id is not None else []
        ids = torch.tensor([bos + p_ids + e_ids])  # [1, pos]
        if n_ctx and ids.shape[1] > n_ctx:
            continue
        logits = handle.logits(ids)
        start = len(bos) + len(p_ids) - 1  # position whose output predicts the first continuation token
        logp = logits[0, start : start + len(e_ids)].float().log_softmax(-1)  # [n_expected, vocab]
        target = torch.tensor(e_ids)
        chosen = logp.gather(-1, target[:, None]).squeeze(-1)  # [n_expected]
        greedy_ids = logp.argmax(-1)  # teacher-forced greedy == free greedy while every token matches
        out.append(SkillScore(
            case=case, logprob=float(chosen.sum()), first_prob=float(chosen[0].exp()),
            first_rank=int((logp[0] > chosen[0]).sum()), greedy=bool((greedy_ids == target).all()),
            greedy_text=tok.decode(greedy_ids.tolist()),
        ))
    if not out:
        raise InvalidInput(f"No skill case fits the model's context of {n_ctx} tokens.")
    return out


def skills_table(scores: list[SkillScore]) -> pd.DataFrame:
    """One row per case (prompt, expected, probabilities, greedy result)."""
    return pd.DataFrame([{"skill": s.case.skill, "prompt": s.case.prompt, "expected": s.case.expected,
                          "p(first token)": s.first_prob, "rank": s.first_rank,
                          "p(continuation)": float(torch.tensor(s.logprob).exp()), "greedy": s.greedy,
                          "greedy wrote": s.greedy_text} for s in scores])


def skills_summary(scores: list[SkillScore]) -> pd.DataFrame:
    """Per skill: number of cases, greedy accuracy and mean probability of the first expected token."""
    df = skills_table(scores)
    return (df.groupby("skill", sort=False)
              .agg(cases=("prompt", "size"), greedy_correct=("greedy", "mean"), mean_p_first=("p(first token)", "mean"))
              .reset_index())


@dataclass
class CopyTaskScore:
    """Top-1 accuracy and logit difference (answer - wrong) of a model on copy pairs, overall and per template."""

    accuracy: float
    mean_logit_diff: float
    table: pd.DataFrame  # one row per pair: template, clean, answer, predicted, correct, logit_diff


@torch.no_grad()
def score_copy_task(handle: Model, pairs: list[CopyPair], *, batch_size: int = 64) -> CopyTaskScore:
    """Greedy next-token accuracy of ``handle`` on the clean prompts (BOS prepended), and answer - wrong logits."""
    tok = handle.tokenizer
    rows = []
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i : i + batch_size]
        batch = handle.tokenize([p.clean for p in chunk])
        logits = handle.logits(batch)  # [batch, pos, vocab]
        last = logits[torch.arange(len(chunk)), batch.lengths - 1]  # [batch, vocab]
        for p, row in zip(chunk, last):
            a, w = (tok(s, add_special_tokens=False)["input_ids"][0] for s in (p.answer, p.wrong))
            pred = int(row.argmax())
            rows.append({"template": p.template, "clean": p.clean, "answer": p.answer, "predicted": tok.decode([pred]),
                         "correct": pred == a, "logit_diff": float(row[a] - row[w])})
    table = pd.DataFrame(rows)
    return CopyTaskScore(float(table["correct"].mean()), float(table["logit_diff"].mean()), table)


@torch.no_grad()
def score_pairs(handle: Model, batch: PairBatch) -> CopyTaskScore:
    """Does the model do the task of a batch of prompt pairs: greedy top-1 accuracy of the answer on the clean
    prompts and the mean clean logit difference answer - wrong (answer - mean logit when no wrong answer)."""
    logits = handle.logits(batch.clean)  # [batch, pos, vocab]
    last = logits[torch.arange(len(batch)), batch.answer_pos].float()  # [batch, vocab]
    answer = last.gather(-1, batch.answer[:, None]).squeeze(-1)  # [batch]
    wrong_ids = batch.wrong.clamp(min=0)
    other = torch.where(batch.wrong >= 0, last.gather(-1, wrong_ids[:, None]).squeeze(-1), last.mean(-1))  # [batch]
    pred = last.argmax(-1)  # [batch]
    diff = answer - other  # [batch]
    table = pd.DataFrame({"answer": batch.answer_str or [str(int(a)) for a in batch.answer],
                          "predicted": [handle.tokenizer.decode([int(t)]) for t in pred],
                          "correct": (pred == batch.answer).tolist(), "logit_diff": diff.tolist()})
    return CopyTaskScore(float((pred == batch.answer).float().mean()), float(diff.mean()), table)


def repeated_code_scores(handle: Model, texts: list[str], seq_len: int = 50) -> dict[str, torch.Tensor]:
    """Induction, duplicate and previous-token scores ([n_layers, n_heads]) on BOS + A + A rows of real code,
    with the same definitions ``probes.heads.detectors.scan_heads`` uses on random tokens."""
    tokens = repeated_text_tokens(handle, texts, seq_len).to(handle.device)
    pats = capture_patterns(handle, handle.tokenize(tokens))  # [layer, batch, head, q, k]
    return {k: v.cpu() for k, v in repeated_sequence_scores(pats, seq_len).items()}
