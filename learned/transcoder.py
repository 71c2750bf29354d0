"""Transcoders: sparse replacements of a model's MLPs, per layer (PLT) or cross-layer (CLT), and their metrics.

A transcoder reads the MLP's input at each layer and predicts the MLP's output (Dunefsky et al. 2024; Ameisen
et al. 2025, "Circuit Tracing"). Two kinds, one module:

- ``"per_layer"`` (PLT): layer l's features read layer l's MLP input and write layer l's MLP output only.
- ``"cross_layer"`` (CLT): layer l's features read layer l's MLP input and write the MLP outputs of layers
  l, l+1, ..., L-1 (each a decoder of its own); layer l' is reconstructed by the features of every layer <= l'.

Every layer's encoder is ``pre = x W_enc[l] + b_enc[l]``, its features ``a = act(pre)``; the decoder of source
layer l is ``W_dec[l]`` ``[d_transcoder, n_out, d_model]`` (n_out = 1 for a PLT, L - l for a CLT), and output
layer l' is ``sum_{l <= l'} a_l W_dec[l][:, l' - l] + b_dec[l']``.

Activations (``Activation``): ``"topk"`` (what we train: the k largest pre-activations of each layer, then ReLU),
``"relu"`` (a hand-built exact transcoder of a ReLU MLP: :func:`transcoder_from_mlp`) and ``"jumprelu"``
(``pre * (pre > threshold)``: circuit-tracer's and GemmaScope's transcoders, loaded for inference only).
We train TopK rather than JumpReLU with the tanh sparsity penalty because (1) L0 is exactly k, so a CLT and a
PLT are compared at matched L0 by construction (Ameisen et al.'s comparison), (2) there is no penalty
coefficient or straight-through bandwidth to tune on a CPU budget, and (3) on a given prompt the attribution
graph linearises both the same way: the active set is fixed and each active feature's activation equals its
pre-activation. TopK's coupling between features (a feature's rank depends on the others) is frozen with the
active set, as circuit-tracer freezes JumpReLU's.

The input is a site kind of the model interface (``"ln2_normalized"``: the MLP's input before the norm's gain
and bias, for models with a norm; ``"resid_mid"`` for models without one); the output is ``"mlp_out"``.
Pure module (no I/O); files are :mod:`learned.transcoder_files`. We write our own rather than use SAELens's or
circuit-tracer's classes because neither can be installed beside this workbench's pinned versions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F

from interp.errors import InvalidInput
from interp.sites import Site, sites

TranscoderKind = Literal["per_layer", "cross_layer"]
Activation = Literal["topk", "relu", "jumprelu"]
InputKind = Literal["ln2_normalized", "resid_mid"]
KINDS: tuple[str, ...] = get_args(TranscoderKind)
ACTIVATIONS: tuple[str, ...] = get_args(Activation)
INPUT_KINDS: tuple[str, ...] = get_args(InputKind)


@dataclass
class TranscoderConfig:
    """Shape, kind and provenance of a transcoder set (the ``cfg.json`` of :mod:`learned.transcoder_files`)."""

    kind: TranscoderKind
    n_layers: int
    d_model: int
    d_transcoder: int  # features per layer
    activation: Activation = "topk"
    k: int = 0  # TopK: features kept per layer and token
    input_kind: InputKind = "ln2_normalized"
    model_name: str = ""
    model_sha256: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # how it was trained, measured metrics

    def check(self) -> TranscoderConfig:
        if self.kind not in KINDS:
            raise InvalidInput(f"Transcoder kind must be one of {', '.join(KINDS)}, got {self.kind!r}.")
        if self.activation not in ACTIVATIONS:
            raise InvalidInput(f"Transcoder activation must be one of {', '.join(ACTIVATIONS)}, "
                               f"got {self.activation!r}.")
        if self.input_kind not in INPUT_KINDS:
            raise InvalidInput(f"A transcoder reads one of {', '.join(INPUT_KINDS)}, got {self.input_kind!r}.")
        for name in ("n_layers", "d_model", "d_transcoder"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InvalidInput(f"Transcoder {name} must be a positive whole number, got {v!r}.")
        if self.activation == "topk" and not 1 <= self.k <= self.d_transcoder:
            raise InvalidInput(f"A TopK transcoder needs 1 <= k <= d_transcoder ({self.d_transcoder}), got "
                               f"k={self.k}.")
        return self

    def n_out(self, layer: int) -> int:
        """How many output layers source layer ``layer`` writes (1 for a PLT, L - layer for a CLT)."""
        return 1 if self.kind == "per_layer" else self.n_layers - layer


class Transcoder(torch.nn.Module):
    """A set of transcoders, one encoder per layer, replacing every MLP of a model (see the module docstring)."""

    def __init__(self, cfg: TranscoderConfig, *, seed: int = 0):
        super().__init__()
        self.cfg = cfg.check()
        L, d, f = cfg.n_layers, cfg.d_model, cfg.d_transcoder
        gen = torch.Generator().manual_seed(seed)
        decs = []
        for layer in range(L):
            w = torch.randn(f, cfg.n_out(layer), d, generator=gen)  # [d_tc, n_out, d_model]
            decs.append(torch.nn.Parameter(w / w.flatten(1).norm(dim=1)[:, None, None]))
        self.W_dec = torch.nn.ParameterList(decs)
        enc = torch.randn(L, d, f, generator=gen) / math.sqrt(d)  # [layer, d_model, d_tc]
        self.W_enc = torch.nn.Parameter(enc)
        self.b_enc = torch.nn.Parameter(torch.zeros(L, f))
        self.b_dec = torch.nn.Parameter(torch.zeros(L, d))
        self.register_buffer("threshold", torch.zeros(L, f))  # JumpReLU only  # [layer, d_tc]

    # ------------------------------------------------------------------ forward

    def pre_acts(self, x: torch.Tensor, layer: int | None = None) -> torch.Tensor:
        """Encoder pre-activations: ``x [..., L, d_model] -> [..., L, d_tc]``, or one layer's
        ``x [..., d_model] -> [..., d_tc]`` when ``layer`` is given."""
        if layer is None:
            return torch.einsum("...ld,ldf->...lf", x, self.W_enc) + self.b_enc
        return x @ self.W_enc[layer] + self.b_enc[layer]

    def activate(self, pre: torch.Tensor, layer: int | None = None) -> torch.Tensor:
        """Feature activations from pre-activations (TopK per layer over the last dimension)."""
        act = self.cfg.activation
        if act == "topk":
            top = pre.topk(self.cfg.k, dim=-1)
            return torch.zeros_like(pre).scatter_(-1, top.indices, F.relu(top.values))
        if act == "relu":
            return F.relu(pre)
        th = self.threshold if layer is None else self.threshold[layer]
        return pre * (pre > th)

    def encode(self, x: torch.Tensor, layer: int | None = None) -> torch.Tensor:
        """Feature activations of inputs (all layers ``[..., L, d_tc]`` or one layer ``[..., d_tc]``)."""
        return self.activate(self.pre_acts(x, layer), layer)

    def decode(self, acts: torch.Tensor) -> torch.Tensor:
        """``acts [..., L, d_tc] -> [..., L, d_model]``: every layer's reconstructed MLP output."""
        L, d = self.cfg.n_layers, self.cfg.d_model
        outs = [self.b_dec[layer].expand(*acts.shape[:-2], d) for layer in range(L)]
        per_layer = acts.unbind(-2)  # views; the backward stacks once (a select per layer would zero-fill L times)
        for src in range(L):
            n_out = self.cfg.n_out(src)
            w = self.W_dec[src].reshape(self.cfg.d_transcoder, n_out * d)  # [d_tc, n_out * d]
            written = (per_layer[src] @ w).reshape(*acts.shape[:-2], n_out, d)  # [..., n_out, d]
            for j, out_layer in enumerate(self.output_layers(src)):
                outs[out_layer] = outs[out_layer] + written[..., j, :]
        return torch.stack(outs, dim=-2)

    def topk(self, pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """TopK's active set in sparse form: ``(values, indices)`` ``[..., L, k]`` (values after the ReLU)."""
        top = pre.topk(self.cfg.k, dim=-1)
        return F.relu(top.values), top.indices

    def decode_sparse(self, values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """:meth:`decode` of TopK activations given sparsely (``[rows, L, k]`` each): each layer's decoder rows are
        gathered and summed (``embedding_bag``), k rows per token instead of a dense [rows, d_tc] product."""
        L, d = self.cfg.n_layers, self.cfg.d_model
        rows = values.shape[0]
        outs = [self.b_dec[layer].expand(rows, d) for layer in range(L)]
        vals, idxs = values.unbind(1), indices.unbind(1)
        for src in range(L):
            n_out = self.cfg.n_out(src)
            w = self.W_dec[src].reshape(self.cfg.d_transcoder, n_out * d)  # [d_tc, n_out * d]
            written = F.embedding_bag(idxs[src], w, per_sample_weights=vals[src], mode="sum").reshape(rows, n_out, d)
            for j, out_layer in enumerate(self.output_layers(src)):
                outs[out_layer] = outs[out_layer] + written[:, j]
        return torch.stack(outs, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [..., L, d_model]`` (every layer's MLP input) -> ``[..., L, d_model]`` (every MLP output)."""
        return self.decode(self.encode(x))

    def decoder_vectors(self, layer: int, features: torch.Tensor) -> torch.Tensor:
        """What features of source ``layer`` write, per unit activation: ``[n, n_out, d_model]``; entry j is
        output layer ``layer + j`` for a CLT (``layer`` for a PLT)."""
        return self.W_dec[layer][features]

    def output_layers(self, layer: int) -> list[int]:
        """The output layers source ``layer`` writes, in the order of :meth:`decoder_vectors`."""
        return [layer] if self.cfg.kind == "per_layer" else list(range(layer, self.cfg.n_layers))

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Unit-norm decoder rows (a CLT's row: its vectors to every output layer together), as TopK training
        keeps them; activations carry the magnitude."""
        for w in self.W_dec:
            w.div_(w.flatten(1).norm(dim=1).clamp_min(1e-8)[:, None, None])

    @torch.no_grad()
    def fold_scales(self, in_scale: torch.Tensor, out_scale: torch.Tensor) -> None:
        """Make a transcoder trained on ``x * in_scale[l]`` -> ``y * out_scale[l]`` read raw x and write raw y
        (``in_scale``, ``out_scale`` [L]); the features and their ranks are unchanged."""
        self.W_enc.mul_(in_scale[:, None, None])
        for src in range(self.cfg.n_layers):
            outs = torch.tensor(self.output_layers(src))
            self.W_dec[src].div_(out_scale[outs][None, :, None])
        self.b_dec.div_(out_scale[:, None])

    @property
    def n_features(self) -> int:
        return self.cfg.n_layers * self.cfg.d_transcoder


# ---------------------------------------------------------------------------- a hand-built exact transcoder


def transcoder_from_mlp(weights: Any, info: Any) -> Transcoder:
    """The exact per-layer transcoder of a model whose MLPs are ``ReLU(LN2(x) W_in + b_in) W_out + b_out``: the
    features are the MLP's neurons (``weights``: :class:`interp.model.Weights`, ``info``: ``ModelInfo``).

    With the input ``ln2_normalized`` (the norm's output before its gain and bias) the gain and bias fold into
    the encoder: ``W_enc = diag(ln2_w) W_in``, ``b_enc = ln2_b W_in + b_in``. Only ReLU MLPs (not gated) are
    exact transcoders; anything else is InvalidInput.
    """
    if info.attn_only or weights.W_in is None or weights.W_out is None:
        raise InvalidInput(f"{info.name} has no MLPs to turn into a transcoder.")
    if info.act_fn != "relu" or info.gated_mlp:
        raise InvalidInput(f"{info.name}'s MLPs use {info.act_fn or 'an unknown activation'}"
                           f"{' (gated)' if info.gated_mlp else ''}; only ReLU MLPs are exact transcoders.")
    L, d, f = info.n_layers, info.d_model, weights.W_in.shape[-1]
    has_norm = info.norm is not None
    cfg = TranscoderConfig("per_layer", L, d, f, activation="relu",
                           input_kind="ln2_normalized" if has_norm else "resid_mid", model_name=info.name,
                           model_sha256=info.sha256, extra={"made_by": "transcoder_from_mlp (exact)"})
    tc = Transcoder(cfg)
    with torch.no_grad():
        w_in = weights.W_in.to(torch.float32)  # [layer, d_model, d_mlp]
        b_in = weights.b_in.to(torch.float32) if weights.b_in is not None else torch.zeros(L, f)
        if has_norm and weights.ln2_w is not None:
            enc = weights.ln2_w[:, :, None].to(torch.float32) * w_in
            b = b_in + (torch.einsum("ld,ldf->lf", weights.ln2_b.to(torch.float32), w_in)
                        if weights.ln2_b is not None else 0.0)
        else:
            enc, b = w_in, b_in
        tc.W_enc.copy_(enc)
        tc.b_enc.copy_(b)
        for layer in range(L):
            tc.W_dec[layer].copy_(weights.W_out[layer].to(torch.float32)[:, None, :])
        tc.b_dec.copy_(weights.b_out.to(torch.float32) if weights.b_out is not None else torch.zeros(L, d))
    return tc


# ---------------------------------------------------------------------------- metrics


def normalized_mse(y: torch.Tensor, y_hat: torch.Tensor) -> torch.Tensor:
    """Per layer: sum of squared errors / sum of squares about the mean, over rows ``y [rows, L, d]`` -> ``[L]``
    (0 is perfect; 1 - this is the variance explained)."""
    resid = (y - y_hat).pow(2).sum(dim=(0, 2))
    total = (y - y.mean(0, keepdim=True)).pow(2).sum(dim=(0, 2))
    return resid / total.clamp_min(1e-12)


def l0_per_layer(acts: torch.Tensor) -> torch.Tensor:
    """Mean active features per token at each layer: ``acts [rows, L, d_tc] -> [L]``."""
    return (acts > 0).float().sum(-1).mean(0)


def io_sites(cfg: TranscoderConfig) -> tuple[list[Site], list[Site]]:
    """(the input site of every layer, every layer's ``mlp_out``) that a transcoder set reads and replaces."""
    return sites(cfg.input_kind, range(cfg.n_layers)), sites("mlp_out", range(cfg.n_layers))
