"""Fourier probes find planted frequencies and measure what the paper measures."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from probes.fourier.modular import (
    embedding_freq_norms,
    fourier_basis,
    freq_share,
    gini,
    key_frequencies,
    logit_key_share,
    neuron_clusters,
    restricted_and_excluded_loss,
    sum_sq_weights,
    top_frequencies,
    unembedding_freq_norms,
)

P = 23


def _planted_embedding(freqs, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.arange(P, dtype=torch.float32)[:, None]
    w = torch.zeros(P, d)
    for k in freqs:
        w += torch.cos(2 * math.pi * k * x / P) @ torch.randn(1, d, generator=g)
        w += torch.sin(2 * math.pi * k * x / P) @ torch.randn(1, d, generator=g)
    return w


def _pairs():
    a = torch.arange(P).repeat_interleave(P)
    b = torch.arange(P).repeat(P)
    return a, b, (a + b) % P


def test_basis_is_orthonormal():
    basis, names = fourier_basis(P)
    assert torch.allclose(basis @ basis.T, torch.eye(P), atol=1e-5)
    assert names[:3] == ["const", "cos 1", "sin 1"] and len(names) == P


def test_planted_embedding_frequencies_are_detected():
    w = _planted_embedding([3, 7])
    norms = embedding_freq_norms(w)
    assert top_frequencies(norms, 0.999) == [3, 7]
    assert freq_share(norms, [3, 7]) > 0.999
    assert top_frequencies(unembedding_freq_norms(w.T), 0.999) == [3, 7]
    assert gini(norms) > 0.8 > 0.5 > gini(embedding_freq_norms(torch.randn(P, 16)))


def _key_model(freqs, d_mlp=40, seed=0):
    """Neurons that are pure cos/sin(w(a+b)) for the key freqs (plus a constant), read out by random W_out W_U."""
    g = torch.Generator().manual_seed(seed)
    a, b, labels = _pairs()
    acts = torch.full((P * P, d_mlp), 0.3)
    for n in range(d_mlp):
        w = freqs[n % len(freqs)]
        phase = float(torch.rand(1, generator=g)) * 6.28
        acts[:, n] += torch.cos(2 * math.pi * w * (a + b) / P + phase)
    w_out, w_u = torch.randn(d_mlp, 8, generator=g), torch.randn(8, P, generator=g)
    return acts, w_out, w_u, labels


def test_neurons_cluster_on_their_planted_frequency():
    acts, *_ = _key_model([2, 5])
    cl = neuron_clusters(acts, P)
    assert cl.freq.tolist() == [2, 5] * 20 and bool((cl.frac > 0.99).all())
    assert key_frequencies(cl) == [2, 5]


def _solving_model(freqs, scale=3.0):
    """Neurons cos/sin(w(a+b)) + 0.5 read out by W_U rows cos/sin(wc): logits = scale^2 sum_w cos(w(a+b-c))."""
    a, b, labels = _pairs()
    c = torch.arange(P, dtype=torch.float32)
    acts, w_u = [], []
    for w in freqs:
        for fn in (torch.cos, torch.sin):
            acts.append(scale * fn(2 * math.pi * w * (a + b) / P) + 0.5)
            w_u.append(scale * fn(2 * math.pi * w * c / P))
    return torch.stack(acts, 1), torch.eye(len(acts)), torch.stack(w_u), labels


def test_restricted_loss_of_a_key_frequency_model_equals_its_loss_and_excluded_keeps_only_the_mean():
    acts, w_out, w_u, labels = _solving_model([2, 5])
    logits = acts @ w_out @ w_u
    mask = torch.ones(P * P, dtype=torch.bool)
    r = restricted_and_excluded_loss(logits, acts, w_out, w_u, labels, P, [2, 5], {"all": mask})["all"]
    assert abs(r.restricted - r.loss) < 1e-4
    const = (acts.mean(0) @ w_out @ w_u).expand(P * P, P)  # only the mean activation is left
    assert abs(r.excluded - float(F.cross_entropy(const.double(), labels))) < 1e-4
    wrong = restricted_and_excluded_loss(logits, acts, w_out, w_u, labels, P, [3], {"all": mask})["all"]
    assert r.loss < 0.5 < math.log(P) - 0.5 < r.excluded
    assert abs(wrong.excluded - r.loss) < 1e-4 and wrong.restricted > r.restricted + 1.0


def test_logit_share_of_planted_cos_terms():
    a, b, _ = _pairs()
    c = torch.arange(P)
    pure = sum(torch.cos(2 * math.pi * w * (a[:, None] + b[:, None] - c[None]) / P) * amp
               for w, amp in ((4, 2.0), (9, 1.0)))  # [p*p, p]
    assert abs(logit_key_share(pure + 5.0, P, [4, 9]) - 1.0) < 1e-6
    assert abs(logit_key_share(pure, P, [4]) - 0.8) < 1e-6  # 2^2 / (2^2 + 1^2)
    noise = torch.randn(P * P, P, generator=torch.Generator().manual_seed(0))
    assert logit_key_share(noise, P, [4, 9]) < 0.05


def test_sum_sq_weights_and_ce_sanity():
    assert sum_sq_weights({"a": torch.ones(3), "b": 2 * torch.ones(2)}) == 11.0
    assert abs(float(F.cross_entropy(torch.zeros(4, P), torch.zeros(4, dtype=torch.long))) - math.log(P)) < 1e-6
