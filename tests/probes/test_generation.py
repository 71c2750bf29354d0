"""Sampling: temperature, top-k and top-p match their definitions on hand-made distributions (and Hugging Face's
logits processors on random ones); seeded generation is reproducible, the same token by token as all at once, and
draws from the distribution it shows; bad settings are clear errors."""
from __future__ import annotations

import math

import pytest
import torch

from interp import InvalidInput
from probes.generation import (
    Sampling,
    distribution,
    draw,
    generate,
    next_distribution,
    top_k_mask,
    top_p_mask,
    with_temperature,
)

P = torch.tensor([0.5, 0.25, 0.125, 0.125], dtype=torch.float64)  # a hand-made distribution
LOGITS = P.log()


def test_temperature_is_softmax_of_logits_over_t():
    # T = 2: p_i^(1/2) renormalised; T = 0.5: p_i^2 renormalised; T = 1: unchanged; T = 0: the argmax
    root = P.sqrt() / P.sqrt().sum()
    assert torch.allclose(with_temperature(LOGITS, 2.0), root)
    assert torch.allclose(with_temperature(LOGITS, 0.5), P**2 / (P**2).sum())
    assert torch.allclose(with_temperature(LOGITS, 1.0), P)
    assert with_temperature(LOGITS, 0.0).tolist() == [1.0, 0.0, 0.0, 0.0]


def test_top_k_keeps_the_k_most_likely():
    assert top_k_mask(P, 2).tolist() == [True, True, False, False]
    assert top_k_mask(P, 3).tolist() == [True, True, True, False]  # a tie at the edge: the lower id stays
    assert top_k_mask(P, 0).all() and top_k_mask(P, 10).all()  # 0 = off; k >= vocab keeps all
    d = distribution(LOGITS.float(), Sampling(top_k=2))
    assert torch.allclose(d.final, torch.tensor([2 / 3, 1 / 3, 0, 0], dtype=torch.float64))


@pytest.mark.parametrize("p, kept", [(0.3, [0]), (0.5, [0]), (0.6, [0, 1]), (0.75, [0, 1]), (0.76, [0, 1, 2]),
                                     (0.85, [0, 1, 2]), (0.9, [0, 1, 2, 3]), (1.0, [0, 1, 2, 3])])
def test_top_p_keeps_the_fewest_tokens_reaching_p(p, kept):
    mask = top_p_mask(P, p)
    assert torch.nonzero(mask).flatten().tolist() == kept
    assert float(P[mask].sum()) >= p - 1e-12  # they reach p ...
    if len(kept) > 1:
        assert float(P[mask][:-1].sum()) < p  # ... and one fewer would not


def test_order_is_temperature_then_top_k_then_top_p():
    # T = 0.5 -> [16, 4, 1, 1] / 22; top-k 3 keeps [16, 4, 1] / 21; top-p 0.9 of that keeps 16/21 + 4/21 = 0.952
    d = distribution(LOGITS.float(), Sampling(temperature=0.5, top_k=3, top_p=0.9))
    assert torch.allclose(d.tempered, torch.tensor([16, 4, 1, 1], dtype=torch.float64) / 22, atol=1e-6)
    assert d.kept.tolist() == [True, True, False, False]
    assert torch.allclose(d.final, torch.tensor([0.8, 0.2, 0, 0], dtype=torch.float64), atol=1e-6)
    assert math.isclose(float(d.final.sum()), 1.0)


@pytest.mark.parametrize("seed", range(5))
def test_matches_hugging_faces_logits_processors(seed):
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(50, generator=g) * 3
    for t, k, p in ((0.7, 10, 0.8), (1.3, 0, 0.5), (1.0, 5, 1.0), (0.4, 20, 0.95)):
        x = TemperatureLogitsWarper(t)(None, logits[None].clone())
        if k:
            x = TopKLogitsWarper(k)(None, x)
        if p < 1:
            x = TopPLogitsWarper(p)(None, x)
        want = torch.softmax(x[0].double(), -1)
        got = distribution(logits, Sampling(temperature=t, top_k=k, top_p=p)).final
        assert torch.allclose(got, want, atol=1e-6), (t, k, p)


def test_draws_follow_the_final_distribution():
    final = torch.tensor([0.6, 0.3, 0.1, 0.0], dtype=torch.float64)
    counts = torch.bincount(torch.tensor([draw(final, 7, i) for i in range(3000)]), minlength=4)
    assert counts[3] == 0  # a token that top-k / top-p removed is never drawn
    assert torch.allclose(counts.double() / 3000, final, atol=0.03)
    assert draw(final, 7, 11) == draw(final, 7, 11)  # (seed, index) fixes the draw


@pytest.fixture(scope="module")
def gpt2():
    from interp import load_model
    from tests.fuzz.model_dirs import gpt2_dir

    return load_model(gpt2_dir())


def test_seeded_generation_is_reproducible_and_the_same_step_by_step(gpt2):
    s = Sampling(temperature=1.5, top_k=50, top_p=0.95, seed=3)
    a = generate(gpt2, "the cat", 8, s)
    b = generate(gpt2, "the cat", 8, s)
    assert [x.token_id for x in a.steps] == [x.token_id for x in b.steps] and a.text == b.text
    ids: list[int] = []
    for _ in range(8):
        ids += [x.token_id for x in generate(gpt2, "the cat", 1, s, previous=ids).steps]
    assert ids == [x.token_id for x in a.steps]
    others = {tuple(x.token_id for x in generate(gpt2, "the cat", 8, Sampling(1.5, 50, 0.95, seed)).steps)
              for seed in range(4)}
    assert len(others) > 1  # the seed matters on a flat distribution
    step = a.steps[0]
    assert step.table[0].tempered >= step.table[-1].tempered and all(0 <= r.final <= 1 for r in step.table)
    assert all(r.final == 0 for r in step.table if not r.kept)


def test_greedy_picks_the_models_argmax(gpt2):
    out = generate(gpt2, "the cat", 3, Sampling(temperature=0))
    ids = gpt2.tokenize("the cat").tokens
    for st in out.steps:
        want = int(gpt2.logits(ids)[0, -1].argmax())
        assert st.token_id == want and st.probability == 1.0
        ids = torch.cat([ids, torch.tensor([[want]])], 1)
    nd = next_distribution(gpt2, "the cat", Sampling(temperature=1.0))
    assert torch.allclose(nd.raw, torch.softmax(gpt2.logits("the cat")[0, -1].double(), -1), atol=1e-6)


def test_generation_stops_at_the_context_length(gpt2):
    prompt = "the cat " * 30  # 61 tokens with BOS; n_ctx 64
    out = generate(gpt2, prompt, 10, Sampling(seed=1))
    assert out.stopped and "context is full" in out.stopped and len(out.steps) <= 10
    assert len(gpt2.tokenize(prompt).tokens[0]) + len(out.steps) <= 64


@pytest.mark.parametrize("kw, words", [
    ({"temperature": -0.1}, "Temperature"), ({"temperature": float("nan")}, "finite"),
    ({"temperature": 1000}, "<= 100"), ({"top_k": -1}, "Top-k"), ({"top_p": 0.0}, "Top-p"),
    ({"top_p": 1.5}, "Top-p"), ({"seed": -1}, "Seed"), ({"top_k": 1.5}, "whole number"),
])
def test_bad_settings_are_clear_errors(gpt2, kw, words):
    with pytest.raises(InvalidInput, match=words):
        generate(gpt2, "the cat", 2, Sampling(**kw))


@pytest.mark.parametrize("kw, words", [({"n_tokens": 0}, "Tokens to generate"), ({"n_tokens": 10_000}, "Tokens"),
                                       ({"previous": [10_000]}, "Token ids must lie"), ({"prompt": ""}, "empty")])
def test_bad_requests_are_clear_errors(gpt2, kw, words):
    args = {"prompt": "the cat", "n_tokens": 2, **kw}
    with pytest.raises(InvalidInput, match=words):
        generate(gpt2, **args)
