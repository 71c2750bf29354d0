"""One MLP neuron, as Neuroscope and TransformerLens users look at it: its activation (``mlp_post``, after the
nonlinearity) on each token of a prompt, the contexts of a token sample where it fires most, and its direct
effect on the logits: its output weights ``W_out[layer, neuron]`` read through the unembedding (the final norm's
gain folded in, its centring and per-token scale left out, as a direct-path estimate).

Attention-only models have no neurons: every function raises InvalidInput saying so.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from interp import validate
from interp.errors import InvalidInput
from interp.model import Model
from interp.sites import Site
from interp.tokens import TokenBatch


def neuron_site(model: Model, layer: int, neuron: int) -> Site:
    """``Site("mlp_post", layer)`` after checking the model has MLP neurons and ``neuron`` exists."""
    if model.info.attn_only or not model.info.d_mlp:
        raise InvalidInput(f"{model.info.name} is attention-only: it has no MLP neurons.")
    site = model.require(Site("mlp_post", model.check_layer(layer)))
    validate.integer(neuron, "Neuron")
    if not 0 <= int(neuron) < model.info.d_mlp:
        raise InvalidInput(f"Neuron {neuron} does not exist: layer {layer} has neurons 0..{model.info.d_mlp - 1}.")
    return site


@dataclass
class NeuronOnPrompt:
    layer: int
    neuron: int
    token_ids: list[int]
    acts: np.ndarray  # [pos] the neuron's mlp_post activation at each token

    @property
    def peak(self) -> int:
        return int(np.argmax(self.acts))


def neuron_on_prompt(model: Model, prompt: str | TokenBatch, layer: int, neuron: int) -> NeuronOnPrompt:
    """The neuron's activation at every token of one prompt (one forward pass, stopped at the neuron's layer)."""
    site = neuron_site(model, layer, neuron)
    batch = model.tokenize(prompt)
    acts = model.run(batch, read=[site], stop_after=site)[site][0, : int(batch.lengths[0]), int(neuron)]  # [pos]
    return NeuronOnPrompt(int(layer), int(neuron), batch.tokens[0, : int(batch.lengths[0])].tolist(),
                          acts.float().cpu().numpy())


@torch.no_grad()
def layer_activations(model: Model, tokens: torch.Tensor, layer: int, batch_size: int = 16) -> torch.Tensor:
    """``[n_seq, pos, d_mlp]`` float16 ``mlp_post`` activations of one layer on a token sample ``[n_seq, pos]``
    (computed once, then any neuron's top contexts are a lookup)."""
    site = neuron_site(model, layer, 0)
    out = []
    for start in range(0, tokens.shape[0], batch_size):
        chunk = tokens[start:start + batch_size]
        out.append(model.run(chunk, read=[site], stop_after=site)[site].to(torch.float16).cpu())
    return torch.cat(out)


@dataclass
class NeuronContext:
    seq: int
    pos: int
    activation: float
    token_ids: list[int]  # the window around the peak
    acts: list[float]  # the neuron's activation on each window token
    centre: int  # index of the peak within the window


def top_contexts(acts: torch.Tensor, tokens: torch.Tensor, neuron: int, n: int = 8,
                 window: int = 12) -> list[NeuronContext]:
    """The ``n`` sample sequences where ``neuron`` peaks highest (one context per sequence): ``acts`` is
    :func:`layer_activations`' ``[n_seq, pos, d_mlp]``, ``tokens`` the sample ``[n_seq, pos]``."""
    if not 0 <= int(neuron) < acts.shape[-1]:
        raise InvalidInput(f"Neuron {neuron} does not exist: neurons 0..{acts.shape[-1] - 1}.")
    a = acts[..., int(neuron)].float()  # [n_seq, pos]
    best, where = a.max(dim=1)  # [n_seq]
    out = []
    for s in torch.argsort(best, descending=True, stable=True)[:n].tolist():
        p = int(where[s])
        lo, hi = max(0, p - window), min(a.shape[1], p + 4)
        out.append(NeuronContext(s, p, float(best[s]), tokens[s, lo:hi].tolist(), a[s, lo:hi].tolist(), p - lo))
    return out


def activation_summary(acts: torch.Tensor, neuron: int) -> dict[str, float]:
    """Max, mean and the share of sample tokens where the neuron's activation is positive."""
    a = acts[..., int(neuron)].float()
    return {"max": float(a.max()), "mean": float(a.mean()), "positive_share": float((a > 0).float().mean())}


@dataclass
class NeuronLogits:
    promoted: list[tuple[int, float]]  # (token id, effect) largest first
    suppressed: list[tuple[int, float]]  # most negative first
    values: np.ndarray  # [d_vocab] W_out[layer, neuron] @ W_U, centred over the vocabulary


def neuron_logits(model: Model, layer: int, neuron: int, k: int = 10) -> NeuronLogits:
    """The tokens whose logits this neuron's output direction raises and lowers most: ``W_out[layer, neuron] @
    W_U`` with the final norm's gain folded in, centred (a constant shift of every logit changes nothing)."""
    neuron_site(model, layer, neuron)
    w = model.weights()
    if w.W_out is None:
        raise InvalidInput(f"{model.info.name} exposes no MLP output weights.")
    direction = w.W_out[int(layer), int(neuron)].float()  # [d_model]
    if w.ln_final_w is not None:
        direction = direction * w.ln_final_w.float()
    values = direction @ w.W_U.float()  # [d_vocab]
    values = values - values.mean()
    k = min(validate.count(k, "k", low=1), values.numel())
    top, bottom = values.topk(k), (-values).topk(k)
    return NeuronLogits([(int(i), float(v)) for v, i in zip(top.values, top.indices)],
                        [(int(i), float(-v)) for v, i in zip(bottom.values, bottom.indices)], values.numpy())


def prompt_neurons(model: Model, prompt: str | TokenBatch, k: int = 20) -> list[dict]:
    """The ``k`` neurons (any layer) with the highest activation anywhere on the prompt: one forward pass reading
    every layer's ``mlp_post``; rows of (layer, neuron, max activation, position)."""
    if model.info.attn_only or not model.info.d_mlp:
        raise InvalidInput(f"{model.info.name} is attention-only: it has no MLP neurons.")
    sites = model.sites("mlp_post")
    batch = model.tokenize(prompt)
    n = int(batch.lengths[0])
    run = model.run(batch, read=sites, stop_after=sites[-1])
    acts = torch.stack([run[s][0, :n].float() for s in sites])  # [layer, pos, d_mlp]
    best, where = acts.max(dim=1)  # [layer, d_mlp]
    k = min(validate.count(k, "k", low=1), best.numel())
    top = best.flatten().topk(k)
    d_mlp = best.shape[1]
    return [{"layer": int(i) // d_mlp, "neuron": int(i) % d_mlp, "max activation": float(v),
             "position": int(where.flatten()[i])} for v, i in zip(top.values, top.indices)]
