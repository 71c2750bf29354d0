"""A small, resumable training loop for Hugging Face causal LMs on a token array (CPU or GPU), and the token
caches it trains from.

Batches are drawn with a generator seeded by (seed, step), and checkpoints (``training.checkpoint``: one atomic
file with the model, optimiser, RNG states and the training log) restore dropout's RNG too, so a run resumed
from a checkpoint equals an uninterrupted one. A loss that is not finite stops training, naming the step.
"""
from __future__ import annotations

import dataclasses
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerFast

from interp import validate
from interp.errors import InvalidInput
from interp.loading import weights_sha256
from tasks.corpus import sample_windows
from training.checkpoint import (
    atomic_save_npy,
    atomic_write_json,
    load_npy,
    read_json,
    resume_or_start,
    save_checkpoint,
)
from training.guards import check_loss


@dataclass
class TrainSettings:
    steps: int
    batch_size: int
    seq_len: int
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 200
    eval_every: int = 250
    eval_batches: int = 8

    def check(self) -> TrainSettings:
        """Every field in range (before any allocation); InvalidInput naming the field."""
        validate.settings(self, {
            "steps": ("int", 1, 10**8), "batch_size": ("int", 1, 65_536), "seq_len": ("int", 2, 1 << 20),
            "lr": ("real>", 0.0, 10.0), "warmup": ("int", 0, 10**8), "weight_decay": ("real", 0.0, 100.0),
            "grad_clip": ("real>", 0.0, 1e9), "seed": ("int", 0, validate.SEED_MAX),
            "checkpoint_every": ("int", 1, 10**9), "eval_every": ("int", 1, 10**9),
            "eval_batches": ("int", 1, 100_000)}, "Training setting")
        return self


@dataclass
class TrainLog:
    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval_loss: list[float] = field(default_factory=list)
    evals: dict[str, float] = field(default_factory=dict)  # str(step) -> eval_fn(model), e.g. legal-move accuracy
    seconds: float = 0.0


def lr_at(step: int, s: TrainSettings) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    progress = (step - s.warmup) / max(1, s.steps - s.warmup)
    return s.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


@torch.no_grad()
def eval_loss(model: torch.nn.Module, tokens: np.ndarray, s: TrainSettings, device: str) -> float:
    """Mean next-token loss on ``eval_batches`` fixed windows of held-out tokens."""
    model.eval()
    gen = torch.Generator().manual_seed(10_000 + s.seed)
    losses = [model(x := sample_windows(tokens, s.batch_size, s.seq_len, gen).to(device), labels=x).loss.item()
              for _ in range(s.eval_batches)]
    model.train()
    return float(np.mean(losses))


def train_causal_lm(
    model: torch.nn.Module,
    train_tokens: np.ndarray,
    heldout_tokens: np.ndarray,
    s: TrainSettings,
    *,
    checkpoint: Path | None = None,
    device: str = "cpu",
    batch_fn: Callable[[int, torch.Generator], torch.Tensor] | None = None,
    on_step: Callable[[int, float], None] | None = None,
    eval_fn: Callable[[torch.nn.Module], float] | None = None,
) -> TrainLog:
    """Train ``model`` (HF causal LM: ``model(x, labels=x).loss``) for ``s.steps`` steps, resuming from
    ``checkpoint`` if it holds a good one (a damaged one is reported and training starts afresh).
    ``batch_fn(step, gen)`` may replace window sampling (e.g. padded games); ``eval_fn(model)`` runs with the
    held-out evaluation (every ``eval_every`` steps and at the end) into ``log.evals`` (checkpointed with the
    log, so a resumed run has every evaluation). A NaN/inf loss raises
    :class:`training.guards.TrainingDiverged` naming the step."""
    s.check()
    if batch_fn is None and len(train_tokens) <= s.seq_len:

        raise InvalidInput(f"The training text has {len(train_tokens)} tokens, fewer than one window of {s.seq_len}.",
                           "Give more text (a larger max_chars or another data_dir) or a shorter context.")
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay, betas=(0.9, 0.95))
    log = TrainLog()
    resumed = resume_or_start(checkpoint, model=model, optimizer=opt)
    start = resumed.step
    if start:
        log = TrainLog(**resumed.extra["log"])
    t0 = time.perf_counter() - log.seconds
    for step in range(start, s.steps):
        gen = torch.Generator().manual_seed(s.seed * 1_000_003 + step)
        x = (batch_fn(step, gen) if batch_fn else sample_windows(train_tokens, s.batch_size, s.seq_len, gen)).to(device)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, s)
        loss = model(x, labels=x).loss
        loss_value = check_loss(loss.item(), step + 1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
        opt.step()
        log.steps.append(step)
        log.train_loss.append(loss_value)
        done = step + 1
        if done % s.eval_every == 0 or done == s.steps:
            if heldout_tokens is not None:
                log.eval_steps.append(done)
                log.eval_loss.append(eval_loss(model, heldout_tokens, s, device))
            if eval_fn is not None:
                log.evals[str(done)] = float(eval_fn(model))
        log.seconds = time.perf_counter() - t0
        if checkpoint is not None and (done % s.checkpoint_every == 0 or done == s.steps):
            save_checkpoint(checkpoint, step=done, model=model, optimizer=opt, extra={"log": dataclasses.asdict(log)})
        if on_step is not None:
            on_step(step, loss_value)
    model.eval()
    return log


@dataclass
class InitialWeights:
    """Where a continued run's starting weights came from (recorded in its model card)."""
    path: str
    sha256: str
    how_made: str  # the "How it was made" section of that model's card, "" if it has none


def load_initial_weights(model: torch.nn.Module, init_from: str | Path) -> InitialWeights:
    """Copy the weights of a saved Hugging Face directory (same architecture) into ``model``, safetensors only.

    Read before training starts, so ``init_from`` may also be the run's output directory.
    """
    path = Path(init_from).expanduser()
    files = sorted(path.glob("*.safetensors")) if path.is_dir() else []
    if not files:
        raise InvalidInput(f"init_from={init_from!r} is not a model directory with safetensors weights.")
    try:
        source = type(model).from_pretrained(str(path), use_safetensors=True)
        model.load_state_dict(source.state_dict(), strict=True)
    except (OSError, RuntimeError, ValueError) as e:
        raise InvalidInput(f"init_from={init_from!r} does not match this run's model: {str(e).splitlines()[0]}",
                           "Use the same architecture settings (layers, width, heads, context, vocabulary) "
                           "as the model you continue from.") from None
    card = path / "README.md"
    text = card.read_text() if card.is_file() else ""
    start = text.find("## How it was made")
    section = text[start:].split("\n## ")[0] if start >= 0 else ""
    return InitialWeights(str(path), weights_sha256(files), section.removeprefix("## How it was made").strip())


def continued_from_markdown(init: InitialWeights | None) -> str:
    """A model-card bullet saying which weights a continued run started from and how those were made."""
    if init is None:
        return ""
    how = "\n".join("  " + line if line else "" for line in (init.how_made or "(no model card)").splitlines())
    return (f"\n- Continued from the weights in `{init.path}` (sha256 `{init.sha256}`), which were made as "
            f"follows:\n\n{how}\n")


def cached_tokens(cache_dir: str | Path, build: Callable[[], tuple[Any, dict[str, np.ndarray]]],
                  log: Callable[[str], Any] | None = print) -> tuple[Any, dict[str, np.ndarray]]:
    """A tokenizer and named token arrays, cached in ``cache_dir`` (``tokenizer/``, ``NAME.npy``, and
    ``tokens.json`` written last, naming each array's length): built by ``build()`` on first use, read back after.

    Every file is written atomically and the manifest last, so a kill at any instant leaves a cache that is
    either complete or is rebuilt; a damaged cache (unreadable tokenizer, truncated array, lengths that
    disagree with the manifest) is reported through ``log``, removed and rebuilt."""
    cache = Path(cache_dir)
    manifest = cache / "tokens.json"
    if manifest.is_file():
        try:
            lengths = read_json(manifest)["arrays"]
            tokenizer = PreTrainedTokenizerFast.from_pretrained(str(cache / "tokenizer"))
            arrays = {name: load_npy(cache / f"{name}.npy") for name in lengths}
            bad = [n for n, a in arrays.items() if a.ndim != 1 or len(a) != int(lengths[n])
                   or (len(a) and int(a.max()) >= len(tokenizer))]
            if bad:
                raise ValueError(f"{', '.join(bad)} disagree with the manifest or the tokenizer")
            return tokenizer, arrays
        except Exception as e:  # noqa: BLE001 - any unreadable piece means: rebuild the whole cache
            if log is not None:
                log(f"The token cache {cache} is damaged ({type(e).__name__}: {str(e)[:160]}); rebuilding it.")
    elif cache.is_dir() and any(cache.iterdir()) and log is not None:
        log(f"The token cache {cache} is incomplete (an earlier run was stopped while writing it); rebuilding it.")
    shutil.rmtree(cache, ignore_errors=True)
    tokenizer, arrays = build()
    cache.mkdir(parents=True, exist_ok=True)
    staging = cache / f".tokenizer.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    tokenizer.save_pretrained(str(staging))
    staging.replace(cache / "tokenizer")
    for name, array in arrays.items():
        atomic_save_npy(cache / f"{name}.npy", array)
    atomic_write_json(manifest, {"arrays": {name: int(len(a)) for name, a in arrays.items()}})
    return tokenizer, arrays


def unigram_loss(train: np.ndarray, heldout: np.ndarray, vocab: int) -> float:
    """Cross-entropy (nats) of held-out tokens under add-one unigram frequencies: the no-context baseline."""
    counts = np.bincount(train, minlength=vocab).astype(np.float64) + 1
    logp = np.log(counts / counts.sum())
    return float(-logp[heldout].mean())


@torch.no_grad()
def greedy_completions(model, tokenizer, prompts: tuple[str, ...], n_new: int = 20) -> dict[str, str]:
    """Greedy continuations of each prompt; the model reads at most its context (the last n_positions tokens)."""
    out = {}
    n_ctx = int(getattr(model.config, "n_positions", 0) or 0)
    for p in prompts:
        x = torch.tensor([[tokenizer.bos_token_id] + tokenizer(p, add_special_tokens=False)["input_ids"]])
        for _ in range(n_new):
            nxt = model(x[:, -n_ctx:] if n_ctx else x).logits[0, -1].argmax()
            x = torch.cat([x, nxt.view(1, 1)], dim=1)
        out[p] = tokenizer.decode(x[0, 1:].tolist())[len(p):]
    return out
