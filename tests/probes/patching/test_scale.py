"""When patching effects may be normalised: the gap floor follows the metric's scale, raw effects below it."""
from __future__ import annotations

import pytest
import torch

from probes.patching.activation import SweepResult
from probes.patching.scale import GAP_FLOOR, PROB_FLOOR, check_gap, exact_effects, metric_scale, within_noise


def _sweep(values, clean, corrupted):
    return SweepResult("head_out", ("layer", "head"), torch.tensor(values), torch.tensor([clean]),
                       torch.tensor([corrupted]))


def test_a_gap_below_the_floor_gives_raw_effects_and_a_note():
    res = _sweep([[[0.02], [-0.03]]], clean=0.014, corrupted=0.0)  # the random Llama: gap 0.014
    check = check_gap("logit_diff", res.clean, res.corrupted, scale=0.11)
    assert not check.ok and check.floor == pytest.approx(GAP_FLOOR * 0.11)
    raw = exact_effects(res, check)
    assert torch.allclose(raw, torch.tensor([[0.02, -0.03]]))  # patched - corrupted, not / 0.014
    assert "below the floor" in check.note() and "raw effects" in check.note()
    assert within_noise(raw, check)


def test_a_clear_gap_normalises_and_big_effects_are_not_noise():
    res = _sweep([[[5.0], [1.0]]], clean=10.0, corrupted=0.0)
    check = check_gap("logit_diff", res.clean, res.corrupted, scale=2.5)
    assert check.ok and "normalised" in check.note()
    assert torch.allclose(exact_effects(res, check), torch.tensor([[0.5, 0.1]]))
    assert not within_noise(exact_effects(res, check), check)
    tiny = _sweep([[[0.1], [0.0]]], clean=10.0, corrupted=0.0)
    assert within_noise(exact_effects(tiny, check), check)  # 0.01 x a gap of 10 = 0.1 nats < 1.25


def test_probabilities_have_a_fixed_floor_and_the_scale_is_the_logit_spread(tiny_handle):
    assert check_gap("prob", torch.tensor([0.3]), torch.tensor([0.295]), 1.0).floor == PROB_FLOOR
    assert not check_gap("prob", torch.tensor([0.3]), torch.tensor([0.295]), 1.0).ok
    from tasks.pairs import PromptPair, encode_pairs

    batch = encode_pairs(tiny_handle, [PromptPair("the cat sat", "the dog sat", " on", " the")])
    logits = tiny_handle.logits("the cat sat")[0, -1]
    assert metric_scale(tiny_handle, batch, "logit_diff") == pytest.approx(float(logits.std()), rel=1e-4)
    assert metric_scale(tiny_handle, batch, "prob") == 1.0
