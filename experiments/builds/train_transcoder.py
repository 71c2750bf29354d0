"""train-transcoder: train a per-layer (PLT) or cross-layer (CLT) TopK transcoder set on a model's MLPs, with a card.

Every layer's MLP input and output are computed on the fly, one seeded batch of stdlib text windows per step
(nothing but one batch is held). At the end the set is evaluated on held-out windows: normalised MSE and L0 per
layer, dead features, and CE loss recovered when every MLP is replaced at once (errors compound). The bundled
sets in ``models/<model>/transcoders/`` were made by this experiment with
``--set out=models/<model>/transcoders/<name>``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from experiments.builds.train_sae import _eval_tokens, _text_tokens
from experiments.core.context import RunContext
from experiments.core.registry import Check, Experiment, RunResult, Verdict, register
from experiments.core.settings import RunSettings, setting
from interp.errors import InvalidInput
from learned.transcoder import TranscoderConfig
from learned.transcoder_files import write_transcoder_dir
from plots.common import lines_by_x
from probes.graph.replacement import splice_ce
from training.sae_data import text_windows
from training.transcoder import MLPActivations, TranscoderTrainSettings, evaluate_transcoder, train_transcoder

TEXT_SEQ = 128


@dataclass
class TrainTranscoderConfig(RunSettings):
    model: str = setting("code-gpt2", "model whose MLPs the transcoders replace: bundled name, directory or Hub name",
                         path="model")
    kind: str = setting("per_layer", "per_layer (PLT: each layer writes its own MLP output) or cross_layer (CLT: "
                        "each layer writes every later layer's MLP output)", choices=("per_layer", "cross_layer"))
    input_kind: str = setting("ln2_normalized", "the MLP input the encoders read (resid_mid for models without a "
                              "norm)", choices=("ln2_normalized", "resid_mid"))
    expansion: int = setting(8, "features per layer per model dimension (d_transcoder = expansion x d_model)",
                             low=1, high=256)
    k: int = setting(32, "TopK: features active per layer and token (the L0 per layer)", low=1, high=4096)
    lr: float = setting(1e-3, "Adam learning rate", positive=True, high=1.0)
    steps: int = setting(3000, "training steps", low=1, high=10_000_000)
    batch_seqs: int = setting(16, "text windows of 128 tokens per step", low=1, high=4096)
    dead_tokens: int = setting(400_000, "a feature that has not fired for this many tokens is dead (aux-k trains it)",
                               low=1, high=500_000_000)
    max_chars: int = setting(0, "read the stdlib's files up to this many characters (0: all)", low=0, high=500_000_000)
    eval_seqs: int = setting(64, "held-out windows for CE loss recovered", low=2, high=100_000)
    out: str = setting("", "where to write the transcoder folder (default: <results>/transcoder); e.g. "
                       "models/<model>/transcoders/<name>", path="out")

    def check(self) -> None:
        super().check()
        if self.out and Path(self.out).expanduser().resolve().is_relative_to(Path("models").resolve()):
            if Path(self.out).expanduser().resolve().parent.name != "transcoders":
                raise InvalidInput(f"Setting out={self.out!r}: inside models/ a transcoder set goes to "
                                   "models/<model>/transcoders/<name>.")


@register
class TrainTranscoder(Experiment):
    name = "train-transcoder"
    title = "Train a transcoder set (per-layer or cross-layer, TopK) replacing a model's MLPs, with a card"
    Config = TrainTranscoderConfig
    presets = {"ci": {"max_chars": 150_000, "steps": 12, "expansion": 2, "k": 8, "batch_seqs": 2, "eval_seqs": 4,
                      "dead_tokens": 5000}}
    finding = None

    def run(self, config: TrainTranscoderConfig, ctx: RunContext) -> RunResult:
        ctx.progress(0.0, "loading model")
        handle = ctx.load_model(config.model)
        if handle.info.attn_only or not handle.info.d_mlp:
            raise InvalidInput(f"{handle.info.name} is attention-only: it has no MLPs for a transcoder to replace.")
        seq = min(TEXT_SEQ, handle.info.n_ctx)
        train_tokens = _text_tokens(handle, ctx, heldout=False, max_chars=config.max_chars)
        source = MLPActivations(handle, text_windows(train_tokens, config.batch_seqs, seq),
                                input_kind=config.input_kind, seed=config.seed)
        d_tc = config.expansion * handle.info.d_model
        s = TranscoderTrainSettings(kind=config.kind, d_transcoder=d_tc, k=min(config.k, d_tc),  # type: ignore
                                    lr=config.lr, steps=config.steps, dead_tokens=config.dead_tokens,
                                    seed=config.seed)
        cfg = TranscoderConfig(config.kind, handle.info.n_layers, handle.info.d_model, d_tc,  # type: ignore
                               k=s.k, input_kind=config.input_kind, model_name=handle.info.name,  # type: ignore
                               model_sha256=handle.info.sha256)
        key = hashlib.sha256(json.dumps([handle.info.sha256, config.input_kind, config.batch_seqs, config.max_chars,
                                         asdict(s)], sort_keys=True).encode()).hexdigest()[:12]
        ckpt = ctx.shared_cache(f"transcoder-train/{key}") / "checkpoint.pt"
        trained = train_transcoder(source, s, cfg, checkpoint=ckpt, should_stop=ctx.should_stop,
                                   progress=lambda f, m: ctx.progress(0.02 + 0.83 * f, m), log=print)
        if trained.stopped:
            ctx.check_cancelled()
        tc = trained.transcoder
        ctx.progress(0.86, "replacing every MLP on held-out text")
        eval_tok, _ = _eval_tokens(handle, ctx, False, config.eval_seqs, seq, config.max_chars)
        splice = splice_ce(handle, tc, eval_tok)
        held = MLPActivations(handle, text_windows(_text_tokens(handle, ctx, heldout=True,
                                                                max_chars=config.max_chars), 8, seq),
                              input_kind=config.input_kind, seed=config.seed)
        ev = evaluate_transcoder(tc, held, n_batches=16)
        dead = (ev["fire_counts"] == 0).float().mean(1)  # [L]
        dead_train = (trained.since_fired >= config.dead_tokens).float().mean(1)  # [L]
        metrics = {"kind": config.kind, "d_transcoder": d_tc, "k": s.k, "tokens_trained": trained.history.tokens,
                   "nmse": splice.nmse, "mean_nmse": round(sum(splice.nmse) / len(splice.nmse), 4),
                   "variance_explained": [round(1 - v, 4) for v in splice.nmse], "l0": splice.l0,
                   "dead_fraction": [round(float(v), 4) for v in dead],
                   "dead_fraction_training": [round(float(v), 4) for v in dead_train],
                   "ce_clean": round(splice.ce_clean, 4), "ce_transcoder": round(splice.ce_transcoder, 4),
                   "ce_zero": round(splice.ce_zero, 4), "ce_loss_recovered": round(splice.ce_recovered, 4),
                   "kl": round(splice.kl, 4), "eval_tokens": splice.n_tokens, "dead_count_tokens": ev["n_tokens"],
                   "train_seconds": round(trained.history.seconds, 1)}
        card = _card(config, metrics, handle.info.sha256)
        out = Path(config.out).expanduser() if config.out else ctx.out_dir / "transcoder"
        tc.cfg.extra = {"trained_by": "python -m experiments run train-transcoder", "settings": asdict(s),
                        "batch_seqs": config.batch_seqs, "seq_len": seq, "metrics": metrics}
        write_transcoder_dir(out, tc, card=card)
        h = trained.history
        fig = None
        if h.steps:
            curves = {f"layer {la} normalised MSE": [row[la] for row in h.nmse] for la in range(len(h.nmse[0]))}
            curves["dead fraction"] = h.dead_fraction
            fig = lines_by_x(curves, h.steps, "transcoder training", "step", "")
        checks = [Check("CE loss recovered >= 80% with every MLP replaced", splice.ce_recovered >= 0.8,
                        f"CE loss recovered {splice.ce_recovered:.1%}, mean normalised MSE {metrics['mean_nmse']:.3f}")]
        return RunResult(metrics=metrics, verdict=Verdict.from_checks(checks),
                         summary=card + f"\n\nTraining took {h.seconds / 60:.1f} minutes "
                         f"({h.tokens / max(h.seconds, 1e-9):,.0f} tokens/s including the model's forward pass).\n",
                         figures={"training": fig} if fig is not None else {})


def _card(config: TrainTranscoderConfig, m: dict, sha: str) -> str:
    sets = " ".join(f"--set {k}={v}" for k, v in asdict(config).items()
                    if v != getattr(TrainTranscoderConfig(), k) and k not in ("device",))
    kind = "cross-layer (CLT)" if config.kind == "cross_layer" else "per-layer (PLT)"
    rows = "\n".join(f"| {la} | {nm:.3f} | {1 - nm:.3f} | {l0:.1f} | {dead:.1%} | {dt:.1%} |"
                     for la, (nm, l0, dead, dt) in enumerate(zip(m["nmse"], m["l0"], m["dead_fraction"],
                                                                 m["dead_fraction_training"])))
    return (f"# {kind} transcoders of {config.model}\n\n"
            f"TopK (k = {m['k']} per layer) transcoders from each layer's `{config.input_kind}` to its `hook_mlp_out`"
            f"{', each layer writing every later layer' if config.kind == 'cross_layer' else ''}; "
            f"{m['d_transcoder']} features per layer. Files in circuit-tracer's layout (see "
            "`learned/transcoder_files.py`).\n\n"
            f"- Command: `python -m experiments run train-transcoder {sets}`\n"
            f"- Model weights sha256 `{sha}`\n"
            f"- Tokens trained: {m['tokens_trained']:,} ({config.steps} steps of {config.batch_seqs} stdlib "
            f"training windows x 128 tokens), seed {config.seed}, {m['train_seconds'] / 60:.0f} minutes\n\n"
            "| layer | normalised MSE | variance explained | L0 | silent on held-out text | dead in training |\n"
            "|---|---|---|---|---|---|\n"
            f"{rows}\n\n"
            f"Every MLP replaced at once on {m['eval_tokens']:,} held-out next-token targets: CE loss recovered "
            f"**{m['ce_loss_recovered']:.1%}** (clean {m['ce_clean']:.3f}, transcoders {m['ce_transcoder']:.3f}, every "
            f"MLP zero-ablated {m['ce_zero']:.3f}); KL(clean ‖ spliced) {m['kl']:.4f} per token. Normalised MSE on "
            "the clean model's own MLP inputs (held-out windows). Silent: never fired on "
            f"{m['dead_count_tokens']:,} held-out tokens (rare features look silent on a small sample); dead in "
            f"training: no activation in the last {config.dead_tokens:,} training tokens.\n")
