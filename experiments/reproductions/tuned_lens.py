"""tuned-lens: train one affine translator per layer on training text; compare with the logit lens on held-out text.

The lens is written into the results folder (``tuned_lens/``). It goes beside the model (where the app's Logit
lens page finds it) only when the user asks: ``--set lens_dir=model``, or any folder with ``lens_dir=PATH``;
a bundled model's files are never replaced by a run that did not name them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from experiments.core.context import RunContext
from experiments.core.lens_report import FIGURE_PROMPTS, heldout_windows, layer_table, prompt_record, token_windows
from experiments.core.registry import Check, Experiment, Finding, RunResult, Verdict, register
from experiments.core.settings import MODEL_HELP, RunSettings, check_writable_dir, setting
from interp.loading import default_model
from learned.tuned_lens import default_lens_dir, save_tuned_lens, translator_norms
from plots.common import lines_by_x
from plots.lens import kl_figure
from probes.lens.tuned import LensEval, evaluate_lens
from tasks.corpus import load_corpus
from training.tuned_lens import train_tuned_lens


def per_layer_checks(logit: LensEval, tuned: LensEval) -> list[Check]:
    """One check per translated layer: held-out mean KL(final || tuned) < KL(final || logit) (final layer: both 0)."""
    return [Check(f"{lbl}: tuned lens KL below logit lens KL", bool(t < lo),
                  f"{t:.3f} vs {lo:.3f} nats ({t / lo:.2f}x)" if lo > 0 else f"{t:.3f} vs {lo:.3f} nats")
            for lbl, lo, t in zip(logit.layer_labels[:-1], logit.kl_to_final[:-1], tuned.kl_to_final[:-1])]


#: ``lens_dir`` values that do not name a folder: results folder only / beside the model (the app's place).
RESULTS_ONLY, BESIDE_MODEL = ("", "none"), "model"


@dataclass
class TunedLensConfig(RunSettings):
    model: str = setting("stdlib-gpt2", MODEL_HELP + " (the README's verdict is on stdlib-gpt2; empty: the "
                         "bundled default model)", path="model")
    train_windows: int = setting(512, "training text: windows of seq_len tokens (each step draws batch_size)",
                                 low=1, high=1_000_000)
    eval_windows: int = setting(64, "held-out windows for the logit-vs-tuned comparison", low=1, high=100_000)
    seq_len: int = setting(128, "tokens per window (clipped to the model's context)", low=2, high=1_000_000)
    steps: int = setting(250, "Adam steps", low=1, high=10_000_000)
    batch_size: int = setting(8, "windows per step", low=1, high=4096)
    lr: float = setting(3e-3, "learning rate (Adam, decaying linearly to 0)", positive=True, high=10.0)
    max_chars: int = setting(0, "characters of the standard library to read (0: all; only what is needed is "
                                "tokenized)", low=0, high=10**10)
    lens_dir: str = setting("", "where else to save the lens: empty: only tuned_lens/ in the results folder; "
                                "'model': beside the model, where the app's Logit lens page finds it (Hub models: "
                                ".cache/tuned-lens/NAME); a path: that folder")
    k: int = setting(5, "top-k tokens recorded per layer and position", low=1, high=1000)
    threads: int = setting(2, "CPU threads for torch during the run (0: leave torch's default)", low=0, high=512)

    def check(self) -> None:
        super().check()
        if self.lens_dir.strip().lower() not in (*RESULTS_ONLY, BESIDE_MODEL):
            check_writable_dir(Path(self.lens_dir).expanduser(), "Setting lens_dir")


@register
class TunedLensExperiment(Experiment):
    name = "tuned-lens"
    title = "Tuned lens: a trained affine translator per layer vs the logit lens"
    Config = TunedLensConfig
    presets = {"ci": {"train_windows": 64, "eval_windows": 8, "seq_len": 64, "steps": 30, "batch_size": 4,
                      "max_chars": 400_000}}
    finding = Finding(
        claim="The tuned lens's predictions are closer to the model's final output (lower KL) than the logit "
              "lens's at every layer.",
        source="Belrose et al. 2023, 'Eliciting Latent Predictions from Transformers with the Tuned Lens'",
        published="KL(final || lens) on held-out text is lower for the tuned lens at every layer of every model "
                  "studied (GPT-2, GPT-Neo, OPT, Pythia, BLOOM, LLaMA families)",
        url="https://arxiv.org/abs/2303.08112",
    )

    def output_dirs(self, config: TunedLensConfig) -> dict[str, Path]:
        choice = config.lens_dir.strip()
        if choice.lower() in (*RESULTS_ONLY, BESIDE_MODEL):
            return {}
        return {"Setting lens_dir": Path(choice).expanduser()}

    def run(self, config: TunedLensConfig, ctx: RunContext) -> RunResult:
        handle = ctx.load_model(config.model or default_model())
        if config.lens_dir.strip().lower() == BESIDE_MODEL:  # the same rule, once the model says where that is
            ctx.check_output(default_lens_dir(handle), "Setting lens_dir=model")
        seq_len = min(config.seq_len, handle.info.n_ctx)
        ctx.progress(0.02, "reading text")
        corpus = load_corpus(max_chars=config.max_chars)
        train = token_windows(handle.tokenizer, corpus.train, config.train_windows, seq_len, config.seed)
        heldout = heldout_windows(handle.tokenizer, corpus.heldout, config.eval_windows, seq_len, config.seed)
        ctx.progress(0.05, "logit lens on held-out text")
        logit = evaluate_lens(handle, heldout)
        lens, log = train_tuned_lens(handle, train, steps=config.steps, batch_size=config.batch_size, lr=config.lr,
                                     seed=config.seed,
                                     progress=lambda f, m: ctx.progress(0.1 + 0.75 * f, m))
        ctx.progress(0.86, "tuned lens on held-out text")
        tuned = evaluate_lens(handle, heldout, lens)
        checks = per_layer_checks(logit, tuned)
        extra = {"heldout_kl_logit": logit.kl_to_final, "heldout_kl_tuned": tuned.kl_to_final,
                 "heldout_tokens": tuned.n_tokens, "experiment": "tuned-lens",
                 "command": f"python -m experiments run tuned-lens --model {handle.info.name}",
                 "train_text": corpus.source, "experiment_config": asdict(config)}
        save_tuned_lens(lens, ctx.out_dir / "tuned_lens", extra)
        saved_to = "results folder only (set lens_dir=model to save it beside the model)"
        choice = config.lens_dir.strip()
        if choice.lower() not in RESULTS_ONLY:
            target = default_lens_dir(handle) if choice.lower() == BESIDE_MODEL else Path(choice).expanduser()
            save_tuned_lens(lens, target, extra)
            saved_to = str(target)
        ctx.progress(0.92, "figures")
        labels = logit.layer_labels
        rec_logit, grid_logit, _ = prompt_record(handle, FIGURE_PROMPTS[0], config.k)
        rec_tuned, grid_tuned, _ = prompt_record(handle, FIGURE_PROMPTS[0], config.k, lens)
        every = max(1, len(log.loss) // 200)
        figures = {
            "kl_by_layer": kl_figure(labels, {"logit lens": logit.kl_to_final, "tuned lens": tuned.kl_to_final},
                                     "Mean KL(final ‖ lens) on held-out text: logit vs tuned lens"),
            "top1_agreement": lines_by_x({"logit lens": logit.top1_agreement, "tuned lens": tuned.top1_agreement},
                                         labels, "How often the lens's top-1 is the model's final top-1 (held-out)",
                                         "layer (lens read-out)", "fraction of tokens"),
            "training_loss": lines_by_x({"train KL (mean over layers)": log.loss[::every]}, log.steps[::every],
                                        "Tuned-lens training loss", "step", "KL(final ‖ tuned lens), nats"),
            "grid_logit": grid_logit, "grid_tuned": grid_tuned,
        }
        metrics = {
            "model": handle.info.name, "layers": labels, "seq_len": seq_len, "heldout_tokens": tuned.n_tokens,
            "kl_logit": logit.kl_to_final, "kl_tuned": tuned.kl_to_final,
            "top1_agreement_logit": logit.top1_agreement, "top1_agreement_tuned": tuned.top1_agreement,
            "next_token_prob_logit": logit.next_token_prob, "next_token_prob_tuned": tuned.next_token_prob,
            "cross_entropy_logit": logit.cross_entropy, "cross_entropy_tuned": tuned.cross_entropy,
            "train_loss": log.loss, "train_tokens_seen": log.tokens_seen,
            "translator_norms": translator_norms(lens), "lens_saved_to": saved_to, "corpus": corpus.source,
            "prompts": [rec_logit, rec_tuned],
        }
        summary = (f"Model `{handle.info.name}`. Tuned lens: one translator h -> h + A h + b per block input "
                   f"(A, b start at 0), trained {config.steps} Adam steps (lr {config.lr}, linear decay) of "
                   f"{config.batch_size} x {seq_len}-token windows ({log.tokens_seen:,} tokens, {log.seconds:.0f} s) "
                   f"to minimise KL(final ‖ lens) on training text; compared with the logit lens on "
                   f"{tuned.n_tokens:,} held-out tokens ({corpus.source}; first position of each window left out)."
                   f"\n\n" + layer_table([logit, tuned]) + f"\n\nLens saved to: {saved_to} (and `tuned_lens/` in "
                   "this results folder). The app's Logit lens page loads it for this model.")
        return RunResult(metrics, Verdict.from_checks(checks), summary, figures)
