"""The bundled code-gpt2 keeps stdlib loss near stdlib-gpt2's and prefers the unused parameter over the used one.

Its card reports the issue-13 targets it misses (no induction head >= 0.5; 5% top-1 argument copying on held-out
names); only what the shipped model meets is asserted here.
"""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "code-gpt2"
STDLIB_GPT2_LOSS = 4.34  # models/stdlib-gpt2's held-out loss: code-gpt2 must stay within 5%

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (MODEL / "config.json").is_file(), reason="models/code-gpt2 is not bundled")]


def test_heldout_stdlib_loss_is_within_5_percent_of_stdlib_gpt2():
    from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

    from training.corpus import load_corpus
    from training.lm import TrainSettings, encode_docs, eval_loss

    tok = PreTrainedTokenizerFast.from_pretrained(str(MODEL))
    model = GPT2LMHeadModel.from_pretrained(str(MODEL))
    heldout = encode_docs(tok, load_corpus().heldout)
    settings = TrainSettings(steps=1, batch_size=16, seq_len=256, seed=1)  # the run's own eval windows
    assert eval_loss(model, heldout, settings, "cpu") <= STDLIB_GPT2_LOSS * 1.05


def test_it_prefers_the_unused_argument_and_copies_it_for_train_split_names():
    from interp import load_model
    from probes.copy_tasks import copy_task_pairs, score_copy_task

    handle = load_model(str(MODEL))
    heldout = score_copy_task(handle, copy_task_pairs(handle.tokenizer, 200, template="two_args"))
    train = score_copy_task(handle, copy_task_pairs(handle.tokenizer, 100, template="two_args", split="train"))
    assert heldout.mean_logit_diff > 0  # answer above the used parameter, though rarely top-1 (card: 5%)
    assert train.accuracy >= 0.8
