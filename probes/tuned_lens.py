"""Tuned lens (Belrose et al. 2023): one affine translator per layer, trained so the lens matches the final output.

Each translator maps the residual stream ``h`` of one layer to ``h + A h + b`` before the model's own final
norm and unembedding; ``A`` and ``b`` start at zero, so an untrained tuned lens is the logit lens. Training
minimises KL(final || lens) over text, the final residual stream (the model's own prediction) being the
target. Files: ``<dir>/config.json`` + ``<dir>/params.safetensors`` (never pickles), by default
``<model dir>/tuned_lens/``.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from interp.errors import InvalidInput, LensUnavailable
from interp.handle import ModelHandle
from interp.loading import REPO_ROOT

from .lens import batch_residual_stack, lens_hook_names, lens_readout, readout_fn

FORMAT = "workbench-tuned-lens"
VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "params.safetensors"
LENS_DIRNAME = "tuned_lens"
#: Where lenses of Hub models go (never into the Hugging Face cache).
HUB_LENS_ROOT = REPO_ROOT / ".cache" / "tuned-lens"


class TunedLens(torch.nn.Module):
    """Translators for resid_pre of every block; the final residual stream is read as is (identity)."""

    def __init__(self, n_layers: int, d_model: int, meta: dict[str, Any] | None = None):
        super().__init__()
        self.translators = torch.nn.ModuleList(torch.nn.Linear(d_model, d_model) for _ in range(n_layers))
        for t in self.translators:  # identity at start: h + 0 h + 0
            torch.nn.init.zeros_(t.weight)
            torch.nn.init.zeros_(t.bias)
        self.meta: dict[str, Any] = dict(meta or {})

    @classmethod
    def for_model(cls, handle: ModelHandle) -> "TunedLens":
        """An identity (untrained) lens shaped for ``handle``, carrying the model's identity in ``meta``."""
        info = handle.info
        return cls(info.n_layers, info.d_model, {"model": info.name, "model_sha256": info.sha256,
                                                  "layer_names": lens_hook_names(info.n_layers)})

    @property
    def n_layers(self) -> int:
        return len(self.translators)

    @property
    def d_model(self) -> int:
        return self.translators[0].in_features

    def forward(self, h: torch.Tensor, index: int) -> torch.Tensor:  # [..., d_model] -> [..., d_model]
        """Translate the stream of lens layer ``index``; layers past the last translator are left as they are."""
        if index >= len(self.translators):
            return h
        return h + self.translators[index](h)


# ----------------------------------------------------------------------------- training


@dataclass
class TrainLog:
    """Loss (mean KL(final || tuned lens) over layers and tokens, nats) per step."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    tokens_seen: int = 0


@contextlib.contextmanager
def frozen(module: torch.nn.Module) -> Iterator[None]:
    """Turn off gradients of ``module``'s parameters for the duration (restored after)."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def kl_from_logits(final_logp: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """KL(final || lens) per row, nats: final log-probs [rows, vocab] vs lens logits [rows, vocab] -> [rows]."""
    logp = logits.float().log_softmax(-1)
    return (final_logp.exp() * (final_logp - logp)).sum(-1)


def lens_loss(handle: ModelHandle, lens: TunedLens, stack: torch.Tensor) -> torch.Tensor:
    """Mean over translated layers and rows of KL(final || lens); ``stack`` [layers, rows, d_model]."""
    readout = readout_fn(handle)
    with torch.no_grad():
        final_logp = readout(stack[-1]).float().log_softmax(-1)  # [rows, vocab]
    losses = [kl_from_logits(final_logp, readout(lens(stack[i], i))).mean() for i in range(lens.n_layers)]
    return torch.stack(losses).mean()


def _check_tokens(handle: ModelHandle, tokens: torch.Tensor) -> torch.Tensor:
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2 or tokens.shape[1] < 2 or tokens.shape[0] < 1:
        raise InvalidInput("Tuned-lens text must be a token tensor [sequences, positions] with >= 2 positions.")
    if tokens.shape[1] > handle.info.n_ctx:
        raise InvalidInput(f"Sequences of {tokens.shape[1]} tokens exceed {handle.info.name}'s context "
                           f"({handle.info.n_ctx}).")
    return tokens.long()


def train_tuned_lens(handle: ModelHandle, tokens: torch.Tensor, *, steps: int = 250, batch_size: int = 8,
                     lr: float = 1e-3, weight_decay: float = 0.0, seed: int = 0,
                     progress: Callable[[float, str], None] | None = None,
                     lens: TunedLens | None = None) -> tuple[TunedLens, TrainLog]:
    """Fit one translator per layer on ``tokens`` [sequences, positions] by minimising KL(final || lens).

    Each step runs the (frozen) model on ``batch_size`` sequences drawn with a generator seeded by ``seed``,
    and takes one Adam step on the mean KL over layers and positions (the first position, which has no context,
    is left out); the learning rate decays linearly to zero. Deterministic on CPU for a given seed.
    """
    tokens = _check_tokens(handle, tokens)
    if steps < 1 or batch_size < 1:
        raise InvalidInput("steps and batch_size must be at least 1.")
    lens = lens or TunedLens.for_model(handle)
    lens.to(handle.device).train()
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(lens.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / steps)
    log = TrainLog()
    t0 = time.perf_counter()
    with frozen(handle.bridge):
        for step in range(steps):
            rows = torch.randint(0, tokens.shape[0], (min(batch_size, tokens.shape[0]),), generator=gen)
            stack = batch_residual_stack(handle, tokens[rows].to(handle.device))[:, :, 1:]  # [L, b, pos-1, d]
            loss = lens_loss(handle, lens, stack.flatten(1, 2))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            value = float(loss.detach())
            log.steps.append(step)
            log.loss.append(value)
            log.tokens_seen += stack.shape[1] * stack.shape[2]
            if progress is not None and (step % 10 == 0 or step == steps - 1):
                progress((step + 1) / steps, f"tuned lens step {step + 1}/{steps}, KL {value:.3f}")
    log.seconds = time.perf_counter() - t0
    lens.eval()
    lens.meta.update({"train_steps": steps, "train_batch_size": batch_size, "train_lr": lr, "train_seed": seed,
                      "train_tokens_seen": log.tokens_seen, "train_final_loss": log.loss[-1]})
    return lens, log


# ----------------------------------------------------------------------------- evaluation


@dataclass
class LensEval:
    """Per-layer means over held-out tokens (first position of each sequence excluded), one lens."""

    lens: str
    layer_labels: list[str]
    kl_to_final: list[float]  # mean KL(final || layer), nats
    top1_agreement: list[float]  # fraction of tokens whose lens top-1 equals the final top-1
    next_token_prob: list[float]  # mean probability of the actual next token
    cross_entropy: list[float]  # mean -log p(next token), nats
    n_tokens: int


def evaluate_lens(handle: ModelHandle, tokens: torch.Tensor, lens: TunedLens | None = None, *,
                  batch_size: int = 8, name: str | None = None) -> LensEval:
    """Logit lens (``lens=None``) or tuned lens metrics per layer over ``tokens`` [sequences, positions]."""
    from .lens import layer_labels

    tokens = _check_tokens(handle, tokens)
    sums: dict[str, torch.Tensor] = {}
    n = 0
    for start in range(0, tokens.shape[0], batch_size):
        batch = tokens[start:start + batch_size].to(handle.device)
        stack = batch_residual_stack(handle, batch)[:, :, :-1]  # positions with a next token
        targets = batch[:, 1:]  # [b, pos-1]
        stack, targets = stack[:, :, 1:], targets[:, 1:]  # drop the first position (no context)
        m = lens_readout(handle, stack.flatten(1, 2), targets.reshape(-1), k=1, lens=lens)
        final_top1 = m["topk_ids"][-1:, :, 0]  # [1, rows]
        parts = {"kl_to_final": m["kl_to_final"], "top1_agreement": (m["topk_ids"][..., 0] == final_top1).float(),
                 "next_token_prob": m["target_prob"], "cross_entropy": -m["target_prob"].clamp_min(1e-30).log()}
        for key, value in parts.items():
            sums[key] = sums.get(key, 0) + value.double().sum(1)
        n += stack.shape[1] * stack.shape[2]
    means = {key: (value / n).tolist() for key, value in sums.items()}
    return LensEval(lens=name or ("logit" if lens is None else "tuned"),
                    layer_labels=layer_labels(handle.info.n_layers), n_tokens=n, **means)


# ----------------------------------------------------------------------------- files


def default_lens_dir(handle: ModelHandle) -> Path:
    """``<model dir>/tuned_lens`` for bundled/local models; Hub models: ``.cache/tuned-lens/<name>``."""
    info = handle.info
    if info.source in ("bundled", "local") and info.path:
        return Path(info.path) / LENS_DIRNAME
    return HUB_LENS_ROOT / info.name.replace("/", "__")


def find_tuned_lens(handle: ModelHandle, directory: str | Path | None = None) -> Path | None:
    """The directory holding this model's tuned lens (config.json present), or None when there is none."""
    d = Path(directory) if directory else default_lens_dir(handle)
    return d if (d / CONFIG_FILE).is_file() else None


def save_tuned_lens(lens: TunedLens, directory: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``config.json`` + ``params.safetensors`` as ``directory``, atomically (staged, then renamed)."""
    from safetensors.torch import save_file

    out = Path(directory)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    config = {"format": FORMAT, "version": VERSION, "n_layers": lens.n_layers, "d_model": lens.d_model,
              **lens.meta, **(extra or {})}
    state = {k: v.detach().float().contiguous().cpu() for k, v in lens.state_dict().items()}
    save_file(state, str(staging / WEIGHTS_FILE), metadata={"format": FORMAT})
    os.chmod(staging / WEIGHTS_FILE, 0o644)  # safetensors writes 0600; the lens ships with the model
    (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)
    return out


def _how_to_train(handle: ModelHandle) -> str:
    return f"Train one: python -m experiments run tuned-lens --model {handle.info.name}"


def load_tuned_lens(handle: ModelHandle, directory: str | Path | None = None, *,
                    check_weights: bool = True) -> TunedLens:
    """Load the tuned lens of ``handle`` (default location, or ``directory``), checked against the model.

    Raises :class:`LensUnavailable` when there is none, when a file is corrupt, or when the lens was trained
    for another model (shape, or weights sha256 with ``check_weights``). Reads safetensors only.
    """
    d = Path(directory) if directory else default_lens_dir(handle)
    name = handle.info.name
    if not (d / CONFIG_FILE).is_file():
        raise LensUnavailable(f"{name} has no tuned lens (looked for {d / CONFIG_FILE}).", _how_to_train(handle))
    try:
        config = json.loads((d / CONFIG_FILE).read_text())
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        raise LensUnavailable(f"The tuned lens config {d / CONFIG_FILE} is not valid JSON ({e}).",
                              _how_to_train(handle)) from None
    if config.get("format") != FORMAT:
        raise LensUnavailable(f"{d / CONFIG_FILE} is not a workbench tuned lens (format {config.get('format')!r}).",
                              _how_to_train(handle))
    n, dm = handle.info.n_layers, handle.info.d_model
    if config.get("n_layers") != n or config.get("d_model") != dm:
        raise LensUnavailable(
            f"The tuned lens in {d} is for a model with {config.get('n_layers')} layers and d_model "
            f"{config.get('d_model')}, but {name} has {n} layers and d_model {dm}.", _how_to_train(handle))
    sha = config.get("model_sha256")
    if check_weights and sha and handle.info.sha256 and sha != handle.info.sha256:
        raise LensUnavailable(
            f"The tuned lens in {d} was trained for other weights (sha256 {sha[:12]}..., this model "
            f"{handle.info.sha256[:12]}...); its translators would not fit.", _how_to_train(handle))
    weights = d / WEIGHTS_FILE
    if not weights.is_file():
        raise LensUnavailable(f"The tuned lens in {d} has a config but no {WEIGHTS_FILE}.", _how_to_train(handle))
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise LensUnavailable(f"The tuned lens weights {weights} are corrupt or truncated ({e}).",
                              _how_to_train(handle)) from None
    meta = {k: v for k, v in config.items() if k not in ("format", "version", "n_layers", "d_model")}
    lens = TunedLens(n, dm, meta)
    expected = {k: tuple(v.shape) for k, v in lens.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if got != expected:
        missing = sorted(set(expected) - set(got))
        wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
        raise LensUnavailable(f"The tuned lens weights {weights} do not fit {name}: missing {missing[:3]}, "
                              f"wrong shape {wrong[:3]}, unexpected {sorted(set(got) - set(expected))[:3]}.",
                              _how_to_train(handle))
    if not all(torch.isfinite(v).all() for v in state.values()):
        raise LensUnavailable(f"The tuned lens weights {weights} hold NaN or infinite values.", _how_to_train(handle))
    lens.load_state_dict(state)
    return lens.to(handle.device).eval()


def translator_norms(lens: TunedLens) -> list[float]:
    """Frobenius norm of each translator's A (0 = the logit lens at that layer): how much the lens changes."""
    return [math.sqrt(float(t.weight.detach().pow(2).sum())) for t in lens.translators]
