"""Sparse autoencoders (SAEs): a ReLU SAE with decoder-norm-weighted L1 and a TopK SAE, and their metrics.

Two architectures, chosen by ``SAEConfig.architecture``:

- ``"standard"`` (ReLU; Anthropic, "Towards Monosemanticity" 2023, with the April 2024 "update on training"):
  ``f = ReLU((x - b_dec) W_enc + b_enc)``, ``x_hat = f W_dec + b_dec``; loss = squared error + lambda *
  sum_i f_i ||W_dec[i]|| (the L1 weighted by each decoder row's norm, so shrinking the code by growing the
  decoder does not pay). Use it when you want a sparsity *penalty* you can tune (L0 follows lambda).
- ``"topk"`` (Gao et al. 2024, "Scaling and evaluating sparse autoencoders"): keep the k largest
  pre-activations (then ReLU), no sparsity penalty; L0 is exactly k. Easier to tune; dead latents are
  revived with the auxiliary-k loss (:func:`aux_k_loss`), which we also apply to the ReLU SAE.

Metrics on activations: :func:`l0`, :func:`variance_explained`, :func:`latent_fractions` (dead and dense latents),
:func:`mmcs` (mean max cosine similarity to known features). Splicing an SAE into a model's forward pass (CE loss
recovered, KL) is an analysis: :mod:`probes.features.splice`.

The module is pure (no I/O): :meth:`SparseAutoencoder.to_saelens` / :meth:`SparseAutoencoder.from_saelens`
convert to and from the SAELens on-disk dictionaries that :mod:`learned.sae_files` writes and reads.
TransformerLens 4's ``HookedSAE`` is inference-only and tied to ``HookedTransformer``; this one trains, and
is spliced in at its site (``cfg.hook_name``, a TransformerLens hook name) on any backend.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F

from interp.errors import InvalidInput

Architecture = Literal["standard", "topk"]  # SAELens's names: ReLU + L1 ("standard") or TopK
ARCHITECTURES: tuple[str, ...] = ("standard", "topk")
#: A latent firing on more than this share of tokens is "dense" (Anthropic's feature-density plots: > 10%).
DENSE_THRESHOLD = 0.1


@dataclass
class SAEConfig:
    """Shape, architecture and provenance of an SAE (the SAELens ``cfg.json`` fields; see learned.sae_files)."""

    d_in: int
    d_sae: int
    architecture: Architecture = "standard"
    k: int = 0  # TopK: latents kept per token (0 for the ReLU SAE)
    hook_name: str = ""
    hook_layer: int = -1
    model_name: str = ""
    context_size: int = 0
    dtype: str = "float32"
    device: str = "cpu"
    apply_b_dec_to_input: bool = True
    normalize_activations: str = "none"  # scaling is folded into the weights when saved (SAELens "none")
    extra: dict[str, Any] = field(default_factory=dict)  # training record (tokens, l1 coefficient, metrics)

    def check(self) -> SAEConfig:
        if self.architecture not in ARCHITECTURES:
            raise InvalidInput(f"SAE architecture must be one of {', '.join(ARCHITECTURES)}, "
                               f"got {self.architecture!r}.")
        if self.d_in < 1 or self.d_sae < 1:
            raise InvalidInput(f"SAE sizes must be positive (d_in={self.d_in}, d_sae={self.d_sae}).")
        if self.architecture == "topk" and not 1 <= self.k <= self.d_sae:
            raise InvalidInput(f"A TopK SAE needs 1 <= k <= d_sae ({self.d_sae}), got k={self.k}.")
        return self


class SparseAutoencoder(torch.nn.Module):
    """An SAE over ``d_in``-dimensional activations with ``d_sae`` latents (SAELens parameter names)."""

    def __init__(self, cfg: SAEConfig, *, seed: int = 0, init_norm: float = 0.1):
        super().__init__()
        self.cfg = cfg.check()
        gen = torch.Generator().manual_seed(seed)
        # Anthropic April 2024: decoder rows in random directions with small norm, encoder = decoder^T.
        w_dec = torch.randn(cfg.d_sae, cfg.d_in, generator=gen)  # [d_sae, d_in]
        w_dec = w_dec / w_dec.norm(dim=1, keepdim=True) * (1.0 if cfg.architecture == "topk" else init_norm)
        self.W_dec = torch.nn.Parameter(w_dec)
        self.W_enc = torch.nn.Parameter(w_dec.t().clone())  # [d_in, d_sae]
        self.b_enc = torch.nn.Parameter(torch.zeros(cfg.d_sae))
        self.b_dec = torch.nn.Parameter(torch.zeros(cfg.d_in))

    # ------------------------------------------------------------------ forward

    def pre_acts(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder pre-activations [..., d_sae]."""
        x = x - self.b_dec if self.cfg.apply_b_dec_to_input else x
        return x @ self.W_enc + self.b_enc

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        if self.cfg.architecture == "topk":
            top = pre.topk(self.cfg.k, dim=-1)
            return torch.zeros_like(pre).scatter_(-1, top.indices, F.relu(top.values))
        return F.relu(pre)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent activations [..., d_sae] of activations x [..., d_in]."""
        return self.activate(self.pre_acts(x))

    def decode(self, acts: torch.Tensor) -> torch.Tensor:
        """Reconstruction [..., d_in] of latent activations [..., d_sae]."""
        return acts @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Unit-norm decoder rows (TopK training keeps them so; the ReLU SAE's norms are in its penalty)."""
        self.W_dec.div_(self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8))

    @torch.no_grad()
    def fold_input_scale(self, scale: float) -> None:
        """Make an SAE trained on ``x * scale`` take raw ``x``: the same latents, the reconstruction unscaled."""
        self.W_enc.mul_(scale)
        self.W_dec.div_(scale)
        self.b_dec.div_(scale)

    @property
    def decoder_directions(self) -> torch.Tensor:
        """Unit decoder rows [d_sae, d_in]: what each latent writes into the residual stream."""
        return self.W_dec / self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8)

    # ------------------------------------------------------------------ SAELens format

    def to_saelens(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """``(cfg.json dict, safetensors dict)`` in SAELens's names (see learned.sae_files for the format)."""
        c = self.cfg
        cfg = {"architecture": c.architecture, "d_in": c.d_in, "d_sae": c.d_sae, "dtype": c.dtype, "device": c.device,
               "model_name": c.model_name, "hook_name": c.hook_name, "hook_layer": c.hook_layer,
               "hook_head_index": None, "activation_fn_str": "topk" if c.architecture == "topk" else "relu",
               "activation_fn_kwargs": {"k": c.k} if c.architecture == "topk" else {},
               "apply_b_dec_to_input": c.apply_b_dec_to_input, "finetuning_scaling_factor": False,
               "context_size": c.context_size, "prepend_bos": False, "normalize_activations": c.normalize_activations,
               "dataset_path": "", "dataset_trust_remote_code": False, "sae_lens_training_version": None,
               "neuronpedia_id": None, "model_from_pretrained_kwargs": {}, "reshape_activations": "none",
               "metadata": {"model_name": c.model_name, "hook_name": c.hook_name, "hook_layer": c.hook_layer,
                            "context_size": c.context_size, "prepend_bos": False},
               "workbench": c.extra}
        if c.architecture == "topk":
            cfg["k"] = c.k
        tensors = {name: p.detach().to(torch.float32).contiguous().clone()
                   for name, p in (("W_enc", self.W_enc), ("b_enc", self.b_enc), ("W_dec", self.W_dec),
                                   ("b_dec", self.b_dec))}
        return cfg, tensors

    @classmethod
    def from_saelens(cls, cfg: Any, tensors: dict[str, torch.Tensor]) -> SparseAutoencoder:
        """Rebuild from a SAELens ``cfg.json`` dict and its weights (v3-v6 field layouts), every field and tensor
        checked (:func:`config_from_saelens`, :func:`check_tensors`) before anything is allocated."""
        c = config_from_saelens(cfg)
        check_tensors(c, tensors)
        sae = cls(c)
        with torch.no_grad():
            for name in WEIGHT_SHAPES:
                getattr(sae, name).copy_(tensors[name].to(torch.float32))
        return sae


# ---------------------------------------------------------------------------- the SAELens format, checked

#: The four tensors of a SAELens SAE and their shapes in terms of the config's sizes.
WEIGHT_SHAPES = {"W_enc": ("d_in", "d_sae"), "b_enc": ("d_sae",), "W_dec": ("d_sae", "d_in"), "b_dec": ("d_in",)}
#: Largest width accepted from a file (latents x inputs must also fit the weights the file holds).
MAX_SAE_DIM = 1 << 24


def _field(cfg: dict[str, Any], name: str, default: Any) -> Any:
    """A field from the top level or SAELens 6's ``metadata`` block."""
    meta = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    return cfg.get(name, meta.get(name, default))


def _int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"The SAE's cfg.json has {name} = {json.dumps(value)[:40]}; expected a whole number "
                           f"from {low} to {high}.")
    return value


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"The SAE's cfg.json has {name} = {json.dumps(value)[:40]}; expected true or false.")
    return value


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) > 1000:
        raise InvalidInput(f"The SAE's cfg.json has {name} = {json.dumps(value)[:40]}; expected text.")
    return value


def _null_or(cfg: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    """An optional field: absent or null gives ``default``; else it must be a ``kind`` (no falsy stand-ins: 0 or
    "" where an object belongs is an error, not "nothing")."""
    value = cfg.get(name)
    if value is None:
        return default
    if not isinstance(value, kind):
        want = {dict: "an object", str: "text"}.get(kind, kind.__name__)
        raise InvalidInput(f"The SAE's cfg.json has {name} = {json.dumps(value)[:40]}; expected {want} or null.")
    return value


def config_from_saelens(cfg: Any) -> SAEConfig:
    """A checked :class:`SAEConfig` from a SAELens ``cfg.json`` dict: every field of the wrong type (a string
    where a number belongs, null, NaN, a list), out of range or unsupported is an InvalidInput naming it."""
    if not isinstance(cfg, dict):
        raise InvalidInput("The SAE's cfg.json is not a JSON object of settings.")
    for required in ("d_in", "d_sae", "hook_name"):
        if _field(cfg, required, None) is None:
            raise InvalidInput(f"The SAE's cfg.json lacks {required}.")
    d_in, d_sae = _int("d_in", cfg["d_in"], 1, MAX_SAE_DIM), _int("d_sae", cfg["d_sae"], 1, MAX_SAE_DIM)
    arch = _text("architecture", cfg.get("architecture", "standard"))
    kwargs = _null_or(cfg, "activation_fn_kwargs", dict, {})
    fn_str = _null_or(cfg, "activation_fn_str", str, "")
    k_raw = cfg.get("k") if cfg.get("k") is not None else kwargs.get("k", 0)
    if arch == "standard" and fn_str == "topk":  # SAELens < 6 wrote TopK this way
        arch = "topk"
    if arch not in ARCHITECTURES:
        raise InvalidInput(f"This SAE's architecture {arch[:40]!r} is not supported here; supported: "
                           f"{', '.join(ARCHITECTURES)}.")
    k = _int("k", k_raw, 1 if arch == "topk" else 0, d_sae)
    if cfg.get("normalize_activations", "none") not in ("none", None):
        raise InvalidInput(f"SAEs with normalize_activations={str(cfg['normalize_activations'])[:40]!r} are not "
                           "supported; fold the scaling into the weights first (normalize_activations='none').")
    layer = _field(cfg, "hook_layer", -1)
    extra = _null_or(cfg, "workbench", dict, {})
    hook = _text("hook_name", _field(cfg, "hook_name", ""))
    if not hook.strip():
        raise InvalidInput("The SAE's cfg.json has an empty hook_name; it must name the hook the SAE reads.")
    model_name = _field(cfg, "model_name", "")
    context = _field(cfg, "context_size", 0)
    return SAEConfig(d_in=d_in, d_sae=d_sae, architecture=arch, k=k,  # type: ignore[arg-type]
                     hook_name=hook,
                     hook_layer=_int("hook_layer", -1 if layer is None else layer, -1, 1 << 20),
                     model_name=_text("model_name", "" if model_name is None else model_name),
                     context_size=_int("context_size", 0 if context is None else context, 0, 1 << 24),
                     apply_b_dec_to_input=_bool("apply_b_dec_to_input", cfg.get("apply_b_dec_to_input", True)),
                     extra=dict(extra)).check()


def check_tensors(c: SAEConfig, tensors: dict[str, torch.Tensor]) -> None:
    """InvalidInput unless ``tensors`` holds the four SAE weights with ``c``'s shapes, as finite floats."""
    dims = {"d_in": c.d_in, "d_sae": c.d_sae}
    for name, shape in WEIGHT_SHAPES.items():
        if name not in tensors:
            raise InvalidInput(f"The SAE weights lack {name!r} (have: {', '.join(sorted(tensors))[:200]}).")
        t, want = tensors[name], tuple(dims[d] for d in shape)
        if tuple(t.shape) != want:
            raise InvalidInput(f"SAE weight {name} has shape {tuple(t.shape)}, cfg.json says {want}.")
        if not t.is_floating_point():
            raise InvalidInput(f"SAE weight {name} holds {str(t.dtype).replace('torch.', '')} values, not floats.")
        if not bool(torch.isfinite(t).all()):
            raise InvalidInput(f"SAE weight {name} holds NaN or infinite values.")


# ---------------------------------------------------------------------------- losses


@dataclass
class LossParts:
    """One training step's loss and its parts (floats are detached)."""

    total: torch.Tensor
    mse: float  # mean over rows of the summed squared error
    sparsity: float  # weighted L1 (ReLU) or 0 (TopK)
    aux: float  # auxiliary-k loss on dead latents
    acts: torch.Tensor  # [batch, d_sae] detached latent activations


def aux_k_loss(sae: SparseAutoencoder, x: torch.Tensor, x_hat: torch.Tensor, pre: torch.Tensor,
               dead: torch.Tensor) -> torch.Tensor:
    """Gao et al. 2024's auxiliary loss: the top ``k_aux = d_in / 2`` dead latents reconstruct the residual.

    ``dead`` [d_sae] bool; scaled down when few latents are dead (as SAELens and EleutherAI's sae do).
    """
    n_dead = int(dead.sum())
    if n_dead == 0:
        return x.new_zeros(())
    k_aux = min(max(1, x.shape[-1] // 2), n_dead)
    residual = (x - x_hat).detach()  # [batch, d_in]
    masked = torch.where(dead[None], pre, torch.full_like(pre, -math.inf))
    top = masked.topk(k_aux, dim=-1)
    acts = torch.zeros_like(pre).scatter_(-1, top.indices, F.relu(top.values))
    recon = acts @ sae.W_dec  # no b_dec: it predicts the residual
    return min(n_dead / k_aux, 1.0) * (recon - residual).pow(2).sum(-1).mean()


def sae_loss(sae: SparseAutoencoder, x: torch.Tensor, *, l1_coeff: float = 0.0, dead: torch.Tensor | None = None,
             aux_coeff: float = 1 / 32) -> LossParts:
    """Reconstruction + sparsity (ReLU: decoder-norm-weighted L1) + aux-k on ``dead`` latents, for x [batch, d_in]."""
    pre = sae.pre_acts(x)  # [batch, d_sae]
    acts = sae.activate(pre)
    x_hat = sae.decode(acts)  # [batch, d_in]
    mse = (x_hat - x).pow(2).sum(-1).mean()
    total = mse
    sparsity = x.new_zeros(())
    if sae.cfg.architecture == "standard" and l1_coeff > 0:
        sparsity = (acts * sae.W_dec.norm(dim=1)).sum(-1).mean()
        total = total + l1_coeff * sparsity
    aux = aux_k_loss(sae, x, x_hat, pre, dead) if dead is not None and aux_coeff > 0 else x.new_zeros(())
    total = total + aux_coeff * aux
    return LossParts(total, float(mse.detach()), float(sparsity.detach()), float(aux.detach()), acts.detach())


# ---------------------------------------------------------------------------- metrics


def l0(acts: torch.Tensor) -> float:
    """Mean number of active latents per row of acts [rows, d_sae]."""
    return float((acts > 0).float().sum(-1).mean())


def variance_explained(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """1 - SSE / total sum of squares about the mean, over rows x [rows, d_in] (1 is perfect)."""
    resid = (x - x_hat).pow(2).sum()
    total = (x - x.mean(0, keepdim=True)).pow(2).sum()
    return float(1 - resid / total.clamp_min(1e-12))


@dataclass
class LatentFractions:
    dead: float  # share of latents that never fired on the tokens counted
    dense: float  # share firing on more than DENSE_THRESHOLD of tokens
    density: torch.Tensor  # [d_sae] firing frequency per latent


def latent_fractions(fire_counts: torch.Tensor, n_tokens: int) -> LatentFractions:
    """Dead and dense shares from per-latent firing counts [d_sae] over ``n_tokens`` tokens."""
    density = fire_counts.to(torch.float64) / max(1, n_tokens)
    return LatentFractions(float((fire_counts == 0).float().mean()), float((density > DENSE_THRESHOLD).float().mean()),
                           density.to(torch.float32))


def mmcs(learned: torch.Tensor, true: torch.Tensor) -> float:
    """Mean max cosine similarity: for each true feature [n_true, d], its best match among learned [n, d] rows
    (Sharkey, Braun & Millidge 2022). 1.0 means every true feature has a learned copy."""
    a = F.normalize(true.to(torch.float32), dim=1)
    b = F.normalize(learned.to(torch.float32), dim=1)
    return float((a @ b.t()).max(dim=1).values.mean())
