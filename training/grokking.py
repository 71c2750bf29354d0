"""Train the grokking model of Nanda et al. 2023: (a + b) mod p from inputs [a, b, =], full batch, weight decay 1.0.

The model is a TransformerLens-native ``NativeModel`` (1 layer, no LayerNorm, ReLU MLP, attention and MLP biases
frozen at zero as in the paper's code), so the trained weights save with :func:`interp.native_models.save_native`
and load through ``interp.loading.load_model`` like any other model. Training does not run the generic forward:
only the '=' position's logits enter the loss, so :func:`fast_logits` computes the query, the attention output
and the MLP at that one position (keys and values at all three, read from per-(position, token) tables because a
1-layer model's keys and values depend only on the token and its position). It is the same function as the
NativeModel's last-position output (tested against the bridge) at a fraction of the cost.

Resumable (``training.checkpoint``; full batch and no sampling, so a resumed run equals an uninterrupted one),
with compact float16 weight snapshots every ``snapshot_every`` epochs in ``work_dir/snapshots`` from which the
progress measures (restricted / excluded loss, Fourier norms, weight norm) are drawn afterwards.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from interp import validate
from interp.errors import InvalidInput
from interp.native_models import build_native_model, native_config, save_native
from probes.fourier.modular import embedding_freq_norms
from probes.fourier.phases import GROK_ACC, first_epoch_reaching, phase_boundaries
from training.checkpoint import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    resume_or_start,
    save_checkpoint,
)


@dataclass
class GrokConfig:
    """Defaults: the published setting (p = 113, 30% of pairs train, 1 layer, d_model 128, 4 heads of 32,
    d_mlp 512, AdamW lr 1e-3, wd 1.0, betas (0.9, 0.98), full batch; the paper trains 40k epochs)."""
    p: int = 113
    frac_train: float = 0.3
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512
    lr: float = 1e-3
    weight_decay: float = 1.0
    beta2: float = 0.98
    epochs: int = 40_000
    seed: int = 0  # model initialisation
    data_seed: int = 598  # the train/test split (the paper's)
    log_every: int = 10  # epochs between test evaluations
    snapshot_every: int = 100  # epochs between float16 weight snapshots (0: none)
    checkpoint_every: int = 500

    def check(self) -> GrokConfig:
        """Every field in range (before any allocation); InvalidInput naming the field."""
        validate.settings(self, {
            "p": ("int", 5, 2000), "frac_train": ("real>", 0.0, 0.999999), "d_model": ("int", 1, 8192),
            "n_heads": ("int", 1, 256), "d_mlp": ("int", 1, 65_536), "lr": ("real>", 0.0, 10.0),
            "weight_decay": ("real", 0.0, 100.0), "beta2": ("real", 0.0, 0.999999), "epochs": ("int", 1, 10**8),
            "seed": ("int", 0, validate.SEED_MAX), "data_seed": ("int", 0, validate.SEED_MAX),
            "log_every": ("int", 1, 10**9), "snapshot_every": ("int", 0, 10**9),
            "checkpoint_every": ("int", 1, 10**9)}, "Grokking setting")
        if self.d_model % self.n_heads:
            raise InvalidInput(f"Grokking setting d_model {self.d_model} is not divisible by n_heads {self.n_heads}.")
        return self


@dataclass
class GrokHistory:
    """Per-log records (JSON-friendly lists); ``seconds`` is the training wall time so far."""
    epochs: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def phases(self, p: int) -> dict[str, int | None]:
        """Memorised / cleanup start / cleanup end / grokked epochs (:func:`probes.fourier.phases.phase_boundaries`)."""
        return phase_boundaries(self.epochs, self.train_acc, self.test_loss, self.test_acc, p)


@dataclass
class GrokOutcome:
    model: torch.nn.Module  # plain NativeModel (eval mode)
    cfg: Any  # TransformerBridgeConfig
    config: GrokConfig
    history: GrokHistory
    stopped: bool  # should_stop() ended training early
    resumed_from: int  # epoch the run resumed from (0: fresh)
    snapshots: list[int]  # epochs with a weight snapshot in work_dir/snapshots


def model_config(c: GrokConfig) -> Any:
    """TL-native config: 1 layer, no LayerNorm, ReLU, vocabulary 0..p-1 plus '=' (id p), context 3."""
    if c.d_model % c.n_heads:
        raise InvalidInput(f"d_model {c.d_model} is not divisible by n_heads {c.n_heads}.")
    return native_config(n_layers=1, d_model=c.d_model, n_heads=c.n_heads, d_head=c.d_model // c.n_heads,
                         d_mlp=c.d_mlp, d_vocab=c.p + 1, n_ctx=3, attn_only=False, normalization_type=None,
                         positional_embedding_type="standard", act_fn="relu", default_prepend_bos=False)


def number_tokenizer(p: int):
    """Word-level tokenizer: "0".."p-1" are ids 0..p-1, "=" is id p (so "5 7 =" -> [5, 7, p])."""
    vocab = {**{str(i): i for i in range(p)}, "=": p}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="="))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="=", pad_token="=")


def all_pairs(p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every [a, b, =] input and its label (a + b) mod p, in the order a * p + b. ([p*p, 3], [p*p])"""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    tokens = torch.stack([a, b, torch.full_like(a, p)], dim=1)  # [p*p, 3]
    return tokens, (a + b) % p


def split_indices(c: GrokConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) indices into :func:`all_pairs`, a seeded permutation cut at ``frac_train``."""
    n = c.p * c.p
    perm = torch.from_numpy(np.random.default_rng(c.data_seed).permutation(n))
    cut = int(round(c.frac_train * n))
    return perm[:cut], perm[cut:]


def fast_logits(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """The NativeModel's logits at the last of three positions, computed only there. [batch, d_vocab]"""
    return fast_forward(model, tokens)[0]


def fast_forward(model: torch.nn.Module, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits [batch, d_vocab], MLP post-activations [batch, d_mlp]) at the last of three positions.

    Keys and values of a 1-layer model depend on (token, position) alone, so they come from [3, vocab, ...]
    tables; the query, attention output, MLP and unembedding run once per input at the '=' position.
    """
    blk = model.layers[0]
    att, mlp = blk.attn, blk.mlp
    n_heads, d_head = att.n_heads, att.d_head
    x_table = model.tok_embed.weight[None] + model.pos.weight[:, None]  # [pos, vocab, d_model]
    k_table = F.linear(x_table, att.k.weight, att.k.bias).unflatten(-1, (n_heads, d_head))  # [pos, vocab, head, dh]
    v_table = F.linear(x_table, att.v.weight, att.v.bias).unflatten(-1, (n_heads, d_head))  # [pos, vocab, head, dh]
    q_table = F.linear(x_table[2], att.q.weight, att.q.bias).unflatten(-1, (n_heads, d_head))  # [vocab, head, dh]
    # scores of the last position's query against every (position, token) key: [vocab_q, pos, vocab_k, head]
    s_table = torch.einsum("qhd,pkhd->qpkh", q_table, k_table) / att.scale
    pos = torch.arange(3)
    scores = s_table[tokens[:, 2:3], pos, tokens]  # [batch, pos, head]
    pattern = scores.softmax(dim=1)  # [batch, pos, head]
    z = torch.einsum("bph,bphd->bhd", pattern, v_table[pos, tokens])  # [batch, head, dh]
    resid = x_table[2][tokens[:, 2]] + F.linear(z.flatten(1), att.o.weight, att.o.bias)  # [batch, d_model]
    acts = F.relu(F.linear(resid, mlp.fc_in.weight, mlp.fc_in.bias))  # [batch, d_mlp]
    resid = resid + F.linear(acts, mlp.fc_out.weight, mlp.fc_out.bias)  # [batch, d_model]
    return F.linear(resid, model.head.weight), acts  # [batch, d_vocab], [batch, d_mlp]


def weights_for_analysis(model: torch.nn.Module, p: int) -> dict[str, torch.Tensor]:
    """The matrices the Fourier analyses read: W_E [p, d_model] (number rows), W_U [d_model, p] (number
    columns), W_out [d_mlp, d_model], and every trainable weight (for the sum of squares)."""
    return {"W_E": model.tok_embed.weight[:p].detach(), "W_U": model.head.weight[:p].detach().T,
            "W_out": model.layers[0].mlp.fc_out.weight.detach().T}


def trainable_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach() for k, v in model.named_parameters() if not k.endswith(".bias")}


def loss_and_acc(logits: torch.Tensor, labels: torch.Tensor, p: int) -> tuple[torch.Tensor, float]:
    """Cross-entropy over the p answer logits (in float64, as the paper, so tiny losses stay exact) and accuracy."""
    lg = logits[:, :p].double()  # [batch, p]
    loss = F.cross_entropy(lg, labels)
    return loss, float((lg.argmax(-1) == labels).float().mean())


def build_model(c: GrokConfig) -> tuple[torch.nn.Module, Any]:
    """(NativeModel with TL's init and zeroed biases, its config); biases are frozen (requires_grad False)."""
    cfg = model_config(c)
    model = build_native_model(cfg, seed=c.seed)
    for name, prm in model.named_parameters():
        if name.endswith(".bias"):
            with torch.no_grad():
                prm.zero_()
            prm.requires_grad_(False)
    return model, cfg


def make_optimizer(model: torch.nn.Module, c: GrokConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=c.lr,
                             weight_decay=c.weight_decay, betas=(0.9, c.beta2))


def cache_key(c: GrokConfig) -> str:
    """A short hash of everything but ``epochs``: a longer run with the same settings resumes a shorter one."""
    fields = {k: v for k, v in dataclasses.asdict(c).items() if k != "epochs"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]


def snapshot_dir(work_dir: str | Path) -> Path:
    return Path(work_dir) / "snapshots"


def save_snapshot(model: torch.nn.Module, path: Path) -> None:
    """The model's trainable weights in float16 safetensors, written atomically."""
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()
             if not k.endswith(".bias")}
    atomic_write_bytes(path, save(state))


def list_snapshots(work_dir: str | Path) -> list[int]:
    """Epochs with a snapshot in ``work_dir/snapshots``, ascending."""
    d = snapshot_dir(work_dir)
    return sorted(int(f.stem.split("_")[1]) for f in d.glob("epoch_*.safetensors")) if d.is_dir() else []


def load_snapshot(work_dir: str | Path, epoch: int, c: GrokConfig) -> torch.nn.Module:
    """A float32 NativeModel holding the weights snapshotted at ``epoch`` (biases zero)."""
    model, _ = build_model(c)
    state = load_file(str(snapshot_dir(work_dir) / f"epoch_{epoch:06d}.safetensors"))
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    return model.eval()


def train_grokking(
    c: GrokConfig,
    *,
    work_dir: str | Path | None = None,
    callback: Callable[[int, dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    threads: int | None = None,
    log: Callable[[str], None] | None = print,
    with_spectrum: bool = False,
) -> GrokOutcome:
    """Train (or resume from ``work_dir``) to ``c.epochs``; ``callback(epoch, metrics)`` after every logged epoch
    (train/test loss and accuracy, and with ``with_spectrum`` the embedding's per-frequency squared Fourier
    norms as ``embed_norms``); ``should_stop()`` ends early (checkpointed)."""
    c.check()
    if threads:
        torch.set_num_threads(threads)
    model, cfg = build_model(c)
    opt = make_optimizer(model, c)
    tokens, labels = all_pairs(c.p)
    tr, te = split_indices(c)
    x_tr, y_tr, x_te, y_te = tokens[tr], labels[tr], tokens[te], labels[te]
    ckpt = Path(work_dir) / "checkpoint.pt" if work_dir else None
    resumed = resume_or_start(ckpt, model=model, optimizer=opt, log=log)
    history = GrokHistory(**resumed.extra["history"]) if resumed.step and "history" in resumed.extra else GrokHistory()
    epoch = resumed.step
    if epoch > c.epochs:
        raise InvalidInput(f"The training cache {work_dir} already holds {epoch} epochs, more than the {c.epochs} "
                           f"asked for: ask for epochs >= {epoch}, or delete that folder to train afresh.")
    if work_dir:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
        atomic_write_json(Path(work_dir) / "train_config.json", dataclasses.asdict(c))
    t0, stopped = time.perf_counter() - history.seconds, False

    def checkpoint() -> None:
        if ckpt is not None:
            history.seconds = time.perf_counter() - t0
            save_checkpoint(ckpt, step=epoch, model=model, optimizer=opt, extra={"history": history.to_dict()})
            atomic_write_json(Path(work_dir) / "history.json", history.to_dict())

    def snapshot() -> None:
        if work_dir and c.snapshot_every and (epoch % c.snapshot_every == 0 or epoch == c.epochs):
            save_snapshot(model, snapshot_dir(work_dir) / f"epoch_{epoch:06d}.safetensors")

    if epoch == 0:
        snapshot()
    model.train()
    while epoch < c.epochs:
        if should_stop is not None and should_stop():
            stopped = True
            break
        train_loss, train_acc = loss_and_acc(fast_logits(model, x_tr), y_tr, c.p)
        opt.zero_grad(set_to_none=True)
        train_loss.backward()
        opt.step()
        epoch += 1
        if epoch % c.log_every == 0 or epoch == c.epochs or epoch == 1:
            with torch.no_grad():
                test_loss, test_acc = loss_and_acc(fast_logits(model, x_te), y_te, c.p)
            m = {"train_loss": train_loss.item(), "train_acc": train_acc, "test_loss": float(test_loss),
                 "test_acc": test_acc}  # train metrics are from before this epoch's update
            history.epochs.append(epoch)
            for k, v in m.items():
                getattr(history, k).append(v)
            history.seconds = time.perf_counter() - t0
            if callback is not None:
                if with_spectrum:

                    m["embed_norms"] = embedding_freq_norms(model.tok_embed.weight[: c.p].detach()).tolist()
                callback(epoch, m)
        snapshot()
        if epoch % c.checkpoint_every == 0 or epoch == c.epochs:
            checkpoint()
    if stopped:
        checkpoint()
    history.seconds = time.perf_counter() - t0
    model.eval()
    return GrokOutcome(model, cfg, c, history, stopped, resumed.step, list_snapshots(work_dir) if work_dir else [])


def grok_epoch(history: GrokHistory, threshold: float = GROK_ACC) -> int | None:
    """First logged epoch with test accuracy >= ``threshold`` (None: never)."""
    return first_epoch_reaching(history.epochs, history.test_acc, threshold)


def save_trained(outcome: GrokOutcome, out_dir: str | Path, card: str, extra_log: dict[str, Any] | None = None) -> Path:
    """Write the model (save_native, number tokenizer), ``training_log.json`` and the model card ``README.md``."""
    c = outcome.config
    prompts = [f"{a} {b} =" for a, b in ((3, 5), (c.p - 1, 1), (17 % c.p, 40 % c.p))]
    out = save_native(outcome.model, outcome.cfg, number_tokenizer(c.p), out_dir,
                      extra={"workbench_training": {"kind": "grokking", **dataclasses.asdict(c)},
                             "workbench_prompts": prompts})
    atomic_write_json(out / "training_log.json", {**outcome.history.to_dict(), **(extra_log or {})})
    atomic_write_text(out / "README.md", card)
    return out


