"""Fourier analyses of a modular-addition model (Nanda et al. 2023): which frequencies of Z_p it computes with.

Pure functions on tensors (no I/O), plus :func:`model_fourier`, which reads those tensors from any
:class:`~interp.model.Model` (weights and one run over all pairs) and returns what the grokking experiment reports.
The basis is the real Fourier basis of Z_p: a constant row
then cos / sin of 2 pi k x / p for k = 1 .. (p - 1) / 2, every row unit-norm, so a vector's squared norm splits
exactly over frequencies. A grokked model's embedding, neurons and logits live on a few "key" frequencies:
- :func:`embedding_freq_norms` / :func:`unembedding_freq_norms`: per-frequency squared norm of W_E / W_U;
- :func:`neuron_freq_table`: each MLP neuron's activation over (a, b) in the 2-D basis, the share of its variance
  on each frequency, hence :func:`neuron_clusters` and :func:`key_frequencies`;
- :func:`restricted_and_excluded_loss`: the loss with only the key cos/sin(w(a+b)) neuron directions kept
  (restricted) or with them removed (excluded), the paper's progress measures;
- :func:`gini`: sparsity of a spectrum; :func:`sum_sq_weights`: the quantity weight decay shrinks;
- :func:`logit_key_share`: share of the logits' variance explained by cos(w(a + b - c)) for the key frequencies.

TransformerLens ships no Fourier tools for this (the paper's own notebook code is not a library), hence this module.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn.functional as F

from interp import validate
from interp.errors import InvalidInput
from interp.model import Model
from interp.sites import Site


def _check_p(p: int) -> None:
    if p < 3 or p % 2 == 0:
        raise InvalidInput(f"p must be an odd number >= 3 (a prime for modular addition), got {p}.")


def n_freqs(p: int) -> int:
    """Number of non-constant frequencies of Z_p (odd p): (p - 1) / 2."""
    return (p - 1) // 2


def fourier_basis(p: int) -> tuple[torch.Tensor, list[str]]:
    """Orthonormal real Fourier basis of Z_p as rows [p, p] and their names ("const", "cos 1", "sin 1", ...)."""
    _check_p(p)
    x = torch.arange(p, dtype=torch.float64)
    rows, names = [torch.ones(p, dtype=torch.float64)], ["const"]
    for k in range(1, n_freqs(p) + 1):
        rows += [torch.cos(2 * math.pi * k * x / p), torch.sin(2 * math.pi * k * x / p)]
        names += [f"cos {k}", f"sin {k}"]
    basis = torch.stack(rows)  # [p, p]
    return (basis / basis.norm(dim=1, keepdim=True)).float(), names


def _per_freq(sq: torch.Tensor) -> torch.Tensor:
    """Sum the cos and sin rows of each frequency: [p, ...] squared components -> [(p-1)/2, ...] (constant dropped)."""
    return sq[1::2] + sq[2::2]


def embedding_freq_norms(w_e: torch.Tensor) -> torch.Tensor:
    """Squared Fourier norm of the embedding per frequency 1..(p-1)/2, from W_E's number rows [p, d_model]."""
    basis, _ = fourier_basis(w_e.shape[0])
    comp = basis @ w_e.float()  # [p, d_model]
    return _per_freq(comp.pow(2).sum(-1))  # [n_freq]


def unembedding_freq_norms(w_u: torch.Tensor) -> torch.Tensor:
    """Squared Fourier norm of the unembedding per frequency, from W_U's number columns [d_model, p]."""
    return embedding_freq_norms(w_u.float().T)


def fourier_2d(acts: torch.Tensor, p: int) -> torch.Tensor:
    """Activations over all pairs [p*p, n] (row a*p + b) in the 2-D Fourier basis: [p, p, n] (basis_a, basis_b)."""
    basis, _ = fourier_basis(p)
    grid = acts.float().reshape(p, p, -1)  # [a, b, n]
    over_a = (basis @ grid.reshape(p, -1)).reshape(p, p, -1)  # [i, b, n]
    return torch.matmul(basis, over_a)  # [i, j, n]; two matmuls, not a [p, p, p, p] einsum intermediate


def neuron_freq_table(acts: torch.Tensor, p: int) -> torch.Tensor:
    """Share of each neuron's variance (the constant term excluded) on each frequency: [n_freq, n_neurons].

    Frequency k owns the 2-D components whose a- and b-indices are in {const, cos k, sin k} (not both constant).
    """
    comp = fourier_2d(acts, p).pow(2)  # [p, p, n]
    comp[0, 0] = 0.0
    total = comp.sum((0, 1)).clamp_min(1e-12)  # [n]
    out = []
    for k in range(1, n_freqs(p) + 1):
        idx = torch.tensor([0, 2 * k - 1, 2 * k])
        out.append(comp[idx][:, idx].sum((0, 1)) / total)
    return torch.stack(out)  # [n_freq, n]


@dataclass
class NeuronClusters:
    """Each neuron's dominant frequency (1-based), the share of its variance that frequency explains, and a
    per-frequency count of neurons above ``threshold`` (frequency 0 = not explained by one frequency)."""

    freq: torch.Tensor  # [n_neurons] 1..n_freq, or 0 below threshold
    frac: torch.Tensor  # [n_neurons]
    threshold: float

    def counts(self) -> dict[int, int]:
        vals, cnt = torch.unique(self.freq, return_counts=True)
        return {int(v): int(c) for v, c in zip(vals, cnt)}

    def table(self) -> pd.DataFrame:
        return pd.DataFrame({"neuron": range(len(self.freq)), "freq": self.freq.tolist(), "frac": self.frac.tolist()})


def neuron_clusters(acts: torch.Tensor, p: int, threshold: float = 0.85) -> NeuronClusters:
    """Assign every MLP neuron to the frequency explaining the largest share of its variance (0 if < threshold)."""
    return clusters_from_table(neuron_freq_table(acts, p), threshold)


def clusters_from_table(table: torch.Tensor, threshold: float = 0.85) -> NeuronClusters:
    """:func:`neuron_clusters` from an already computed :func:`neuron_freq_table` ``[n_freq, n_neurons]``."""
    frac, arg = table.max(0)
    freq = torch.where(frac >= threshold, arg + 1, torch.zeros_like(arg))
    return NeuronClusters(freq, frac, threshold)


def key_frequencies(clusters: NeuronClusters, min_share: float = 0.01) -> list[int]:
    """Frequencies that at least ``min_share`` of the neurons (and at least 2) are clustered on, ascending."""
    need = max(2, math.ceil(min_share * len(clusters.freq)))
    return sorted(k for k, c in clusters.counts().items() if k > 0 and c >= need)


def top_frequencies(norms: torch.Tensor, share: float = 0.9) -> list[int]:
    """The fewest frequencies (1-based, by size) whose norms sum to ``share`` of the total."""
    order = torch.argsort(norms, descending=True)
    cum = torch.cumsum(norms[order], 0) / norms.sum().clamp_min(1e-12)
    n = int((cum < share).sum()) + 1
    return sorted(int(i) + 1 for i in order[:n])


def freq_share(norms: torch.Tensor, freqs: list[int]) -> float:
    """Share of a per-frequency spectrum (index 0 = frequency 1) held by ``freqs``."""
    if not freqs:
        return 0.0
    return float(norms[torch.tensor(freqs) - 1].sum() / norms.sum().clamp_min(1e-12))


def gini(values: torch.Tensor) -> float:
    """Gini coefficient of non-negative values: 0 = all equal, -> 1 = all mass on one entry."""
    v = torch.sort(values.double().flatten().clamp_min(0)).values
    n = len(v)
    if n == 0 or float(v.sum()) == 0.0:
        return 0.0
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return float((2 * (i * v).sum() / (n * v.sum())) - (n + 1) / n)


def sum_sq_weights(params: dict[str, torch.Tensor] | list[torch.Tensor]) -> float:
    """Total sum of squared weights (what weight decay shrinks)."""
    ts = params.values() if isinstance(params, dict) else params
    return float(sum(t.double().pow(2).sum() for t in ts))


def _sum_directions(p: int, freqs: list[int]) -> torch.Tensor:
    """Unit vectors cos / sin(2 pi w (a + b) / p) over pairs (row a*p + b) for each frequency: [2 * len, p*p]."""
    a = torch.arange(p, dtype=torch.float64)[:, None]
    b = torch.arange(p, dtype=torch.float64)[None, :]
    rows = []
    for w in freqs:
        for fn in (torch.cos, torch.sin):
            v = fn(2 * math.pi * w * (a + b) / p).flatten()
            rows.append(v / v.norm())
    return torch.stack(rows).float() if rows else torch.zeros(0, p * p)


@dataclass
class RestrictedExcluded:
    """Progress-measure losses on ``mask``-selected pairs (e.g. train), plus the model's own loss there."""

    loss: float
    restricted: float
    excluded: float


def restricted_and_excluded_loss(logits: torch.Tensor, acts: torch.Tensor, w_out: torch.Tensor, w_u: torch.Tensor,
                                 labels: torch.Tensor, p: int, freqs: list[int],
                                 masks: dict[str, torch.Tensor]) -> dict[str, RestrictedExcluded]:
    """The paper's restricted and excluded losses, per named subset of the p*p pairs.

    logits [p*p, p] at '='; acts [p*p, d_mlp] (MLP post-activations at '='); w_out [d_mlp, d_model];
    w_u [d_model, p]; labels [p*p]; masks: name -> bool [p*p]. Restricted: neurons replaced by their mean plus
    their projection on the key cos/sin(w(a+b)) directions, logits through W_out W_U only, re-centred to the
    real logits' mean. Excluded: the real logits minus the neuron-path contribution of those directions.
    """
    acts = acts.float()
    dirs = _sum_directions(p, freqs)  # [2K, p*p]
    proj = dirs.T @ (dirs @ acts)  # [p*p, d_mlp], the key-direction part of the activations
    path = w_out.float() @ w_u.float()  # [d_mlp, p]
    restricted = (acts.mean(0, keepdim=True) + proj) @ path  # [p*p, p]
    restricted = restricted + logits.float().mean(0, keepdim=True) - restricted.mean(0, keepdim=True)
    excluded = logits.float() - proj @ path  # [p*p, p]

    def ce(lg: torch.Tensor, m: torch.Tensor) -> float:
        return float(F.cross_entropy(lg[m].double(), labels[m]))

    return {name: RestrictedExcluded(ce(logits.float(), m), ce(restricted, m), ce(excluded, m))
            for name, m in masks.items()}


def logit_key_share(logits: torch.Tensor, p: int, freqs: list[int], with_sin: bool = False) -> float:
    """Share of the logits' variance (each pair's logits centred over c) explained by cos(w(a + b - c)) for
    ``freqs`` (least squares; the terms are orthogonal). logits [p*p, p] in pair order a*p + b."""
    lg = logits.double().reshape(p, p, p)  # [a, b, c]
    lg = lg - lg.mean(-1, keepdim=True)
    total = float(lg.pow(2).sum())
    if total == 0.0 or not freqs:
        return 0.0
    s = (torch.arange(p)[:, None] + torch.arange(p)[None, :]) % p  # [a, b]
    m = torch.zeros(p, p, dtype=torch.float64).index_add_(0, s.flatten(), lg.reshape(p * p, p))  # [s, c]
    diff = (torch.arange(p, dtype=torch.float64)[:, None] - torch.arange(p, dtype=torch.float64)[None, :])  # [s, c]
    explained = 0.0
    for w in freqs:
        fns = (torch.cos, torch.sin) if with_sin else (torch.cos,)
        for fn in fns:
            d = fn(2 * math.pi * w * diff / p)  # [s, c]; each (s, c) cell stands for p pairs
            explained += float((m * d).sum()) ** 2 / (p * float(d.pow(2).sum()))
    return explained / total


# ----------------------------------------------------------------------------- from a model


@dataclass
class ModelFourier:
    """The Fourier picture of a modular-addition model (the grokking experiment's final analysis), read through the
    model interface: spectra, neuron clusters, key frequencies and the progress measures on the given pair subsets."""

    embed_norms: torch.Tensor  # [n_freq] squared Fourier norm of W_E's number rows
    unembed_norms: torch.Tensor  # [n_freq] of W_U's number columns
    neuron_table: torch.Tensor  # [n_freq, d_mlp] share of each neuron's variance on each frequency
    clusters: NeuronClusters
    key: list[int]  # key frequencies (from the neurons)
    top90: list[int]  # fewest frequencies carrying 90% of the embedding's norm
    embed_key_share: float
    embed_gini: float
    logit_key_share: float  # cos(w(a+b-c)) terms only
    logit_key_share_sin: float  # with the sin terms
    losses: dict[str, RestrictedExcluded]  # subset name -> loss, restricted and excluded loss
    logits: torch.Tensor  # [p*p, p] number logits at '=' (pair order a*p + b)
    acts: torch.Tensor  # [p*p, d_mlp] MLP post-activations at '='


def pair_tokens(p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every input [a, b, =] ('=' is token p) in the order a*p + b, and its label (a + b) mod p. ([p*p, 3], [p*p])"""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return torch.stack([a, b, torch.full_like(a, p)], dim=1), (a + b) % p


@torch.no_grad()
def model_fourier(model: Model, p: int, *, layer: int = 0, masks: dict[str, torch.Tensor] | None = None,
                  threshold: float = 0.85, chunk: int = 4096) -> ModelFourier:
    """Spectra and key frequencies of a model trained on (a + b) mod p with inputs ``a b =`` (numbers are tokens
    0..p-1, '=' is token p): W_E, W_U and W_out from ``model.weights()``, the MLP neurons of ``layer`` and the
    number logits at '=' from ``model.run`` over all p*p pairs. ``masks``: pair subsets (bool [p*p]) for the
    restricted / excluded losses (default: all pairs)."""
    p = validate.integer(p, "p")
    _check_p(p)
    info = model.info
    if info.d_vocab < p + 1 or info.n_ctx < 3:
        raise InvalidInput(f"{info.name} cannot read modular addition mod {p}: it needs tokens 0..{p} (numbers and "
                           f"'=') and 3 positions; it has {info.d_vocab} tokens and {info.n_ctx} positions.")
    layer = model.check_layer(layer)
    site = model.require(Site("mlp_post", layer))
    threshold = validate.number(threshold, "threshold", low=0.0, high=1.0)
    chunk = validate.count(chunk, "chunk")
    masks = masks if masks is not None else {"all": torch.ones(p * p, dtype=torch.bool)}
    if not isinstance(masks, dict) or not masks:
        raise InvalidInput("masks must name at least one pair subset: {name: bool mask over the p*p pairs}.")
    for name, m in masks.items():
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool or m.shape != (p * p,) or not bool(m.any()):
            raise InvalidInput(f"The pair subset {name!r} must be a non-empty bool mask over the {p * p} pairs.")
    masks = {name: m.cpu() for name, m in masks.items()}
    w = model.weights()
    w.check_finite(info.name, "W_E", "W_U", "W_out")
    tokens, labels = pair_tokens(p)
    logits, acts = [], []
    for lo in range(0, p * p, chunk):
        rows = tokens[lo: lo + chunk].to(model.device)  # [rows, 3]
        run = model.run(rows, read=[site], logit_positions=torch.full((len(rows),), 2))
        logits.append(run.logits[:, 0, :p].float().cpu())  # [rows, p]
        acts.append(run[site][:, 2].float().cpu())  # [rows, d_mlp]
    lg, ac = torch.cat(logits), torch.cat(acts)  # [p*p, p], [p*p, d_mlp]
    validate.finite_result(lg, f"{info.name}'s logits over the {p * p} pairs")
    validate.finite_result(ac, f"{info.name}'s MLP activations over the {p * p} pairs")
    w_e, w_u = w.W_E[:p].float().cpu(), w.W_U[:, :p].float().cpu()  # [p, d_model], [d_model, p]
    w_out = w.W_out[layer].float().cpu()  # [d_mlp, d_model]
    table = neuron_freq_table(ac, p)  # [n_freq, d_mlp]
    clusters = clusters_from_table(table, threshold)
    key = key_frequencies(clusters)
    embed = embedding_freq_norms(w_e)
    return ModelFourier(
        embed_norms=embed, unembed_norms=unembedding_freq_norms(w_u), neuron_table=table,
        clusters=clusters, key=key, top90=top_frequencies(embed, 0.9), embed_key_share=freq_share(embed, key),
        embed_gini=gini(embed), logit_key_share=logit_key_share(lg, p, key),
        logit_key_share_sin=logit_key_share(lg, p, key, with_sin=True),
        losses=restricted_and_excluded_loss(lg, ac, w_out, w_u, labels, p, key, masks), logits=lg, acts=ac)
