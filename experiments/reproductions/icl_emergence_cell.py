"""icl-emergence-cell: one training run of the ICL-vs-structure sweep (one share of structured data, one seed).

A 2-layer attention-only model learns from noise rows of which a share hold one repeated span; the run reports
when the best head's induction score crosses 0.5 (or that it never does within the budget), how abruptly it
rises (10% -> 90% of its final value) and the in-context-learning loss drop inside that rise. The claims across
shares are checked by ``icl-emergence-vs-structure``, which runs these cells as a Ray sweep.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from experiments.core.context import RunContext
from experiments.core.registry import Check, Experiment, Finding, RunResult, Verdict, register
from experiments.core.settings import RunSettings, setting
from plots.training import curves_figure
from probes.heads.emergence import ONSET_THRESHOLD, onset_step, rise
from training.induction import InductionTrainConfig, train_induction

#: A jump is abrupt when its 10% -> 90% rise takes at most this share of the steps it took to reach 90% (a ramp
#: from the first step takes ~0.9 of them; a jump after a plateau a small share).
ABRUPT_FRACTION = 0.5
#: Where an induction head forms, the model must also do the task: the repeated copy this much easier (nats).
MIN_ICL_GAIN = 0.5


@dataclass
class CellModelSettings(RunSettings):
    """The model, data and budget of one cell, shared by the cell and by the sweep that runs many of them.
    Defaults: the full run's cell (2 layers, d_model 64, 4 heads, vocab 128, seq 48, batch 32, span 20)."""

    span_len: int = setting(20, "length of the repeated span (two copies must fit in seq_len - 1)", low=1,
                            high=8192)
    steps: int = setting(5000, "training steps (the budget: no onset within it is reported as none)", low=1,
                         high=10_000_000)
    d_model: int = setting(64, "width (a multiple of n_heads)", low=4, high=8192)
    n_heads: int = setting(4, "attention heads per layer", low=1, high=256)
    d_vocab: int = setting(128, "vocabulary of random token ids (0 is BOS)", low=16, high=65_535)
    seq_len: int = setting(48, "context length of each training row (BOS + tokens)", low=8, high=16_384)
    batch_size: int = setting(32, "rows per step", low=1, high=4096)
    lr: float = setting(1e-3, "learning rate (AdamW, constant after warm-up)", positive=True, high=10.0)
    eval_every: int = setting(50, "evaluate induction and ICL every this many steps", low=1, high=10_000_000)


#: The settings a sweep passes to each of its cells (CellModelSettings' own fields).
CELL_SETTINGS = tuple(f.name for f in fields(CellModelSettings) if f.name not in {g.name for g in fields(RunSettings)})


@dataclass
class CellConfig(CellModelSettings):
    """One cell: the shared model settings and the share of structured rows."""

    repeat_share: float = setting(1.0, "share of training rows that hold one repeated span (0: pure noise, 1: every "
                                       "row)", low=0.0, high=1.0)

    def check(self) -> None:
        super().check()
        train_config(self).check()  # the trainer's own rules (span fits twice, heads divide d_model), in its words


def train_config(c: CellConfig) -> InductionTrainConfig:
    return InductionTrainConfig(n_layers=2, d_model=c.d_model, n_heads=c.n_heads, d_vocab=c.d_vocab,
                                seq_len=c.seq_len, batch_size=c.batch_size, steps=c.steps, lr=c.lr,
                                eval_every=c.eval_every, seed=c.seed, data="repeat-share",
                                repeat_share=c.repeat_share, span_len=c.span_len,
                                checkpoint_every=max(c.eval_every, min(500, c.steps)))


def measure(steps: list[int], scores: list[float], icl: list[float]) -> dict[str, Any]:
    """The cell's headline numbers from its training history (None where a number does not exist)."""
    onset = onset_step(steps, scores)
    r = rise(steps, scores, icl) if onset is not None else None
    return {"onset_step": onset, "formed": onset is not None,
            "abruptness_steps": r.width if r else None, "rise_10": r.step_10 if r else None,
            "rise_90": r.step_90 if r else None, "abrupt": (r.width <= ABRUPT_FRACTION * r.step_90) if r else None,
            "icl_drop": r.icl_drop if r else None, "icl_drop_share": r.icl_drop_share if r else None,
            "final_induction": r.final_score if r else sum(scores[-3:]) / len(scores[-3:]),
            "peak_induction": max(scores), "icl_score_final": icl[-1], "icl_score_start": icl[0]}


@register
class IclEmergenceCell(Experiment):
    name = "icl-emergence-cell"
    title = "One cell of the ICL-vs-structure sweep: does an induction head form on this share of structured data?"
    Config = CellConfig
    presets = {"ci": {"steps": 240, "d_model": 32, "n_heads": 2, "d_vocab": 32, "seq_len": 24, "batch_size": 16,
                      "span_len": 6, "lr": 3e-3, "eval_every": 20}}
    headline: ClassVar[tuple[str, ...]] = ("onset_step", "abruptness_steps", "rise_90", "icl_drop", "icl_drop_share",
                                           "final_induction", "icl_score_final")
    finding = Finding(
        claim="Where an induction head forms, it forms in an abrupt phase change that coincides with the drop of "
              "the in-context-learning loss (one share of structured data, one seed; the claims across shares are "
              "checked by icl-emergence-vs-structure).",
        source="Olsson et al. 2022, 'In-context Learning and Induction Heads' (Anthropic)",
        published="the induction score jumps within a small part of training while the ICL score drops",
        url="https://transformer-circuits.pub/2022/in-context-learning-and-induction-heads/index.html",
    )

    def run(self, config: CellConfig, ctx: RunContext) -> RunResult:
        tc = train_config(config)

        def cb(step: int, m: dict[str, Any]) -> None:
            if "icl_score" in m:
                ctx.progress(0.95 * step / config.steps, f"step {step}: ICL {m['icl_score']:+.3f}, max induction "
                                                          f"{m['max_induction']:.2f}")

        out = train_induction(tc, work_dir=ctx.work_dir, callback=cb, should_stop=ctx.should_stop)
        ctx.check_cancelled()
        h = out.history
        scores = h.max_induction()
        m = measure(h.steps, scores, h.icl_score)
        checks = []
        if m["formed"]:
            checks = [
                Check(f"the model does in-context copying (ICL score <= -{MIN_ICL_GAIN} nats at the end)",
                      m["icl_score_final"] <= -MIN_ICL_GAIN,
                      f"ICL score {m['icl_score_start']:+.3f} -> {m['icl_score_final']:+.3f} nats"),
                Check(f"the induction score jumps abruptly (10% -> 90% within {ABRUPT_FRACTION:.0%} of the steps "
                      "to get there)", bool(m["abrupt"]),
                      f"10% at step {m['rise_10']}, 90% at step {m['rise_90']} ({m['abruptness_steps']} steps)"),
                Check("the ICL loss drop falls in the same window (at least half of it)", m["icl_drop_share"] >= 0.5,
                      f"ICL score fell {m['icl_drop']:.3f} nats between steps {m['rise_10']} and {m['rise_90']}: "
                      f"{m['icl_drop_share']:.0%} of its whole drop"),
            ]
            verdict = Verdict.from_checks(checks)
        else:
            verdict = Verdict.not_checked(
                f"no induction head within {config.steps} steps (best induction score {m['peak_induction']:.3f} < "
                f"{ONSET_THRESHOLD}) at repeat_share {config.repeat_share}: no jump to time here; the sweep "
                "(icl-emergence-vs-structure) checks where heads form")
        metrics = {**m, "repeat_share": config.repeat_share, "span_len": config.span_len, "budget_steps": config.steps,
                   "structured_token_share": config.repeat_share * (config.span_len - 1) / (config.seq_len - 1),
                   "steps": h.steps, "max_induction": scores, "icl_score": h.icl_score, "loss_first": h.loss_first,
                   "loss_second": h.loss_second}  # timings stay out of metrics.json (same seed, same bytes)
        onset_text = (f"crossed {ONSET_THRESHOLD} at step {m['onset_step']}; 10% -> 90% of its final "
                      f"{m['final_induction']:.3f} between steps {m['rise_10']} and {m['rise_90']} "
                      f"({m['abruptness_steps']} steps); ICL score fell {m['icl_drop']:.3f} nats in that window "
                      f"({m['icl_drop_share']:.0%} of its whole drop)" if m["formed"] else
                      f"never crossed {ONSET_THRESHOLD} within {config.steps} steps (peak {m['peak_induction']:.3f})")
        summary = (f"2-layer attention-only model (d_model {config.d_model}, {config.n_heads} heads, vocab "
                   f"{config.d_vocab}, seq {config.seq_len}, batch {config.batch_size}, lr {config.lr}, seed "
                   f"{config.seed}) trained {config.steps} steps on noise rows of which a share "
                   f"{config.repeat_share} hold one repeated span of {config.span_len} tokens "
                   f"({metrics['structured_token_share']:.1%} of tokens predictable from context); "
                   f"{h.seconds:.0f} s of training.\n\nThe best head's induction score {onset_text}. Final ICL score "
                   f"{m['icl_score_final']:+.3f} nats (start {m['icl_score_start']:+.3f}).")
        fig = curves_figure(h, config.steps, f"repeat_share {config.repeat_share}, seed {config.seed}",
                            phase=m["onset_step"], threshold=ONSET_THRESHOLD)
        return RunResult(metrics, verdict, summary, {"training_curves": fig})
