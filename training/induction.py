"""Train attention-only TL-native transformers from scratch on sequences with repeats, watching induction form.

A plain NativeModel training loop (no hooks in the hot path: ~2x faster than training through the bridge),
with resumable checkpoints and a per-step ``callback(step, metrics)`` plus a ``should_stop()`` flag, so the
app's live Train page and the ``induction-phase-change`` experiment drive the same code.

Every ``eval_every`` steps it records, on a fixed batch of BOS + A + A (A random, length ``(seq_len-1)//2``):
loss on the first and second copy (ICL score = second - first) and every head's induction and
previous-token score, read from the attention patterns the model returns anyway (one forward pass).
Checkpoints are ``training.checkpoint`` files (one atomic file: model, optimiser, RNG states and the history),
so a run killed at any instant resumes to the uninterrupted result. A NaN/inf loss stops training, naming the step.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from interp.errors import InvalidInput
from interp.native_models import build_native_model, native_config, save_native
from probes.heads.ablation import copy_losses
from probes.heads.detectors import repeated_sequence_scores
from tasks.repeats import noise_with_repeats, repeated_random_tokens, tiled_random_segments
from training.checkpoint import atomic_write_json, atomic_write_text, resume_or_start, save_checkpoint
from training.guards import check_loss

BOS = 0  # token id 0 is BOS; data tokens are 1..d_vocab-1
#: The phase change: the first evaluation where the best head's induction score reaches this.
PHASE_THRESHOLD = 0.5

#: What an attention-only model is trained on: tiled random segments, windows of the stdlib corpus, or noise rows
#: of which a share hold one repeated span (the ICL-vs-structure sweep).
DataKind = Literal["tiled-random", "stdlib", "repeat-share"]


@dataclass
class InductionTrainConfig:
    """Defaults: the issue's quick measurement (2 layers, d_model 128, 4 heads, vocab 1000, seq 128, batch 32)."""
    n_layers: int = 2
    d_model: int = 128
    n_heads: int = 4
    d_vocab: int = 1000
    seq_len: int = 128  # = n_ctx; every row is BOS + 127 tokens
    batch_size: int = 32
    steps: int = 2000
    lr: float = 1e-3
    warmup: int = 50
    weight_decay: float = 0.01
    seg_min: int = 8  # tiled segment lengths are drawn from [seg_min, seg_max]
    seg_max: int = 64
    data: DataKind = "tiled-random"  # or "stdlib": windows of the corpus token stream passed to train_induction
    repeat_share: float = 1.0  # data="repeat-share": share of noise rows that hold one repeated span
    span_len: int = 16  # data="repeat-share": length of that span
    seed: int = 0
    eval_every: int = 50
    eval_batch: int = 16
    checkpoint_every: int = 250

    def check(self) -> None:
        """Every field in range and the fields consistent; else InvalidInput naming the field and the range."""
        ints = {"n_layers": (1, 64), "d_model": (4, 8192), "n_heads": (1, 256), "d_vocab": (16, 1_000_000),
                "seq_len": (8, 16_384), "batch_size": (1, 4096), "steps": (1, 10_000_000), "warmup": (0, 10_000_000),
                "seg_min": (1, 16_384), "seg_max": (1, 16_384), "seed": (0, 2**32 - 1), "eval_every": (1, 10**9),
                "eval_batch": (1, 4096), "checkpoint_every": (1, 10**9)}
        for name, (lo, hi) in ints.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise InvalidInput(f"{name}={v!r} is invalid: expected a whole number in {lo} .. {hi}.")
        # a huge lr is allowed (divergence then stops training naming the step, tested); past 1e6 AdamW's own
        # arithmetic overflows before any loss is computed
        for name, high in (("lr", 1e6), ("weight_decay", 100.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 \
                    or (name == "lr" and v == 0) or v > high:
                raise InvalidInput(f"{name}={v!r} is invalid: expected a finite number "
                                   f"{'> 0' if name == 'lr' else '>= 0'} and <= {high:g}.")
        if self.d_model % self.n_heads:
            raise InvalidInput(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}.",
                               "Choose n_heads dividing d_model (d_head = d_model / n_heads).")
        if self.data == "tiled-random" and self.seg_min > self.seg_max:
            raise InvalidInput(f"seg_min {self.seg_min} is larger than seg_max {self.seg_max}.",
                               "Segment lengths are drawn from seg_min .. seg_max: make seg_min <= seg_max.")
        if self.data == "tiled-random" and self.seg_max >= self.seq_len:
            raise InvalidInput(f"seg_max {self.seg_max} must be shorter than seq_len {self.seq_len} (a segment "
                               "has to repeat within a row).")
        if self.data not in get_args(DataKind):
            raise InvalidInput(f"data={self.data!r} is invalid: expected one of {', '.join(get_args(DataKind))}.")
        # checked whatever the data kind (a bad value never travels in a config, used or not)
        if isinstance(self.repeat_share, bool) or not isinstance(self.repeat_share, (int, float)) \
                or not 0.0 <= self.repeat_share <= 1.0:
            raise InvalidInput(f"repeat_share={self.repeat_share!r} is invalid: expected a number in 0 .. 1.")
        if isinstance(self.span_len, bool) or not isinstance(self.span_len, int) or not 1 <= self.span_len <= 100_000:
            raise InvalidInput(f"span_len={self.span_len!r} is invalid: expected a whole number in 1 .. 100000.")
        if self.data == "repeat-share" and 2 * self.span_len > self.seq_len - 1:
            raise InvalidInput(f"span_len={self.span_len!r} is invalid: two copies must fit in seq_len - 1 = "
                               f"{self.seq_len - 1} tokens (1 .. {(self.seq_len - 1) // 2}).")


@dataclass
class TrainHistory:
    """Per-eval records against step and tokens seen (JSON-friendly lists)."""
    steps: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    loss_first: list[float] = field(default_factory=list)
    loss_second: list[float] = field(default_factory=list)
    icl_score: list[float] = field(default_factory=list)
    induction: list[list[list[float]]] = field(default_factory=list)  # [eval][layer][head]
    prev_token: list[list[list[float]]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def max_induction(self) -> list[float]:
        return [max(max(row) for row in m) for m in self.induction]


@dataclass
class TrainOutcome:
    model: torch.nn.Module  # plain NativeModel (eval mode)
    cfg: Any  # TransformerBridgeConfig
    config: InductionTrainConfig
    history: TrainHistory
    stopped: bool  # True when should_stop() ended training early
    resumed_from: int  # step the run resumed from (0: fresh)


def model_config(c: InductionTrainConfig) -> Any:
    """The TL-native attention-only config (LayerNorm, learned positions, d_head = d_model / n_heads)."""
    c.check()
    return native_config(n_layers=c.n_layers, d_model=c.d_model, n_heads=c.n_heads, d_head=c.d_model // c.n_heads,
                         d_vocab=c.d_vocab, n_ctx=c.seq_len, attn_only=True, normalization_type="LN",
                         positional_embedding_type="standard", act_fn="gelu", default_prepend_bos=True)


def token_tokenizer(d_vocab: int):
    """A word-level tokenizer for synthetic ids: ``<bos>`` is 0, ``t1``..``t{d_vocab-1}`` are the data tokens."""
    vocab = {"<bos>": BOS, **{f"t{i}": i for i in range(1, d_vocab)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<bos>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<bos>",
                                   unk_token="<bos>", pad_token="<bos>")


def lr_at(step: int, c: InductionTrainConfig) -> float:
    """Linear warm-up then constant (a decay would blur when the phase change happens)."""
    return c.lr * min(1.0, (step + 1) / max(1, c.warmup))


def batch_at(step: int, c: InductionTrainConfig, stream: np.ndarray | None = None) -> torch.Tensor:
    """The training batch of ``step`` (seeded by (seed, step) so a resumed run sees the same data). [batch, seq]

    Tiled random segments, noise rows with a repeated span in a share of them (``data="repeat-share"``), or
    (``stream`` given) BOS + random windows of ``seq_len - 1`` tokens of the stream.
    """
    gen = torch.Generator().manual_seed(c.seed * 1_000_003 + step)
    if stream is not None:
        starts = torch.randint(0, len(stream) - c.seq_len, (c.batch_size,), generator=gen).numpy()
        rows = torch.from_numpy(np.stack([stream[s : s + c.seq_len - 1] for s in starts]).astype(np.int64))
        return torch.cat([torch.full((c.batch_size, 1), BOS, dtype=torch.long), rows], dim=1)
    if c.data == "repeat-share":
        return noise_with_repeats(c.batch_size, c.seq_len, c.d_vocab, share=c.repeat_share, span_len=c.span_len,
                                  gen=gen, bos=BOS, low=1)
    return tiled_random_segments(c.batch_size, c.seq_len, c.d_vocab, seg_min=c.seg_min, seg_max=c.seg_max,
                                 gen=gen, bos=BOS, low=1)


def eval_tokens(c: InductionTrainConfig) -> tuple[torch.Tensor, int]:
    """Fixed evaluation batch BOS + A + A, A random of length (seq_len - 1) // 2. ([batch, 1 + 2L], L)"""
    half = (c.seq_len - 1) // 2
    return repeated_random_tokens(c.eval_batch, half, c.d_vocab, seed=10_000 + c.seed, bos=BOS, low=1), half


@torch.no_grad()
def native_patterns(model: torch.nn.Module, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits [batch, pos, vocab], patterns [layer, batch, head, q, k]) from one plain forward pass."""
    grabbed: list[torch.Tensor] = []
    handles = [blk.attn.register_forward_hook(lambda m, i, o: grabbed.append(o[1])) for blk in model.layers]
    try:
        logits = model(tokens)
    finally:
        for h in handles:
            h.remove()
    return logits, torch.stack(grabbed)


@torch.no_grad()
def evaluate(model: torch.nn.Module, tokens: torch.Tensor, half: int) -> dict[str, Any]:
    """ICL losses and per-head induction / previous-token scores on BOS + A + A."""
    was_training = model.training
    model.eval()
    logits, pats = native_patterns(model, tokens)
    first, second = copy_losses(logits, tokens, half)
    scores = repeated_sequence_scores(pats, half)
    model.train(was_training)
    return {"loss_first": float(first), "loss_second": float(second), "icl_score": float(second - first),
            "induction": scores["induction"], "prev_token": scores["prev_token"]}  # [layer, head]


def _checkpoint_path(work_dir: Path) -> Path:
    return work_dir / "checkpoint.pt"


def _save_checkpoint(path: Path, step: int, model, opt, history: TrainHistory) -> None:
    save_checkpoint(path, step=step, model=model, optimizer=opt, extra={"history": history.to_dict()})


def train_induction(
    c: InductionTrainConfig,
    *,
    work_dir: str | Path | None = None,
    callback: Callable[[int, dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    stream: np.ndarray | None = None,
) -> TrainOutcome:
    """Train (or resume from ``work_dir``) an attention-only model; ``callback(step, metrics)`` runs after
    every step (``metrics`` holds ``loss`` and, on eval steps, the eval record); ``should_stop()`` ends early.
    ``stream`` (1-D token ids, with ``c.data == "stdlib"``): train on windows of it instead of tiled random segments."""
    c.check()
    if (stream is not None) != (c.data == "stdlib"):
        raise InvalidInput('Pass a token stream exactly when data="stdlib".')
    if stream is not None and (len(stream) <= c.seq_len or int(stream.max()) >= c.d_vocab):
        raise InvalidInput(f"The token stream must hold more than seq_len={c.seq_len} tokens, each < d_vocab "
                           f"{c.d_vocab} (it has {len(stream)}, max {int(stream.max()) if len(stream) else '-'}).")
    cfg = model_config(c)
    model = build_native_model(cfg, seed=c.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=c.lr, weight_decay=c.weight_decay, betas=(0.9, 0.99))
    history = TrainHistory()
    ckpt = _checkpoint_path(Path(work_dir)) if work_dir else None
    resumed = resume_or_start(ckpt, model=model, optimizer=opt)
    start = resumed.step
    if start:
        history = TrainHistory(**resumed.extra["history"])
    resumed_from = start
    ev_tokens, half = eval_tokens(c)
    tokens_per_step = c.batch_size * (c.seq_len - 1)
    model.train()
    t0, stopped = time.perf_counter() - history.seconds, False
    step = start
    while step < c.steps:
        if should_stop is not None and should_stop():
            stopped = True
            break
        if step % c.eval_every == 0 and (not history.steps or history.steps[-1] != step):
            _record(history, step, step * tokens_per_step, evaluate(model, ev_tokens, half), math.nan)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, c)
        batch = batch_at(step, c, stream)
        logits = model(batch)  # [batch, seq, vocab]
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        check_loss(loss.item(), step + 1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        metrics: dict[str, Any] = {"loss": loss.item(), "tokens": step * tokens_per_step}
        if history.steps and history.steps[-1] == step - 1 and math.isnan(history.train_loss[-1]):
            history.train_loss[-1] = metrics["loss"]
        if step % c.eval_every == 0 or step == c.steps:
            ev = evaluate(model, ev_tokens, half)
            _record(history, step, step * tokens_per_step, ev, metrics["loss"])
            metrics.update({k: v for k, v in ev.items() if k not in ("induction", "prev_token")},
                           max_induction=float(ev["induction"].max()), induction=ev["induction"],
                           prev_token=ev["prev_token"])
        history.seconds = time.perf_counter() - t0
        if ckpt is not None and (step % c.checkpoint_every == 0 or step == c.steps):
            _save_checkpoint(ckpt, step, model, opt, history)
        if callback is not None:
            callback(step, metrics)
    if ckpt is not None and stopped:
        _save_checkpoint(ckpt, step, model, opt, history)
    model.eval()
    return TrainOutcome(model, cfg, c, history, stopped, resumed_from)


def _record(h: TrainHistory, step: int, tokens: int, ev: dict[str, Any], loss: float) -> None:
    h.steps.append(step)
    h.tokens.append(tokens)
    h.train_loss.append(loss)
    h.loss_first.append(ev["loss_first"])
    h.loss_second.append(ev["loss_second"])
    h.icl_score.append(ev["icl_score"])
    h.induction.append(ev["induction"].tolist())
    h.prev_token.append(ev["prev_token"].tolist())


def phase_change_step(history: TrainHistory, threshold: float = PHASE_THRESHOLD) -> int | None:
    """First evaluated step at which the best head's induction score reaches ``threshold`` (None: never)."""
    for step, score in zip(history.steps, history.max_induction()):
        if score >= threshold:
            return step
    return None


def save_trained(outcome: TrainOutcome, out_dir: str | Path, card: str, tokenizer: Any = None) -> Path:
    """Write the model as a loadable directory (save_native) with its training log and model card."""
    tokenizer = tokenizer if tokenizer is not None else token_tokenizer(outcome.config.d_vocab)
    out = save_native(outcome.model, outcome.cfg, tokenizer, out_dir,
                      extra={"bos_token_id": BOS, "workbench_training": dataclasses.asdict(outcome.config)})
    atomic_write_json(out / "training_log.json", outcome.history.to_dict())
    atomic_write_text(out / "README.md", card)
    return out
