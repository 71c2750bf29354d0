"""Editing one component: each mode does what it says to the activation, the logits change only through it, and
targets a model lacks are one-line errors."""
from __future__ import annotations

import pytest
import torch

from interp import Site
from interp.errors import InvalidInput
from probes.interventions.edit import Target, intervene, make_edit, token_direction

PROMPT = "the cat sat on the mat"


def _ref(handle):
    return torch.randint(1, handle.info.d_vocab, (6, 9), generator=torch.Generator().manual_seed(0))


def test_head_modes_edit_only_that_head():
    act = torch.randn(2, 5, 4, 8)  # [batch, pos, head, d_head]
    ref = torch.randn(3, 7, 4, 8)
    t = Target("head", 0, 2)
    zero = make_edit(t, "zero")(act)
    assert (zero[:, :, 2] == 0).all() and torch.equal(zero[:, :, [0, 1, 3]], act[:, :, [0, 1, 3]])
    mean = make_edit(t, "mean", reference=ref)(act)
    assert torch.allclose(mean[0, 3, 2], ref[:, :, 2].mean(dim=(0, 1)))
    res = make_edit(t, "resample", reference=ref, row=1)(act)
    assert torch.allclose(res[1, 4, 2], ref[1, 4, 2])
    steer = make_edit(t, "steer", scale=3.0)(act)
    assert torch.allclose(steer[:, :, 2], 3 * act[:, :, 2]) and torch.equal(steer[:, :, 0], act[:, :, 0])
    assert not torch.equal(act[:, :, 2], zero[:, :, 2])  # the input is not changed in place


def test_direction_modes_act_along_the_direction_only():
    d = torch.tensor([1.0, 0.0, 0.0])
    act = torch.tensor([[[2.0, 5.0, -1.0], [3.0, 1.0, 1.0]]])  # [1, pos 2, d 3]
    t = Target("direction", 0, vector=d * 4)
    assert torch.allclose(make_edit(t, "zero")(act)[..., 0], torch.zeros(1, 2))
    assert torch.allclose(make_edit(t, "zero")(act)[..., 1:], act[..., 1:])
    steered = make_edit(t, "steer", scale=2.0)(act)
    assert torch.allclose(steered - act, torch.tensor([2.0, 0.0, 0.0]).expand_as(act))
    ref = torch.tensor([[[10.0, 0, 0], [20.0, 0, 0], [30.0, 0, 0]]])
    assert torch.allclose(make_edit(t, "mean", reference=ref)(act)[..., 0], torch.full((1, 2), 20.0))
    assert torch.allclose(make_edit(t, "resample", reference=ref, row=0)(act)[..., 0], torch.tensor([[10.0, 20.0]]))


def test_zero_ablating_a_head_equals_the_models_own_edit(tiny_handle):
    res = intervene(tiny_handle, PROMPT, Target("head", 1, 3), "zero")

    def zero_head(z):
        z = z.clone()
        z[:, :, 3] = 0
        return z

    ref = tiny_handle.run(PROMPT, edit={Site("z", 1): zero_head}).logits[0].float().log_softmax(-1)
    assert torch.allclose(res.logp_after_all, ref, atol=1e-5)
    assert torch.allclose(res.logp_before_all, tiny_handle.logits(PROMPT)[0].float().log_softmax(-1), atol=1e-5)
    assert res.kl > 0 and res.kl_at(0) >= 0 and len(res.kl_by_position) == len(res.token_ids)
    table = res.top_table(tiny_handle, k=5)
    assert table["p before"].between(0, 1).all() and (table["rank before"] >= 1).all()


def test_steering_by_one_is_no_edit_and_every_mode_runs(tiny_handle):
    same = intervene(tiny_handle, PROMPT, Target("neuron", 0, 5), "steer", scale=1.0)
    assert same.kl < 1e-6
    for mode in ("zero", "mean", "resample", "steer"):
        for target in (Target("head", 0, 1), Target("neuron", 1, 2),
                       Target("direction", 1, vector=token_direction(tiny_handle, " the")[0])):
            r = intervene(tiny_handle, PROMPT, target, mode, scale=4.0, reference=_ref(tiny_handle), seed=1)
            assert torch.isfinite(r.logp_after_all).all()


def test_missing_targets_and_bad_inputs_are_one_line_errors(tiny_handle):
    with pytest.raises(InvalidInput, match="reference"):
        intervene(tiny_handle, PROMPT, Target("head", 0, 0), "mean")
    with pytest.raises(InvalidInput, match="does not exist"):
        intervene(tiny_handle, PROMPT, Target("neuron", 0, 10**6), "zero")
    with pytest.raises(InvalidInput, match="exactly one token"):
        token_direction(tiny_handle, " definitely not one token")
    with pytest.raises(InvalidInput, match="zero"):
        token_direction(tiny_handle, " the", " the")
    with pytest.raises(InvalidInput, match="finite"):
        intervene(tiny_handle, PROMPT, Target("head", 0, 0), "steer", scale=float("inf"))
    with pytest.raises(InvalidInput, match="outside"):
        intervene(tiny_handle, PROMPT, Target("head", 0, 0), "zero", position=99)
    from interp.loading import bundled_models

    if "attn-only-1l" in bundled_models():
        from interp import load_model

        with pytest.raises(InvalidInput, match="attention-only"):
            intervene(load_model("attn-only-1l"), "t1 t2 t3", Target("neuron", 0, 0), "zero")
