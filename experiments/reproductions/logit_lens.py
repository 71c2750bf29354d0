"""logit-lens: decode every layer of held-out text through the final norm + unembedding; does KL fall with depth?"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from experiments.core.context import RunContext
from experiments.core.lens_report import FIGURE_PROMPTS, heldout_windows, layer_table, prompt_record
from experiments.core.registry import Check, Experiment, Finding, RunResult, Verdict, register
from experiments.core.settings import MODEL_HELP, RunSettings, setting
from interp.errors import InvalidInput
from interp.loading import default_model
from plots.common import lines_by_x
from plots.lens import kl_figure
from probes.lens.logit import layer_labels
from probes.lens.tuned import LensEval, evaluate_lens
from tasks.corpus import load_corpus

__all__ = ["FIGURE_PROMPTS", "LogitLens", "LogitLensConfig", "convergence_checks", "heldout_windows", "layer_table",
           "prompt_record", "spearman"]


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    return float(pd.Series(x).rank().corr(pd.Series(y).rank()))


TEST_APPLIED = (
    "over the intermediate read-outs resid_pre 0 .. resid_pre n-1 (the final read-out has KL 0 by construction "
    "and is left out), mean KL(final || layer) on held-out text must (1) fall with depth: Spearman rank "
    "correlation between layer index and mean KL <= -0.8, and (2) be lower at resid_pre n-1 than at resid_pre 0."
)


def convergence_checks(ev: LensEval) -> list[Check]:
    """The finding as tested here (see TEST_APPLIED): mean KL to the final distribution falls with depth."""
    kl = ev.kl_to_final[:-1]
    depth = list(range(len(kl)))
    rho = spearman(depth, kl) if len(kl) > 1 else float("nan")
    falls = sum(b < a for a, b in zip(kl, kl[1:]))
    return [
        Check("mean KL to the final distribution falls with depth (Spearman rho(depth, KL) <= -0.8 over "
              "resid_pre 0..n-1)", bool(len(kl) > 1 and round(rho, 9) <= -0.8),
              f"rho = {rho:.2f}; KL falls at {falls} of {len(kl) - 1} layer boundaries"),
        Check("the last block's input is closer to the final distribution than the embedding",
              bool(kl[-1] < kl[0]), f"KL {ev.layer_labels[len(kl) - 1]} = {kl[-1]:.3f} vs "
              f"{ev.layer_labels[0]} = {kl[0]:.3f} nats"),
    ]


@dataclass
class LogitLensConfig(RunSettings):
    model: str = setting("stdlib-gpt2", MODEL_HELP + " (the README's verdict is on stdlib-gpt2; empty: the "
                         "bundled default model)", path="model")
    n_windows: int = setting(64, "held-out windows of text the per-layer means are taken over", low=1, high=100_000)
    seq_len: int = setting(128, "tokens per window (clipped to the model's context)", low=2, high=1_000_000)
    max_chars: int = setting(0, "characters of the standard library to read (0: all; only what is needed is "
                                "tokenized)", low=0, high=10**10)
    prompts: tuple[str, ...] = setting(FIGURE_PROMPTS, "prompts drawn as layer-by-position grids")
    k: int = setting(5, "top-k tokens recorded per layer and position", low=1, high=1000)
    threads: int = setting(2, "CPU threads for torch during the run (0: leave torch's default)", low=0, high=512)

    def check(self) -> None:
        super().check()
        if not any(p.strip() for p in self.prompts):
            raise InvalidInput("Setting prompts is empty: give at least one non-empty prompt.")


@register
class LogitLens(Experiment):
    name = "logit-lens"
    title = "Logit lens: every layer's residual stream read through the final norm and unembedding"
    Config = LogitLensConfig
    presets = {"ci": {"n_windows": 8, "seq_len": 64, "max_chars": 400_000, "prompts": FIGURE_PROMPTS[:1]}}
    finding = Finding(
        claim="Read through the final norm and unembedding, intermediate layers' predictions converge toward the "
              "model's final output with depth.",
        source="nostalgebraist 2020, 'interpreting GPT: the logit lens' (LessWrong; GPT-2)",
        published="qualitative: later layers' top tokens match the output more often and KL to the output "
                  "falls with depth",
        url="https://www.lesswrong.com/posts/AcKRB8wDpdaN6v6ru/interpreting-gpt-the-logit-lens",
    )

    def run(self, config: LogitLensConfig, ctx: RunContext) -> RunResult:
        handle = ctx.load_model(config.model or default_model())
        ctx.progress(0.05, "reading held-out text")
        seq_len = min(config.seq_len, handle.info.n_ctx)
        corpus = load_corpus(max_chars=config.max_chars)
        windows = heldout_windows(handle.tokenizer, corpus.heldout, config.n_windows, seq_len, config.seed)
        ctx.progress(0.15, f"logit lens over {config.n_windows} held-out windows")
        ev = evaluate_lens(handle, windows)
        ctx.progress(0.7, "figure prompts")
        figures, records = {}, []
        for i, prompt in enumerate(config.prompts):
            rec, fig_p, fig_kl = prompt_record(handle, prompt, config.k)
            records.append(rec)
            figures[f"grid_prob_{i}"] = fig_p
            if i == 0:
                figures["grid_kl_0"] = fig_kl
        labels = layer_labels(handle.info.n_layers)
        figures["kl_by_layer"] = kl_figure(labels, {"logit lens": ev.kl_to_final},
                                           "Mean KL(final ‖ layer) on held-out text, logit lens")
        figures["top1_agreement"] = lines_by_x({"logit lens": ev.top1_agreement}, labels,
                                               "How often a layer's top-1 token is the model's final top-1",
                                               "layer (lens read-out)", "fraction of tokens")
        checks = convergence_checks(ev)
        metrics = {"model": handle.info.name, "layers": labels, "n_tokens": ev.n_tokens, "seq_len": seq_len,
                   "kl_to_final": ev.kl_to_final, "top1_agreement": ev.top1_agreement,
                   "next_token_prob": ev.next_token_prob, "cross_entropy": ev.cross_entropy,
                   "corpus": corpus.source, "prompts": records}
        summary = (f"Model `{handle.info.name}`; logit lens (final norm + unembedding of resid_pre of every block "
                   f"and the final residual) over {ev.n_tokens:,} held-out tokens ({config.n_windows} windows of "
                   f"{seq_len}, first position of each left out), text: {corpus.source}.\n\n"
                   + layer_table([ev]) + f"\n\nTest applied: {TEST_APPLIED}")
        return RunResult(metrics, Verdict.from_checks(checks), summary, figures)

