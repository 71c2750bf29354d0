"""Train a transcoder set (per-layer or cross-layer, TopK) on any model's MLPs, resumably, from activations
computed on the fly.

Each step runs the model on a fresh seeded token batch and reads every layer's MLP input and output through the
model interface (``Model.run(read=[Site(input_kind, l), Site("mlp_out", l)], stop_after=last mlp_out)``);
nothing is stored beyond one batch. The recipe follows this workbench's SAE trainer (``training.sae``), per layer:

- Inputs and targets are scaled per layer by constants making their mean norm sqrt(d_model), estimated on
  batches no training step draws, and folded into the weights at the end (the saved set reads and writes raw
  activations). ``b_dec`` starts at each layer's mean MLP output; decoder rows start random with unit norm (a
  CLT row: its vectors to every output layer together) and are renormalised after each step (TopK).
- Loss: the squared error summed over layers (each layer's target has the same scale, so layers weigh the
  same), plus Gao et al.'s auxiliary-k loss per layer: the top d_model/2 dead features of a layer reconstruct
  that layer's residual error through their decoder to the same layer (coefficient 1/32).
- Adam (0.9/0.999), gradient norm clipped at 1, learning rate decayed linearly to 0 over the last 20%.

The checkpoint (``training.checkpoint``) holds the set, the optimiser, RNG states, history, the scales and the
per-feature "tokens since last fired" counters; batches are drawn by (seed, step), so a resumed run equals an
uninterrupted one.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from interp.errors import InvalidInput
from interp.model import Model
from interp.types import Progress
from learned.transcoder import Transcoder, TranscoderConfig, TranscoderKind, io_sites, l0_per_layer, normalized_mse
from training.checkpoint import read_checkpoint, resume_or_start, save_checkpoint
from training.sae_data import TokenFn, step_generator

SCALE_STEPS = 2_000_000_000
EVAL_STEPS = 3_000_000_000


@dataclass
class MLPActivations:
    """Every layer's MLP input and output on tokens drawn by ``tokens_fn`` each step: ``batch(step) -> (x, y)``,
    both ``[rows, n_layers, d_model]`` float32 (padding positions dropped)."""

    handle: Model
    tokens_fn: TokenFn
    input_kind: str = "ln2_normalized"
    seed: int = 0

    def __post_init__(self) -> None:
        info = self.handle.info
        if info.attn_only or info.d_mlp == 0:
            raise InvalidInput(f"{info.name} is attention-only: it has no MLPs for a transcoder to replace.")
        cfg = TranscoderConfig("per_layer", info.n_layers, info.d_model, 1, activation="relu",
                               input_kind=self.input_kind)  # type: ignore[arg-type]
        self.inputs, self.outputs = io_sites(cfg)
        for s in self.inputs + self.outputs:
            self.handle.require(s)
        self.n_layers, self.d_model = info.n_layers, info.d_model

    def tokens(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.tokens_fn(step, step_generator(self.seed, step))

    @torch.no_grad()
    def run(self, tok: torch.Tensor, keep: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.handle.run(tok, read=self.inputs + self.outputs, stop_after=self.outputs[-1])
        x = torch.stack([r[s] for s in self.inputs], dim=2).to(torch.float32)  # [n, pos, L, d]
        y = torch.stack([r[s] for s in self.outputs], dim=2).to(torch.float32)
        if keep is None:
            return x.flatten(0, 1).cpu(), y.flatten(0, 1).cpu()
        k = keep.to(x.device)
        return x[k].cpu(), y[k].cpu()  # [rows, L, d]

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.run(*self.tokens(step))


@dataclass
class TranscoderTrainSettings:
    kind: TranscoderKind = "per_layer"
    d_transcoder: int = 1536
    k: int = 32
    lr: float = 1e-3
    steps: int = 2000
    lr_decay_from: float = 0.8
    aux_coeff: float = 1 / 32
    dead_tokens: int = 200_000
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 100
    log_every: int = 25
    scale_batches: int = 4


@dataclass
class TranscoderHistory:
    steps: list[int] = field(default_factory=list)
    mse: list[float] = field(default_factory=list)  # summed over layers, scaled units
    nmse: list[list[float]] = field(default_factory=list)  # per layer
    dead_fraction: list[float] = field(default_factory=list)
    aux: list[float] = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0


@dataclass
class TrainedTranscoder:
    transcoder: Transcoder  # reads raw inputs, writes raw outputs (scales folded in)
    history: TranscoderHistory
    in_scale: list[float]
    out_scale: list[float]
    stopped: bool
    since_fired: torch.Tensor  # [layer, d_tc]


def _lr_factor(step: int, s: TranscoderTrainSettings) -> float:
    start = int(s.lr_decay_from * s.steps)
    return 1.0 if step < start else max(0.0, (s.steps - step) / max(1, s.steps - start))


def estimate_scales(source, s: TranscoderTrainSettings) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input scale [L], output scale [L], mean output [L, d]) from batches no training step draws."""
    xs, ys = zip(*(source.batch(SCALE_STEPS + i) for i in range(max(1, s.scale_batches))))
    x, y = torch.cat(xs), torch.cat(ys)  # [rows, L, d]
    d = x.shape[-1]
    in_scale = math.sqrt(d) / x.norm(dim=-1).mean(0).clamp_min(1e-8)
    out_scale = math.sqrt(d) / y.norm(dim=-1).mean(0).clamp_min(1e-8)
    return in_scale, out_scale, y.mean(0)


def aux_loss(tc: Transcoder, pre: torch.Tensor, residual: torch.Tensor, dead: torch.Tensor) -> torch.Tensor:
    """Gao et al.'s auxiliary-k loss per layer: the top ``d_model / 2`` dead features' activations reconstruct
    that layer's residual error (``pre`` [rows, L, f], ``residual`` [rows, L, d], ``dead`` [L, f])."""
    total = pre.new_zeros(())
    for layer in range(tc.cfg.n_layers):
        n_dead = int(dead[layer].sum())
        if n_dead == 0:
            continue
        k_aux = min(max(1, tc.cfg.d_model // 2), n_dead)
        masked = torch.where(dead[layer][None], pre[:, layer], torch.full_like(pre[:, layer], -math.inf))
        top = masked.topk(k_aux, dim=-1)
        acts = torch.zeros_like(pre[:, layer]).scatter_(-1, top.indices, F.relu(top.values))
        recon = acts @ tc.W_dec[layer][:, 0]  # [rows, d]: the decoder to its own layer
        total = total + min(n_dead / k_aux, 1.0) * (recon - residual[:, layer]).pow(2).sum(-1).mean()
    return total


def train_transcoder(source, s: TranscoderTrainSettings, cfg: TranscoderConfig | None = None, *,
                     checkpoint: str | Path | None = None, progress: Progress | None = None,
                     should_stop: Callable[[], bool] | None = None,
                     log: Callable[[str], None] | None = print) -> TrainedTranscoder:
    """Train (or resume) a transcoder set on ``source`` (``batch(step) -> (x, y)`` [rows, L, d]); ``cfg`` carries
    the model's name and the input kind to record (kind and sizes come from ``s``)."""
    base = cfg or TranscoderConfig(s.kind, source.n_layers, source.d_model, s.d_transcoder)
    cfg = dataclasses.replace(base, kind=s.kind, n_layers=source.n_layers, d_model=source.d_model,
                              d_transcoder=s.d_transcoder, activation="topk", k=s.k)
    torch.manual_seed(s.seed)
    tc = Transcoder(cfg, seed=s.seed)
    opt = torch.optim.Adam(tc.parameters(), lr=s.lr, betas=(0.9, 0.999))
    resumed = resume_or_start(checkpoint, model=tc, optimizer=opt, log=log)
    L, f = cfg.n_layers, cfg.d_transcoder
    since_fired = torch.zeros(L, f, dtype=torch.int64)
    acc: dict[str, float] = {"mse": 0.0, "aux": 0.0, "n": 0}
    nmse_acc = torch.zeros(L)
    if resumed.step > 0:
        in_scale = torch.tensor(resumed.extra["in_scale"])
        out_scale = torch.tensor(resumed.extra["out_scale"])
        history = TranscoderHistory(**resumed.extra["history"])
        since_fired = read_checkpoint(checkpoint)["tensors"]["since_fired"].clone()
        acc.update(resumed.extra.get("log_window") or {})
        nmse_acc = torch.tensor(resumed.extra.get("nmse_window") or [0.0] * L)
    else:
        in_scale, out_scale, mean_y = estimate_scales(source, s)
        with torch.no_grad():
            tc.b_dec.copy_(mean_y * out_scale[:, None])
        history = TranscoderHistory()
    t0 = time.perf_counter() - history.seconds
    stopped = False

    def save(step: int) -> None:
        if checkpoint is not None:
            save_checkpoint(checkpoint, step=step, model=tc, optimizer=opt,
                            extra={"in_scale": in_scale.tolist(), "out_scale": out_scale.tolist(),
                                   "history": asdict(history), "settings": asdict(s), "log_window": acc,
                                   "nmse_window": nmse_acc.tolist()},
                            tensors={"since_fired": since_fired})

    for step in range(resumed.step, s.steps):
        if should_stop is not None and should_stop():
            stopped = True
            save(step)
            break
        x, y = source.batch(step)
        x = x * in_scale[None, :, None]  # [rows, L, d]
        y = y * out_scale[None, :, None]
        for g in opt.param_groups:
            g["lr"] = s.lr * _lr_factor(step, s)
        pre = tc.pre_acts(x)  # [rows, L, f]
        values, indices = tc.topk(pre)  # [rows, L, k]: decoded sparsely (k decoder rows per token, not d_tc)
        y_hat = tc.decode_sparse(values, indices)
        mse = (y_hat - y).pow(2).sum(-1).mean(0).sum()
        dead = since_fired >= s.dead_tokens
        aux = aux_loss(tc, pre, (y - y_hat).detach(), dead) if s.aux_coeff > 0 and bool(dead.any()) \
            else mse.new_zeros(())
        loss = mse + s.aux_coeff * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tc.parameters(), s.grad_clip)
        opt.step()
        tc.normalize_decoder()
        on = values.detach() > 0  # [rows, L, k]
        fired = torch.zeros(L, f, dtype=torch.bool)  # [L, f]
        fired[torch.arange(L)[None, :, None].expand_as(indices)[on], indices[on]] = True
        since_fired = torch.where(fired, torch.zeros_like(since_fired), since_fired + x.shape[0])
        history.tokens += int(x.shape[0])
        acc["mse"] += float(mse.detach())
        acc["aux"] += float(aux.detach())
        acc["n"] += 1
        nmse_acc += normalized_mse(y, y_hat.detach())
        done = step + 1
        if done % s.log_every == 0 or done == s.steps:
            n = max(1, acc["n"])
            history.steps.append(done)
            history.mse.append(acc["mse"] / n)
            history.aux.append(acc["aux"] / n)
            history.nmse.append([round(float(v) / n, 5) for v in nmse_acc])
            history.dead_fraction.append(float((since_fired >= s.dead_tokens).float().mean()))
            acc = {"mse": 0.0, "aux": 0.0, "n": 0}
            nmse_acc = torch.zeros(L)
        history.seconds = time.perf_counter() - t0
        if checkpoint is not None and (done % s.checkpoint_every == 0 or done == s.steps):
            save(done)
        if progress is not None:
            nm = sum(history.nmse[-1]) / L if history.nmse else float("nan")
            progress(done / s.steps, f"transcoder step {done}/{s.steps}: normalised MSE {nm:.3f}")
    out = copy.deepcopy(tc)
    out.fold_scales(in_scale, out_scale)
    return TrainedTranscoder(out, history, in_scale.tolist(), out_scale.tolist(), stopped, since_fired)


@torch.no_grad()
def evaluate_transcoder(tc: Transcoder, source, n_batches: int = 8) -> dict[str, object]:
    """Per layer on ``n_batches`` held-out batches of raw activations: normalised MSE, L0, firing counts."""
    fires = torch.zeros(tc.cfg.n_layers, tc.cfg.d_transcoder, dtype=torch.int64)
    ys, yh, l0s, rows = [], [], torch.zeros(tc.cfg.n_layers), 0
    for i in range(n_batches):
        x, y = source.batch(EVAL_STEPS + i)
        acts = tc.encode(x)  # [rows, L, f]
        fires += (acts > 0).sum(0)
        l0s += l0_per_layer(acts) * x.shape[0]
        rows += x.shape[0]
        ys.append(y)
        yh.append(tc.decode(acts))
    nmse = normalized_mse(torch.cat(ys), torch.cat(yh))
    return {"nmse": nmse.tolist(), "l0": (l0s / max(1, rows)).tolist(), "fire_counts": fires, "n_tokens": rows}
