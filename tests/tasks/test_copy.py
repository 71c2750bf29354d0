"""Argument-copy pairs: single-token names, a train/held-out split that never mixes, aligned clean/corrupted
prompts whose answer is the parameter the body has not used yet."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from interp.errors import InvalidInput
from tasks.copy import TEMPLATES, copy_task_pairs, is_single_token, names_for, repeated_text_tokens

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stdlib_tokenizer():
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast.from_pretrained(str(ROOT / "models" / "stdlib-gpt2"))


def test_names_are_single_tokens_and_the_splits_are_disjoint(stdlib_tokenizer):
    train, heldout = names_for(stdlib_tokenizer, "train"), names_for(stdlib_tokenizer, "heldout")
    assert len(train) >= 100 and len(heldout) >= 30
    assert not set(train) & set(heldout)
    for name in train + heldout:
        assert len(stdlib_tokenizer(name)["input_ids"]) == 1 and len(stdlib_tokenizer(" " + name)["input_ids"]) == 1
    assert not is_single_token(stdlib_tokenizer, "height")  # " height" is two tokens here: never used


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_pairs_align_and_answer_the_unused_parameter(stdlib_tokenizer, template):
    heldout = set(names_for(stdlib_tokenizer, "heldout"))
    pairs = copy_task_pairs(stdlib_tokenizer, 50, template=template, seed=3)
    assert pairs == copy_task_pairs(stdlib_tokenizer, 50, template=template, seed=3)
    assert pairs != copy_task_pairs(stdlib_tokenizer, 50, template=template, seed=4)
    for p in pairs:
        enc = [stdlib_tokenizer(s)["input_ids"] for s in (p.clean, p.corrupted)]
        assert len(enc[0]) == len(enc[1])
        assert sum(a != b for a, b in zip(*enc)) >= 2  # only the names differ, and they do
        params = p.clean.split("(")[1].split(")")[0].split(", ")
        body = p.clean.split("return")[1]
        assert set(params) <= heldout
        assert p.answer.strip() in params and p.answer.strip() not in body  # the one not used yet
        assert p.wrong.strip() in params and p.wrong.strip() in body
        assert p.answer.strip() not in p.corrupted and p.wrong.strip() not in p.corrupted
        assert p.corrupted_answer.strip() in p.corrupted.split("(")[1].split(")")[0].split(", ")


def test_train_split_pairs_use_only_train_names(stdlib_tokenizer):
    train = set(names_for(stdlib_tokenizer, "train"))
    for p in copy_task_pairs(stdlib_tokenizer, 30, split="train"):
        assert set(p.clean.split("(")[1].split(")")[0].split(", ")) <= train


def test_a_tokenizer_without_single_token_names_is_refused(tiny_tokenizer):
    with pytest.raises(InvalidInput, match="single tokens"):
        copy_task_pairs(tiny_tokenizer, 5)


def test_repeated_text_rows_are_bos_then_the_same_text_twice(tiny_handle):
    texts = ["def add(a, b):\n    return a + b\n" * 4, "x"]  # the short one is skipped
    rows = repeated_text_tokens(tiny_handle, texts, seq_len=12)
    assert rows.shape == (1, 25)
    assert rows[0, 0] == (tiny_handle.bos_token_id or 0)
    assert torch.equal(rows[0, 1:13], rows[0, 13:])
    with pytest.raises(InvalidInput):
        repeated_text_tokens(tiny_handle, ["x"], seq_len=12)


def test_avoided_pairs_never_share_a_clean_prompt(stdlib_tokenizer):
    from tasks.copy import cooccurring_names

    heldout = names_for(stdlib_tokenizer, "heldout")
    texts = [f"x = {heldout[0]} + {heldout[1]}\ny = {heldout[2]}", f"f({heldout[1]}, {heldout[3]})"]
    avoid = cooccurring_names(texts, heldout)
    assert avoid == {frozenset(heldout[:2]), frozenset((heldout[1], heldout[3]))}  # same line only, not same text
    for template in sorted(TEMPLATES):
        for p in copy_task_pairs(stdlib_tokenizer, 100, template=template, avoid=avoid):
            used = {w for w in heldout if f"({w}," in p.clean or f" {w}," in p.clean or f" {w})" in p.clean}
            assert not any(pair <= used for pair in avoid)
    everything = {frozenset((a, b)) for a in heldout for b in heldout if a != b}
    with pytest.raises(InvalidInput, match="never co-occurred"):
        copy_task_pairs(stdlib_tokenizer, 5, avoid=everything)
