"""Prompt checks: unknown words on word-level models are counted, examples fit each vocabulary, truncation fits."""
from __future__ import annotations

import pytest

from interp.errors import InvalidInput
from interp.eta import Eta, format_seconds, scaled_estimate
from interp.loading import bundled_models
from interp.prompt_check import OTHELLO_OPENING, check_prompt, example_prompts, kind_of, truncate_to_fit, vocab_kind


def _bundled(name):
    if name not in bundled_models():
        pytest.skip(f"bundled {name} absent")
    from interp import load_model

    return load_model(name)


def test_english_on_an_attention_only_model_is_flagged_and_its_examples_are_not():
    h = _bundled("attn-only-1l")
    assert kind_of(h) == "t-tokens"
    bad = check_prompt(h, "The cat sat on the mat")
    assert len(bad.special_positions) == 6 and "t1 ... t999" in bad.vocab_warning
    for text in example_prompts(h).values():
        assert check_prompt(h, text).vocab_warning is None


def test_othello_examples_are_legal_move_sequences():
    from tasks.othello import replay, square

    h = _bundled("othello-gpt")
    assert kind_of(h) == "othello"
    for text in example_prompts(h).values():
        assert check_prompt(h, text).vocab_warning is None
        assert len(replay([square(m) for m in text.split()])) == len(text.split())  # raises on an illegal move
    assert OTHELLO_OPENING.startswith(next(iter(example_prompts(h).values()))[:8])


def test_byte_level_models_never_flag_text_and_long_prompts_truncate_to_fit(tiny_handle):
    c = check_prompt(tiny_handle, "the cat " * 200)
    assert c.vocab_warning is None and c.too_long and "reads at most 64" in c.length_message
    cut = truncate_to_fit(tiny_handle, "the cat " * 200)
    assert "the cat " * 200 != cut and (c2 := check_prompt(tiny_handle, cut)).n_tokens <= 64 and not c2.too_long
    assert truncate_to_fit(tiny_handle, "short") == "short"
    with pytest.raises(InvalidInput):
        check_prompt(tiny_handle, "   ")


def test_number_vocabularies_are_grokking_models():
    from training.grokking import number_tokenizer

    assert vocab_kind(number_tokenizer(113)) == "numbers"


def test_estimates_and_eta():
    assert scaled_estimate(100.0, 200, 400) == 200.0
    assert format_seconds(45) == "45 s" and format_seconds(190) == "3 min 10 s" and format_seconds(3900) == "1 h 5 min"
    eta = Eta(started=0.0)
    assert eta.remaining(0.01, now=1.0) is None and eta.remaining(0.5, now=10.0) == pytest.approx(10.0)
