"""train-sae: train a sparse autoencoder on one hook of a model and write it in SAELens's format, with a card.

Activations are computed on the fly, one seeded token batch per step (stdlib text windows for a text model,
fresh random games for an Othello-GPT), so nothing but one batch is held. At the end the SAE is spliced
into the forward pass on held-out tokens (CE loss recovered, KL), its dead and dense latents are counted,
and for an Othello-GPT each latent is matched to the board feature that best predicts it (AUC). The bundled
SAEs in ``models/<model>/saes/`` were made by this experiment with ``--set out=models/<model>/saes/<name>``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from experiments.core.context import RunContext
from experiments.core.preconditions import data_not_degenerate, tokens_not_degenerate
from experiments.core.registry import Check, Experiment, RunResult, Verdict, register
from experiments.core.settings import RunSettings, setting
from interp.errors import InvalidInput
from interp.loading import BUNDLED_DIR
from interp.model import Model
from learned.sae import Architecture, latent_fractions
from learned.sae_files import write_sae_dir
from plots.common import lines_by_x
from probes.features.latents import othello_latent_aucs
from probes.features.splice import splice_metrics
from tasks.corpus import encode_docs, stdlib_texts
from tasks.othello import is_othello_model, random_games
from training.checkpoint import atomic_save_npy, load_npy
from training.sae import SAETrainSettings, evaluate_sae, train_sae
from training.sae_data import model_sae_job

TEXT_SEQ = 128


@dataclass
class TrainSAEConfig(RunSettings):
    model: str = setting("stdlib-gpt2", "model whose activations the SAE reads: bundled name, directory or Hub name",
                         path="model")
    hook: str = setting("blocks.2.hook_resid_pre", "TransformerLens hook name the SAE reads and is spliced into")
    architecture: Architecture = setting("topk", "SAE kind: topk (Gao et al. 2024) or standard (ReLU + weighted L1)")
    expansion: int = setting(8, "latents per input dimension (d_sae = expansion x d_in)", low=1, high=256)
    k: int = setting(32, "TopK: latents active per token", low=1, high=65_536)
    l1_coeff: float = setting(5.0, "ReLU: L1 coefficient on inputs scaled to norm sqrt(d_in)", positive=True, high=1e6)
    lr: float = setting(1e-3, "Adam learning rate", positive=True, high=10)
    steps: int = setting(3000, "training steps", low=1, high=10_000_000)
    batch_seqs: int = setting(32, "sequences (text windows of 128 tokens, or games) per step", low=1, high=4096)
    dead_tokens: int = setting(500_000, "a latent that has not fired for this many tokens is dead (aux-k trains it)",
                               low=1, high=10**12)
    max_chars: int = setting(0, "text models: read the stdlib's files up to this many characters (0: all)",
                             low=0, high=10**10)
    eval_seqs: int = setting(64, "held-out sequences for CE loss recovered and AUCs", low=2, high=100_000)
    out: str = setting("", "where to write the SAE folder (default: <results>/sae); e.g. models/<model>/saes/<name>",
                       path="out")

    def check(self) -> None:
        super().check()
        if self.out:
            check_sae_out(Path(self.out).expanduser(), self.model)


def check_sae_out(out: Path, model: str) -> None:
    """Inside the bundled models folder an SAE goes to ``models/<model>/saes/<name>`` (the Features page finds it
    there), with <model> a bundled model (the one trained on, when a bundled name is given); elsewhere any folder
    the one output rule allows."""
    root = BUNDLED_DIR.resolve()
    p = out.resolve()
    if not p.is_relative_to(root):
        return
    parts = p.relative_to(root).parts
    bundled = model if (BUNDLED_DIR / model).is_dir() else None
    if len(parts) != 3 or parts[1] != "saes" or not (root / parts[0] / "config.json").is_file() or (
            bundled is not None and parts[0] != bundled):
        raise InvalidInput(f"Setting out={str(out)[:100]!r}: inside models/ an SAE goes to "
                           f"models/{bundled or '<model>'}/saes/<name>.",
                           f"For example --set out=models/{bundled or 'stdlib-gpt2'}/saes/my-sae.")


@register
class TrainSAE(Experiment):
    name = "train-sae"
    title = "Train a sparse autoencoder on a model's activations (SAELens format, with a card)"
    Config = TrainSAEConfig
    presets = {"ci": {"max_chars": 150_000, "steps": 30, "expansion": 2, "k": 8, "batch_seqs": 4, "eval_seqs": 4,
                      "dead_tokens": 5000}}
    finding = None
    precondition = ("the training and held-out text are not degenerate (the tokenizer does not turn them into "
                    "<bos>/<unk>: at least 20 distinct ordinary tokens) and the splice losses are finite")

    def run(self, config: TrainSAEConfig, ctx: RunContext) -> RunResult:
        ctx.progress(0.0, "loading model")
        handle = ctx.load_model(config.model)
        othello = is_othello_model(handle)
        text = None if othello else _text_tokens(handle, ctx, heldout=False, max_chars=config.max_chars)
        if text is not None:  # a tokenizer that turns the corpus into <bos>/<unk> leaves nothing to learn
            special = handle.tokenizer.all_special_ids
            preconditions = [tokens_not_degenerate("training tokens", text, special=special, min_distinct=20)]
            if not preconditions[0].passed:
                return RunResult({"model": handle.info.name, "hook": config.hook},
                                 Verdict.from_checks([], preconditions=preconditions),
                                 f"`{handle.info.name}`'s tokenizer turns the training text into special tokens, "
                                 "so no SAE was trained or written: its variance explained and CE loss recovered "
                                 "on such data would say nothing.")
        else:
            preconditions = []
        source, cfg = model_sae_job(handle, config.hook, batch_seqs=config.batch_seqs,
                                    d_sae=config.expansion * handle.info.d_model, text_tokens=text,
                                    text_seq=TEXT_SEQ, seed=config.seed)
        d_sae, seq = cfg.d_sae, cfg.context_size
        s = SAETrainSettings(architecture=config.architecture, d_sae=d_sae, k=min(config.k, d_sae),
                             l1_coeff=config.l1_coeff, lr=config.lr, steps=config.steps,
                             dead_tokens=config.dead_tokens, seed=config.seed)
        key = hashlib.sha256(json.dumps([handle.info.sha256, config.hook, config.batch_seqs, asdict(s)],
                                        sort_keys=True).encode()).hexdigest()[:12]
        ckpt = ctx.shared_cache(f"sae-train/{key}") / "checkpoint.pt"
        trained = train_sae(source, s, cfg, checkpoint=ckpt, should_stop=ctx.should_stop,
                            progress=lambda f, m: ctx.progress(0.05 + 0.8 * f, m), log=print)
        if trained.stopped:
            ctx.check_cancelled()
        sae = trained.sae
        ctx.progress(0.86, "splicing the SAE into the forward pass")
        eval_tok, eval_mask = _eval_tokens(handle, ctx, othello, config.eval_seqs, seq, config.max_chars)
        splice = splice_metrics(handle, sae, eval_tok, loss_mask=eval_mask)
        if not othello:
            preconditions.append(tokens_not_degenerate("held-out tokens", eval_tok, special=special, min_distinct=20))
        preconditions.append(data_not_degenerate(
            "splice losses (clean, SAE, zero-ablated CE)", [splice.ce_clean, splice.ce_sae, splice.ce_zero]))
        ev = evaluate_sae(sae, source, n_batches=4)
        frac = latent_fractions(ev["fire_counts"], ev["n_tokens"])
        metrics = {"hook": config.hook, "d_in": source.d_in, "d_sae": d_sae, "architecture": config.architecture,
                   "tokens_trained": trained.history.tokens, "l0": round(splice.l0, 3),
                   "variance_explained": round(splice.variance_explained, 4),
                   "ce_clean": round(splice.ce_clean, 4), "ce_sae": round(splice.ce_sae, 4),
                   "ce_zero": round(splice.ce_zero, 4), "ce_loss_recovered": round(splice.ce_recovered, 4),
                   "kl": round(splice.kl, 4), "dead_fraction": round(frac.dead, 4),
                   "dense_fraction": round(frac.dense, 4),
                   "eval_tokens": splice.n_tokens, "dead_count_tokens": ev["n_tokens"]}
        board_md = ""
        if othello:
            ctx.progress(0.9, "matching latents to board features")

            aucs = othello_latent_aucs(handle, sae, n_games=max(config.eval_seqs, 50), seed=config.seed)
            metrics.update({"othello_auc_share": round(aucs.share_at(0.9), 4),
                            "othello_auc_share_alive": round(aucs.share_at(0.9, alive_only=True), 4),
                            "othello_precision_share": round(float(np.mean(np.nan_to_num(aucs.best_precision) >= 0.9)),
                                                             4),
                            "othello_probe_accuracy": round(aucs.probe_accuracy or float("nan"), 4),
                            "othello_auc_by_kind": {k: round(v, 4) for k, v in aucs.share_by_kind(0.9).items()}})
            board_md = aucs.markdown(0.9)
        card = _card(config, metrics, trained, board_md)
        out = Path(config.out).expanduser() if config.out else ctx.out_dir / "sae"
        sae.cfg.extra = {"trained_by": "python -m experiments run train-sae", "tokens_trained": trained.history.tokens,
                         "settings": asdict(s),
                         "metrics": {k: v for k, v in metrics.items() if k != "othello_auc_by_kind"}}
        weights_cfg, tensors = sae.to_saelens()
        write_sae_dir(out, weights_cfg, tensors, card=card)
        h = trained.history
        fig = lines_by_x({"variance explained": h.variance_explained, "dead fraction": h.dead_fraction}, h.steps,
                         "SAE training", "step", "") if h.steps else None
        checks = [Check("CE loss recovered >= 80% at L0 <= 50", splice.ce_recovered >= 0.8 and splice.l0 <= 50,
                        f"CE loss recovered {splice.ce_recovered:.1%} at L0 {splice.l0:.1f}")]
        return RunResult(metrics=metrics, verdict=Verdict.from_checks(checks, preconditions=preconditions),
                         summary=card + f"\n\nTraining took {h.seconds / 60:.1f} minutes "
                         f"({h.tokens / max(h.seconds, 1e-9):,.0f}"
                         " tokens/s including the model's forward pass).\n",
                         figures={"training": fig} if fig is not None else {})


def _text_tokens(handle: Model, ctx: RunContext, heldout: bool, max_chars: int = 0) -> np.ndarray:
    """The stdlib corpus tokenised by this model's tokenizer (cached per tokenizer, train or held-out files)."""
    vocab = json.dumps(sorted(handle.tokenizer.get_vocab().items())[:2000]).encode()
    key = hashlib.sha256(vocab + f"walk-v3 {max_chars}".encode()).hexdigest()[:12]
    path = ctx.shared_cache(f"sae-tokens/{key}") / ("heldout.npy" if heldout else "train.npy")
    if path.is_file():
        return load_npy(path)
    tokens = encode_docs(handle.tokenizer, stdlib_texts(heldout=heldout, max_chars=max_chars))
    atomic_save_npy(path, tokens)
    return tokens


def _eval_tokens(handle: Model, ctx: RunContext, othello: bool, n: int, seq: int,
                 max_chars: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Held-out tokens [n, seq] and a next-token loss mask [n, seq - 1] (Othello: targets that are moves)."""
    if othello:

        tok = torch.from_numpy(random_games(n, seed=77_000_001).tokens()[:, :seq])
        return tok, tok[:, 1:] != 0
    held = _text_tokens(handle, ctx, heldout=True, max_chars=max_chars)
    starts = np.linspace(0, len(held) - seq - 1, n).astype(np.int64)
    return torch.from_numpy(np.stack([held[s:s + seq] for s in starts]).astype(np.int64)), None


def _card(config: TrainSAEConfig, m: dict, trained, board_md: str) -> str:
    sets = " ".join(f"--set {k}={v}" for k, v in asdict(config).items()
                    if v != getattr(TrainSAEConfig(), k) and k not in ("device",))
    return (f"# SAE on {m['hook']} of {config.model}\n\n"
            f"A {'TopK (k = ' + str(config.k) + ')' if config.architecture == 'topk' else 'ReLU'} sparse autoencoder "
            f"in SAELens format (`cfg.json` + `sae_weights.safetensors`).\n\n"
            f"- Command: `python -m experiments run train-sae {sets}`\n"
            f"- Hook: `{m['hook']}`; width {m['d_sae']} latents ({config.expansion} x d_in {m['d_in']})\n"
            f"- Tokens trained: {m['tokens_trained']:,} ({config.steps} steps), seed {config.seed}\n\n"
            "| metric | value |\n|---|---|\n"
            f"| L0 (active latents per token) | {m['l0']:.1f} |\n"
            f"| variance explained | {m['variance_explained']:.3f} |\n"
            f"| CE loss recovered (clean {m['ce_clean']:.3f}, SAE {m['ce_sae']:.3f}, "
            f"zero-ablated {m['ce_zero']:.3f}) | "
            f"{m['ce_loss_recovered']:.1%} |\n"
            f"| KL(clean ‖ spliced) per token | {m['kl']:.4f} |\n"
            f"| dead latents (no activation on {m['dead_count_tokens']:,} held-out tokens) | "
            f"{m['dead_fraction']:.1%} |\n"
            f"| dense latents (> 10% of tokens) | {m['dense_fraction']:.1%} |\n"
            f"\nMetrics on {m['eval_tokens']:,} held-out next-token targets.\n" + board_md)
