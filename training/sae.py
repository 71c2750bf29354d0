"""Train a sparse autoencoder on any activation source, resumably, with dead-latent revival and progress.

Recipe (small and CPU-friendly; the defaults follow the papers where they apply):

- Inputs are scaled by one constant so their mean norm is sqrt(d_in) (Anthropic April 2024; SAELens's
  ``expected_average_only_in``), estimated on batches no training step draws; the scale is folded into the
  weights when training ends, so the saved SAE reads raw activations (``normalize_activations = "none"``).
- ``b_dec`` starts at the mean activation; the decoder rows start in random directions, the encoder as its
  transpose. ReLU SAE: decoder norms 0.1, L1 coefficient warmed up linearly over the first 5% of steps.
  TopK SAE: unit-norm decoder rows, renormalised after every step (Gao et al. 2024).
- Adam (betas 0.9/0.999), gradient norm clipped at 1, learning rate decayed linearly to 0 over the last 20%.
- Dead latents (no activation in the last ``dead_tokens`` training tokens) are trained by the auxiliary-k
  loss (Gao et al.: the top d_in/2 dead pre-activations reconstruct the residual, coefficient 1/32) in both
  architectures; we use it instead of Anthropic's resampling because it needs no extra pass over the data.

The checkpoint (``training.checkpoint``) holds the SAE, the optimiser, the RNG states, the history, the input
scale and the per-latent "tokens since last fired" counters; batches are drawn by (seed, step), so a resumed
run equals an uninterrupted one.
"""
from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import get_args

import torch

from interp import validate
from interp.errors import InvalidInput
from interp.types import Progress
from learned.sae import MAX_SAE_DIM, Architecture, SAEConfig, SparseAutoencoder, l0, sae_loss, variance_explained
from training.checkpoint import read_checkpoint, resume_or_start, save_checkpoint
from training.sae_data import ActivationSource

#: Steps far from any training step: input-scale estimation and evaluation batches come from here.
SCALE_STEPS = 2_000_000_000
EVAL_STEPS = 3_000_000_000


@dataclass
class SAETrainSettings:
    architecture: Architecture = "topk"
    d_sae: int = 1024
    k: int = 32  # TopK only
    l1_coeff: float = 5.0  # ReLU only, on inputs scaled to norm sqrt(d_in)
    lr: float = 1e-3
    steps: int = 2000
    l1_warmup: float = 0.05
    lr_decay_from: float = 0.8
    aux_coeff: float = 1 / 32
    dead_tokens: int = 200_000
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 250
    log_every: int = 25
    scale_batches: int = 4
    normalize_inputs: bool = True

    def check(self) -> SAETrainSettings:
        """Every field in range (before the SAE is allocated); InvalidInput naming the field."""
        validate.settings(self, {
            "architecture": ("choice", get_args(Architecture)), "d_sae": ("int", 1, MAX_SAE_DIM),
            "k": ("int", 0, MAX_SAE_DIM), "l1_coeff": ("real", 0.0, 1e6), "lr": ("real>", 0.0, 10.0),
            "steps": ("int", 1, 10**8), "l1_warmup": ("real", 0.0, 1.0), "lr_decay_from": ("real", 0.0, 1.0),
            "aux_coeff": ("real", 0.0, 1e6), "dead_tokens": ("int", 1, 10**13), "grad_clip": ("real>", 0.0, 1e9),
            "seed": ("int", 0, validate.SEED_MAX), "checkpoint_every": ("int", 1, 10**9),
            "log_every": ("int", 1, 10**9), "scale_batches": ("int", 1, 10_000), "normalize_inputs": ("bool",)},
            "SAE training setting")
        if self.architecture == "topk" and not 1 <= self.k <= self.d_sae:
            raise InvalidInput(f"SAE training setting k={self.k} must be in 1..d_sae ({self.d_sae}) for a TopK SAE.")
        return self


@dataclass
class SAEHistory:
    steps: list[int] = field(default_factory=list)
    mse: list[float] = field(default_factory=list)  # summed squared error per row (scaled inputs)
    l0: list[float] = field(default_factory=list)
    variance_explained: list[float] = field(default_factory=list)
    dead_fraction: list[float] = field(default_factory=list)
    aux: list[float] = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0


@dataclass
class TrainedSAE:
    sae: SparseAutoencoder  # reads raw activations (input scale folded in)
    history: SAEHistory
    input_scale: float
    stopped: bool  # True when should_stop ended the run early (the checkpoint allows resuming)
    since_fired: torch.Tensor  # [d_sae] training tokens since each latent last fired


def lr_factor(step: int, s: SAETrainSettings) -> float:
    start = int(s.lr_decay_from * s.steps)
    return 1.0 if step < start else max(0.0, (s.steps - step) / max(1, s.steps - start))


def estimate_scale(source: ActivationSource, s: SAETrainSettings) -> tuple[float, torch.Tensor]:
    """(scale making the mean input norm sqrt(d_in), mean activation [d_in]) from batches no step draws."""
    xs = torch.cat([source.batch(SCALE_STEPS + i) for i in range(max(1, s.scale_batches))])
    scale = float(source.d_in ** 0.5 / xs.norm(dim=1).mean().clamp_min(1e-8)) if s.normalize_inputs else 1.0
    return scale, xs.mean(0)


def train_sae(source: ActivationSource, s: SAETrainSettings, cfg: SAEConfig | None = None, *,
              checkpoint: str | Path | None = None, progress: Progress | None = None,
              should_stop: Callable[[], bool] | None = None, log: Callable[[str], None] | None = print) -> TrainedSAE:
    """Train (or resume) an SAE on ``source``; ``cfg`` carries the hook and model names to record (sizes come
    from ``s``)."""
    s.check()
    base = cfg or SAEConfig(d_in=source.d_in, d_sae=s.d_sae)
    cfg = dataclasses.replace(base, d_in=source.d_in, d_sae=s.d_sae, architecture=s.architecture,
                       k=s.k if s.architecture == "topk" else 0)
    torch.manual_seed(s.seed)
    sae = SparseAutoencoder(cfg, seed=s.seed)
    opt = torch.optim.Adam(sae.parameters(), lr=s.lr, betas=(0.9, 0.999))
    resumed = resume_or_start(checkpoint, model=sae, optimizer=opt, log=log)
    since_fired = torch.zeros(cfg.d_sae, dtype=torch.int64)
    acc: dict[str, float] = {"mse": 0.0, "l0": 0.0, "ve": 0.0, "aux": 0.0, "n": 0}
    if resumed.step > 0:
        scale = float(resumed.extra["input_scale"])
        history = SAEHistory(**resumed.extra["history"])
        since_fired = read_checkpoint(checkpoint)["tensors"]["since_fired"].clone()
        acc.update(resumed.extra.get("log_window") or {})  # the partial logging window, so the logs match too
    else:
        scale, mean = estimate_scale(source, s)
        with torch.no_grad():
            sae.b_dec.copy_(mean * scale)
        history = SAEHistory()
    t0 = time.perf_counter() - history.seconds
    stopped = False

    def save(step: int) -> None:
        if checkpoint is not None:
            save_checkpoint(checkpoint, step=step, model=sae, optimizer=opt,
                            extra={"input_scale": scale, "history": asdict(history), "settings": asdict(s),
                                   "log_window": acc},
                            tensors={"since_fired": since_fired})

    step = resumed.step
    for step in range(resumed.step, s.steps):
        if should_stop is not None and should_stop():
            stopped = True
            save(step)
            break
        x = source.batch(step) * scale  # [rows, d_in]
        for g in opt.param_groups:
            g["lr"] = s.lr * lr_factor(step, s)
        l1 = s.l1_coeff * min(1.0, (step + 1) / max(1, s.l1_warmup * s.steps))
        dead = since_fired >= s.dead_tokens
        parts = sae_loss(sae, x, l1_coeff=l1, dead=dead if dead.any() else None, aux_coeff=s.aux_coeff)
        opt.zero_grad(set_to_none=True)
        parts.total.backward()
        torch.nn.utils.clip_grad_norm_(sae.parameters(), s.grad_clip)
        opt.step()
        if s.architecture == "topk":
            sae.normalize_decoder()
        fired = (parts.acts > 0).any(0)
        since_fired = torch.where(fired, torch.zeros_like(since_fired), since_fired + x.shape[0])
        history.tokens += int(x.shape[0])
        with torch.no_grad():
            acc["mse"] += parts.mse
            acc["l0"] += l0(parts.acts)
            acc["ve"] += variance_explained(x, sae.decode(parts.acts))
            acc["aux"] += parts.aux
            acc["n"] += 1
        done = step + 1
        if done % s.log_every == 0 or done == s.steps:
            n = max(1, acc["n"])
            history.steps.append(done)
            history.mse.append(acc["mse"] / n)
            history.l0.append(acc["l0"] / n)
            history.variance_explained.append(acc["ve"] / n)
            history.aux.append(acc["aux"] / n)
            history.dead_fraction.append(float((since_fired >= s.dead_tokens).float().mean()))
            acc = {"mse": 0.0, "l0": 0.0, "ve": 0.0, "aux": 0.0, "n": 0}
        history.seconds = time.perf_counter() - t0
        if checkpoint is not None and (done % s.checkpoint_every == 0 or done == s.steps):
            save(done)
        if progress is not None:
            ve = history.variance_explained[-1] if history.variance_explained else float("nan")
            l0_now = history.l0[-1] if history.l0 else float("nan")
            progress(done / s.steps, f"SAE step {done}/{s.steps}: variance explained {ve:.3f}, L0 {l0_now:.1f}")
    out = copy.deepcopy(sae)
    out.fold_input_scale(scale)
    return TrainedSAE(out, history, scale, stopped, since_fired)


@torch.no_grad()
def evaluate_sae(sae: SparseAutoencoder, source: ActivationSource, n_batches: int = 8) -> dict[str, object]:
    """L0, variance explained and per-latent firing counts on ``n_batches`` held-out batches of raw activations."""
    fires = torch.zeros(sae.cfg.d_sae, dtype=torch.int64)
    xs, xh, l0s, rows = [], [], [], 0
    for i in range(n_batches):
        x = source.batch(EVAL_STEPS + i)
        acts = sae.encode(x)
        fires += (acts > 0).sum(0)
        l0s.append(l0(acts) * x.shape[0])
        rows += x.shape[0]
        xs.append(x)
        xh.append(sae.decode(acts))
    return {"l0": sum(l0s) / max(1, rows), "variance_explained": variance_explained(torch.cat(xs), torch.cat(xh)),
            "fire_counts": fires, "n_tokens": rows}
