"""The copy-rewarding data mix makes the rows it claims: repeated spans, periodic random rows, synthetic
functions that use their (train-split) parameters; seeded and deterministic."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from interp.errors import InvalidInput
from tasks.copy import NAME_WORDS, name_split
from tasks.copy_mix import CopyMix, mixed_batch_fn, repeat_span, synthetic_functions

ROOT = Path(__file__).resolve().parents[2]


def has_repeat(row: np.ndarray, k: int) -> bool:
    """True when some k-gram of ``row`` occurs at two positions."""
    grams = [tuple(row[i : i + k]) for i in range(len(row) - k + 1)]
    return len(set(grams)) < len(grams)


def test_counts_follow_the_shares_and_fill_the_batch():
    assert CopyMix(0.25, 0.2, 0.05).counts(16) == {"plain": 8, "copy": 4, "functions": 3, "random": 1, "tiled": 0}
    assert CopyMix().counts(16) == {"plain": 16, "copy": 0, "functions": 0, "random": 0, "tiled": 0}
    assert CopyMix(0.25, tiled_share=0.25).counts(16)["tiled"] == 4
    assert sum(CopyMix(0.3, 0.3, 0.1).counts(10).values()) == 10
    with pytest.raises(InvalidInput, match="sum to <= 1"):
        CopyMix(0.6, 0.5)


def test_repeat_span_puts_the_span_again_at_the_insert_position():
    w = np.arange(100)
    row = repeat_span(w, span=10, source=5, insert=40)
    assert len(row) == 100
    assert (row[40:50] == w[5:15]).all() and (row[:40] == w[:40]).all() and (row[50:] == w[40:90]).all()
    with pytest.raises(InvalidInput):
        repeat_span(w, span=10, source=5, insert=10)  # would overlap its own source


def test_mixed_batch_rows_are_what_they_claim_and_deterministic():
    rng = np.random.default_rng(0)
    corpus = rng.integers(1, 4096, 50_000).astype(np.uint16)  # random: no 8-gram recurs by chance
    functions = rng.integers(1, 4096, 5_000).astype(np.uint16)
    mix = CopyMix(copy_share=0.25, function_share=0.25, random_share=0.25, span_min=8, span_max=32)
    fn = mixed_batch_fn(corpus, functions, mix, batch_size=8, seq_len=128, vocab=4096)
    batch = fn(3, torch.Generator().manual_seed(3)).numpy()  # rows: 2 plain, 2 copy, 2 functions, 2 random
    assert batch.shape == (8, 128)
    assert not any(has_repeat(r, 8) for r in batch[:2])  # plain windows: no repeat (negative control)
    assert all(has_repeat(r, 8) for r in batch[2:4])  # copy rows: an earlier span recurs
    assert all(has_repeat(r, 8) for r in batch[6:8])  # random rows: a block tiled
    assert all(b.min() >= 1 for b in batch[6:8])  # never the BOS/EOS id
    again = fn(3, torch.Generator().manual_seed(3)).numpy()
    other = fn(4, torch.Generator().manual_seed(4)).numpy()
    assert (batch == again).all() and not (batch == other).all()


def test_tiled_rows_repeat_one_corpus_block_with_a_period_in_range():
    rng = np.random.default_rng(0)
    corpus = rng.integers(1, 4096, 50_000).astype(np.uint16)
    mix = CopyMix(tiled_share=0.5, tile_min=20, tile_max=40)
    fn = mixed_batch_fn(corpus, None, mix, batch_size=8, seq_len=128, vocab=4096)
    batch = fn(0, torch.Generator().manual_seed(0))
    text = corpus.tobytes()
    for row in batch[4:].numpy():  # the tiled rows come last
        period = next(p for p in range(1, 129) if (row[p:] == row[:-p]).all())
        assert 20 <= period <= 40  # random corpus: no shorter period by chance
        assert row[:period].astype(np.uint16).tobytes() in text  # the block is a corpus span
    assert not any(has_repeat(r, 8) for r in batch[:4].numpy())  # the plain rows stay plain
    with pytest.raises(InvalidInput, match="tile_min"):
        CopyMix(tile_min=50, tile_max=20)


def test_synthetic_functions_are_python_and_use_their_own_parameters():
    names = sorted(w for w in NAME_WORDS if name_split(w) == "train")[:40]
    modules = synthetic_functions(names, 30, seed=0)
    assert modules == synthetic_functions(names, 30, seed=0) and modules != synthetic_functions(names, 30, seed=1)
    n_funcs = 0
    for src in modules:
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.FunctionDef):
                params = [a.arg for a in node.args.args if a.arg != "self"]
                used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
                assert set(params) <= set(names) and len(set(params)) == len(params)
                assert set(params) <= used  # every parameter appears in the body
                n_funcs += 1
    assert n_funcs > 100


def test_synthetic_functions_never_use_heldout_names():
    from transformers import PreTrainedTokenizerFast

    from tasks.copy import names_for, vocab_names

    tok = PreTrainedTokenizerFast.from_pretrained(str(ROOT / "models" / "stdlib-gpt2"))
    heldout = set(names_for(tok, "heldout"))
    idents = set()
    pool = names_for(tok, "train") + vocab_names(tok, "train")  # the two pools function_tokens can draw from
    assert len(vocab_names(tok, "train")) > 2 * len(names_for(tok, "train"))
    for src in synthetic_functions(pool, 50, seed=0):
        idents |= {n.id for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Name)}
        idents |= {a.arg for n in ast.walk(ast.parse(src)) if isinstance(n, ast.FunctionDef) for a in n.args.args}
    assert heldout and not idents & heldout


def test_open_names_are_many_valid_and_never_contain_a_heldout_token():
    from transformers import PreTrainedTokenizerFast

    from tasks.copy_mix import heldout_token_ids, open_names

    tok = PreTrainedTokenizerFast.from_pretrained(str(ROOT / "models" / "stdlib-gpt2"))
    pool = open_names(tok, 3000, seed=0)
    assert pool == open_names(tok, 3000, seed=0)
    assert len(set(pool)) >= 3000  # far more names than the 371-word pool a model memorised
    banned = heldout_token_ids(tok)
    for name in set(pool):
        assert name.isidentifier()
        ids = tok(name)["input_ids"] + tok(" " + name)["input_ids"]
        assert not set(ids) & banned, name


def test_synthetic_functions_declare_distinct_parameters_from_a_weighted_pool():
    pool = ["alpha", "beta", "gamma", "delta", "eps"] + ["alpha"] * 50  # 'alpha' weighted, still distinct per def
    for src in synthetic_functions(pool, 20, seed=2):
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.FunctionDef):
                params = [a.arg for a in node.args.args]
                assert len(set(params)) == len(params)
    with pytest.raises(InvalidInput, match="4 distinct"):
        synthetic_functions(["a", "b", "c"] * 5, 1)


def test_solo_names_are_parameters_but_never_two_in_one_module():
    import re

    names = sorted(w for w in NAME_WORDS if name_split(w) == "train")[:40]
    solo = sorted(w for w in NAME_WORDS if name_split(w) == "heldout")[:10]
    modules = synthetic_functions(names, 300, seed=1, solo=solo)
    per_module = [set(re.findall(r"\w+", m)) & set(solo) for m in modules]
    assert all(len(s) <= 1 for s in per_module)  # no two solo names ever together
    assert sum(len(s) for s in per_module) > 100  # ...but each is seen, as a parameter
    for src in modules:
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.FunctionDef):
                used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
                assert {a.arg for a in node.args.args if a.arg != "self"} <= used
    with pytest.raises(InvalidInput, match="Solo names"):
        synthetic_functions(names, 1, solo=names[:1])


def test_stdlib_name_pairs_are_the_name_words_sharing_a_training_line():
    from tasks.copy import NAME_WORDS, cooccurring_names
    from tasks.copy_mix import stdlib_name_pairs
    from tasks.corpus import load_corpus

    pairs = stdlib_name_pairs()
    assert frozenset(("alias", "target")) in pairs  # the old Patching-page example, read together in the stdlib
    assert pairs == cooccurring_names(load_corpus().train, NAME_WORDS) and stdlib_name_pairs() is pairs  # read once
