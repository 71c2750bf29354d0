"""induction-phase-change: train 2-layer and 1-layer attention-only models from scratch and watch induction form."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from experiments.core.context import RunContext
from experiments.core.registry import Check, Experiment, Finding, RunResult, Verdict, register
from experiments.core.report import markdown_table
from experiments.core.runner import config_hash
from experiments.core.settings import RunSettings, setting
from interp.sites import Site
from interp.toy_models import train_bpe_tokenizer
from plots.common import attention_heatmap, layer_head_heatmap, lines_by_x
from plots.training import phase_figure
from probes.heads.ablation import ablate_heads
from probes.heads.detectors import HeadScores, k_composition_scores, scan_heads
from tasks.corpus import encode_docs, load_corpus
from tasks.repeats import repeated_random_tokens
from training.induction import (
    BOS,
    DataKind,
    InductionTrainConfig,
    TrainHistory,
    TrainOutcome,
    phase_change_step,
    save_trained,
    train_induction,
)
from training.lm import cached_tokens


@dataclass
class PhaseChangeConfig(RunSettings):
    """Defaults: the issue's quick measurement (2 layers vs a 1-layer twin, d_model 128, 4 heads, vocab 1000,
    seq 128, batch 32, tiled random segments)."""
    steps: int = setting(2000, "training steps of each model", low=1, high=10_000_000)
    d_model: int = setting(128, "width (a multiple of n_heads)", low=4, high=8192)
    n_heads: int = setting(4, "attention heads per layer", low=1, high=256)
    d_vocab: int = setting(1000, "vocabulary: random token ids, or the BPE size with data=stdlib", low=16,
                           high=65_535)
    seq_len: int = setting(128, "context length of each training row (BOS + tokens)", low=8, high=16_384)
    batch_size: int = setting(32, "rows per step", low=1, high=4096)
    lr: float = setting(1e-3, "learning rate (AdamW, constant after warm-up)", positive=True, high=10.0)
    seg_min: int = setting(8, "shortest tiled random segment", low=1, high=16_384)
    seg_max: int = setting(64, "longest tiled random segment (covers the eval segment, 63, and the published scan "
                               "length, 50)", low=1, high=16_384)
    eval_every: int = setting(50, "evaluate induction and ICL every this many steps", low=1, high=10_000_000)
    data: DataKind = setting("tiled-random", "training data: tiled random segments, or the Python standard library's "
                                             "source with a BPE of d_vocab tokens")
    out_models: str = setting("", "parent folder for attn-only-2l/ and attn-only-1l/ (empty: models/ in the results "
                                  "folder)", path="out")

    def check(self) -> None:
        super().check()
        for n_layers in (2, 1):
            train_config(self, n_layers).check()  # the trainer's own rules, in its words


def train_config(c: PhaseChangeConfig, n_layers: int) -> InductionTrainConfig:
    return InductionTrainConfig(n_layers=n_layers, d_model=c.d_model, n_heads=c.n_heads, d_vocab=c.d_vocab,
                                seq_len=c.seq_len, batch_size=c.batch_size, steps=c.steps, lr=c.lr,
                                seg_min=c.seg_min, seg_max=c.seg_max, eval_every=c.eval_every, seed=c.seed,
                                data=c.data)


def stdlib_stream(ctx: RunContext, vocab: int) -> tuple[Any, np.ndarray, str]:
    """(BPE tokenizer, uint16 token stream of the stdlib's training files, description), cached across runs
    (atomically; a damaged cache is rebuilt with a message)."""
    corpus = load_corpus()

    def build():
        tokenizer = train_bpe_tokenizer(corpus.train, vocab)
        return tokenizer, {"train": encode_docs(tokenizer, corpus.train)}

    tokenizer, arrays = cached_tokens(ctx.shared_cache(f"induction-train/stdlib-bpe-{vocab}"), build)
    return tokenizer, arrays["train"], corpus.source


def train_cache_dir(ctx: RunContext, tc: InductionTrainConfig) -> Path:
    """Checkpoints keyed by the training config alone, so any run with the same model + data resumes or reuses."""
    return ctx.shared_cache(f"induction-train/{config_hash('induction-train', tc)}")


def sudden_window(history: TrainHistory, lo: float = 0.1, hi: float = 0.5) -> tuple[int, int] | None:
    """(last step with max induction < lo before first reaching hi, first step >= hi); None if never reached."""
    scores = history.max_induction()
    first_hi = next((i for i, s in enumerate(scores) if s >= hi), None)
    if first_hi is None:
        return None
    last_lo = max((i for i in range(first_hi) if scores[i] < lo), default=0)
    return history.steps[last_lo], history.steps[first_hi]


def steepest_icl_drop(history: TrainHistory, span: int = 3) -> int:
    """Step at the middle of the steepest fall of the ICL score over ``span`` consecutive evals."""
    icl = np.array(history.icl_score)
    if len(icl) <= span:
        return history.steps[-1]
    drops = icl[:-span] - icl[span:]  # positive = ICL score fell
    i = int(drops.argmax())
    return history.steps[i + span // 2 + (span % 2)]


def model_card(name: str, c: PhaseChangeConfig, tc: InductionTrainConfig, h: TrainHistory, final: dict[str, Any],
               seconds: float, source: str = "tiled random segments") -> str:
    sets = " ".join(f"--set {k}={v}" for k, v in dataclasses.asdict(c).items()
                    if v != getattr(PhaseChangeConfig(), k) and k != "out_models")
    window = sudden_window(h)
    if tc.data == "stdlib":
        data_line = f"a byte-level BPE of {tc.d_vocab} tokens trained on the data with `tokenizers`."
        data_detail = (f"{source}, tokenised with that BPE; each row is BOS then a random window of {tc.seq_len - 1} "
                       "tokens of the concatenated files")
    else:
        data_line = f"data tokens are `t1`..`t{tc.d_vocab - 1}` (a word-level tokenizer: `'t5 t6'` -> [5, 6])."
        data_detail = (f"each row is `<bos>` then one random segment (length uniform in {tc.seg_min}..{tc.seg_max}, "
                       f"tokens uniform in 1..{tc.d_vocab - 1}) tiled to {tc.seq_len - 1} tokens")
    return f"""# {name}: a {tc.n_layers}-layer attention-only transformer trained on repeated random tokens

A TransformerLens-native attention-only model (no MLPs, LayerNorm, learned positions) trained from scratch on CPU
by this repository's `induction-phase-change` experiment, to show induction heads forming (Olsson et al. 2022).
Loads by name when in `models/`: `interp.load_model("{name}")`. Token id 0 is BOS; {data_line}

## How it was made
- Command: `python -m experiments run induction-phase-change {sets} --set out_models=models`
- Model: {tc.n_layers} layer(s), d_model {tc.d_model}, {tc.n_heads} heads (d_head {tc.d_model // tc.n_heads}),
  vocabulary {tc.d_vocab}, context {tc.seq_len}; TL-native `NativeModel` saved with `interp.native_models.save_native`.
- Data: {data_detail}; a fresh batch every step, seeded by (seed, step).
- Training: AdamW (betas 0.9/0.99, weight decay {tc.weight_decay}), lr {tc.lr} after {tc.warmup} warm-up steps,
  constant; batch {tc.batch_size} x {tc.seq_len}; {tc.steps} steps = {tc.steps * tc.batch_size * (tc.seq_len - 1):,}
  predicted tokens; seed {tc.seed}; {seconds / 60:.1f} minutes of CPU training.

## Final metrics (fixed eval batch: `<bos>` + A + A, A random of length {(tc.seq_len - 1) // 2})
- Loss on the first copy {h.loss_first[-1]:.3f}, on the second copy {h.loss_second[-1]:.3f}
  (ICL score {h.icl_score[-1]:+.3f} nats).
- Best induction score {final['max_induction']:.3f} (head {final['top_induction']}), best previous-token score
  {final['max_prev']:.3f} (head {final['top_prev']}).
- Induction score crossed 0.1 -> 0.5 between steps {window[0] if window else '-'} and {window[1] if window else '-'}
  ({'never' if window is None else 'phase change'}).
- Per-eval history (steps, tokens, losses, every head's induction and previous-token score): `training_log.json`.
"""


def _top(m: torch.Tensor) -> tuple[str, float]:
    i = int(m.argmax())
    return f"{i // m.shape[1]}.{i % m.shape[1]}", float(m.flatten()[i])


@register
class InductionPhaseChange(Experiment):
    name = "induction-phase-change"
    title = "Induction heads: the in-context-learning phase change, reproduced from scratch on CPU"
    Config = PhaseChangeConfig
    presets = {"ci": {"steps": 60, "d_model": 32, "n_heads": 4, "d_vocab": 64, "seq_len": 32, "batch_size": 8,
                      "lr": 3e-3, "seg_min": 4, "seg_max": 10, "eval_every": 20}}
    finding = Finding(
        claim="A 2-layer attention-only transformer acquires induction heads in a sudden phase change that coincides "
              "with the drop of the in-context-learning loss, fed by a previous-token head in layer 0 "
              "(K-composition); a 1-layer model never forms them.",
        source="Olsson et al. 2022, 'In-context Learning and Induction Heads' (Anthropic)",
        published="phase change early in training; induction score of the 2-layer model jumps while the ICL score "
                  "drops; 1-layer models show no induction heads. Quick measurement in the issue: induction score "
                  "0.02 -> 0.5 between steps ~1450 and ~1650, final ~0.93; 1-layer twin 0.03.",
        url="https://transformer-circuits.pub/2022/in-context-learning-and-induction-heads/index.html",
    )

    def output_dirs(self, config: PhaseChangeConfig) -> dict[str, Path]:
        """out_models is a parent (e.g. models/): the rule applies to the two model folders written in it."""
        if not config.out_models:
            return {}
        suffix = "" if config.data == "tiled-random" else "-stdlib"
        return {f"Setting out_models ({n}l model)": Path(config.out_models).expanduser() / f"attn-only-{n}l{suffix}"
                for n in (2, 1)}

    def run(self, config: PhaseChangeConfig, ctx: RunContext) -> RunResult:
        out_root = Path(config.out_models) if config.out_models else ctx.out_dir / "models"
        tokenizer, stream, source = None, None, "tiled random segments"
        if config.data == "stdlib":
            ctx.progress(0.01, "stdlib corpus and BPE tokenizer")
            tokenizer, stream, source = stdlib_stream(ctx, config.d_vocab)
        suffix = "" if config.data == "tiled-random" else "-stdlib"
        runs = train_pair(config, ctx, stream)
        ctx.progress(0.92, "saving models and scoring heads")
        h2, h1 = runs[2].history, runs[1].history
        final: dict[int, dict[str, Any]] = {}
        handles = {}
        for n_layers, out in runs.items():
            ind, prev = torch.tensor(out.history.induction[-1]), torch.tensor(out.history.prev_token[-1])
            (ti, mi), (tp, mp) = _top(ind), _top(prev)
            final[n_layers] = {"max_induction": mi, "top_induction": ti, "max_prev": mp, "top_prev": tp}
            name = f"attn-only-{n_layers}l{suffix}"
            card = model_card(name, config, out.config, out.history, final[n_layers], out.history.seconds, source)
            path = save_trained(out, out_root / name, card, tokenizer)
            handles[n_layers] = ctx.load_model(str(path))

        # detectors through the hooked bridge on the saved model: the published setting (seq 50, batch 10)
        seq = min(50, (config.seq_len - 1) // 2)
        scan2 = scan_heads(handles[2], seq_len=seq, n_batch=10, seed=config.seed + 1)
        ab_tokens = repeated_random_tokens(10, seq, config.d_vocab, seed=config.seed + 2, bos=BOS, low=1)
        abl = ablate_heads(handles[2], ab_tokens, seq, mode="mean")
        scan2 = scan2.with_scores(ablation_effect=abl.effect)
        comp = k_composition_scores(handles[2])  # [layer_a, head_a, layer_b, head_b]
        scan1 = scan_heads(handles[1], seq_len=seq, n_batch=10, seed=config.seed + 1)

        kcomp_into_top = _kcomp_into_top(config, scan2, comp)  # [head_a]
        window = sudden_window(h2)
        icl_drop_step = steepest_icl_drop(h2)
        checks = phase_checks(config, scan2, abl, comp, h2, h1, final, window, icl_drop_step)
        figures = self._figures(runs, window, scan2, scan1, abl, handles, config)
        table = scan2.table("induction")
        metrics = {
            "steps": h2.steps, "tokens": h2.tokens, "icl_score_2l": h2.icl_score, "icl_score_1l": h1.icl_score,
            "loss_first_2l": h2.loss_first, "loss_second_2l": h2.loss_second,
            "max_induction_2l": h2.max_induction(), "max_induction_1l": h1.max_induction(),
            "induction_history_2l": h2.induction, "prev_token_history_2l": h2.prev_token,
            "phase_change_window": list(window) if window else None, "phase_change_step": phase_change_step(h2),
            "steepest_icl_drop_step": icl_drop_step, "final": {f"{k}l": v for k, v in final.items()},
            "head_table_2l": table.to_dict(orient="records"),
            "head_table_1l": scan1.table("induction").to_dict(orient="records"),
            "ablation_baseline_icl": abl.baseline_icl, "k_composition_into_top": kcomp_into_top,
            "models_dir": config.out_models or "models",
        }
        summary = self._summary(config, runs, window, icl_drop_step, table, final, out_root, source, suffix)
        return RunResult(metrics, Verdict.from_checks(checks), summary, figures)

    @staticmethod
    def _figures(runs, window, scan2: HeadScores, scan1: HeadScores, abl, handles, config) -> dict[str, Any]:
        h2 = runs[2].history
        figs: dict[str, Any] = {"phase_change": phase_figure({k: v.history for k, v in runs.items()}, window)}
        heads = {f"{ly}.{h}": [m[ly][h] for m in h2.induction] for ly in range(2) for h in range(config.n_heads)}
        figs["induction_by_head"] = lines_by_x(heads, h2.tokens, "2-layer model: each head's induction score",
                                               "tokens seen", "induction score")
        for name, label in (("induction", "induction score"), ("prev_token", "previous-token score"),
                            ("prefix_matching", "prefix-matching score"), ("copying", "copying score")):
            figs[f"heatmap_{name}_2l"] = layer_head_heatmap(scan2.scores[name].numpy(), f"2-layer model: {label}",
                                                            label, zmin=0 if name != "copying" else -1, zmax=1)
        figs["heatmap_induction_1l"] = layer_head_heatmap(scan1.scores["induction"].numpy(),
                                                          "1-layer twin: induction score", "induction score",
                                                          zmin=0, zmax=1)
        figs["heatmap_ablation_2l"] = layer_head_heatmap(abl.effect.numpy(), "2-layer model: rise of the ICL score "
                                                         "when the head is mean-ablated (nats)", "ICL effect",
                                                         colorscale="Reds")
        # attention patterns on a short repeated sequence (readable axes)
        seg = 12
        toks = repeated_random_tokens(1, seg, config.d_vocab, seed=config.seed + 3, bos=BOS, low=1)
        cap = handles[2].run(toks, read=handles[2].sites("pattern"))
        strs = handles[2].to_str_tokens(toks[0])
        top_ind = scan2.top("induction", 1)[0]
        top_prev = scan2.top("prev_token", 1)[0]
        for label, head in (("top_induction_head", top_ind), ("prev_token_head", top_prev)):
            ly, h = map(int, head.split("."))
            pat = cap[Site("pattern", ly)][0, h].numpy()
            figs[f"pattern_{label}"] = attention_heatmap(pat, strs, f"Head {head} on <bos> + A + A (A: {seg} random "
                                                         f"tokens)")
        return figs

    @staticmethod
    def _summary(config, runs, window, icl_drop_step, table, final, out_root, source, suffix) -> str:
        h2, h1 = runs[2].history, runs[1].history
        tok = dict(zip(h2.steps, h2.tokens))
        lines = [
            f"Trained a 2-layer and a 1-layer attention-only model (d_model {config.d_model}, {config.n_heads} heads, "
            f"vocab {config.d_vocab}, seq {config.seq_len}, batch {config.batch_size}, {config.steps} steps, seed "
            f"{config.seed}) on {source}; training took {h2.seconds:.0f} s (2L) and {h1.seconds:.0f} s "
            f"(1L) of CPU time ({os.cpu_count()} cores visible).",
            "",
            ("Phase change: the 2-layer model's best induction score was below 0.1 at step "
             f"{window[0]} ({tok[window[0]]:,} tokens) and reached 0.5 at step {window[1]} ({tok[window[1]]:,} tokens)."
             if window else "The 2-layer model's induction score never reached 0.5."),
            f"The steepest fall of the ICL score is around step {icl_drop_step}; ICL score {h2.icl_score[0]:+.3f} -> "
            f"{h2.icl_score[-1]:+.3f} nats (2L) vs {h1.icl_score[-1]:+.3f} (1L).",
            f"Final best induction score {final[2]['max_induction']:.3f} (head {final[2]['top_induction']}) vs "
            f"{final[1]['max_induction']:.3f} for the 1-layer twin; best previous-token head {final[2]['top_prev']} "
            f"({final[2]['max_prev']:.3f}).",
            "",
            "Heads of the 2-layer model (scan through the hooked bridge on the saved model; repeated random tokens, "
            f"seq {min(50, (config.seq_len - 1) // 2)}, batch 10; ablation_effect = rise of the ICL score when the "
            "head is mean-ablated):",
            "",
            markdown_table(table.drop(columns=["layer", "head_index"]).to_dict(orient="records")),
            "",
            (f"Models written to `models/attn-only-2l{suffix}` and `models/attn-only-1l{suffix}` in this results folder"
             if not config.out_models else
             f"Models written to `{out_root}/attn-only-2l{suffix}` and `{out_root}/attn-only-1l{suffix}`")
            + " (with model cards), loadable with `interp.load_model(<dir>)`.",
        ]
        return "\n".join(lines)


def train_pair(config: PhaseChangeConfig, ctx: RunContext, stream) -> dict[int, TrainOutcome]:
    """The 2-layer model and its 1-layer twin, trained (or resumed from the shared cache) on the same data."""
    runs: dict[int, TrainOutcome] = {}
    for i, n_layers in enumerate((2, 1)):
        tc = train_config(config, n_layers)
        share = (0.05 + 0.6 * i, 0.6 if i == 0 else 0.25)

        def cb(step: int, m: dict[str, Any], share=share, n_layers=n_layers) -> None:
            if "icl_score" in m:
                ctx.progress(share[0] + share[1] * step / config.steps,
                             f"{n_layers}L step {step}: loss {m['loss']:.3f}, ICL {m['icl_score']:+.3f}, "
                             f"max induction {m['max_induction']:.2f}")

        runs[n_layers] = train_induction(tc, work_dir=train_cache_dir(ctx, tc), callback=cb, stream=stream)
    return runs


def _kcomp_into_top(config: PhaseChangeConfig, scan2: HeadScores, comp: torch.Tensor) -> torch.Tensor:
    """[head_a] K-composition of each layer-0 head into the top induction head (zeros when it is in layer 0)."""
    li, hi_ = map(int, _top(scan2.scores["induction"])[0].split("."))
    return comp[0, :, li, hi_] if li > 0 else torch.zeros(config.n_heads)


def phase_checks(config: PhaseChangeConfig, scan2: HeadScores, abl, comp: torch.Tensor, h2: TrainHistory,
                 h1: TrainHistory, final: dict, window, icl_drop_step) -> list[Check]:
    """Olsson et al.'s five claims, each against the trained pair's measured numbers."""
    ind2 = scan2.scores["induction"]
    top_ind = _top(ind2)[0]
    li = int(top_ind.split(".")[0])
    prev0 = scan2.scores["prev_token"][0]
    top_prev_h = int(prev0.argmax())
    top_prev = f"0.{top_prev_h}"
    kcomp_into_top = _kcomp_into_top(config, scan2, comp)
    max1_hist = max(h1.max_induction())
    n = config.steps
    return [
        Check("2-layer model forms an induction head (score >= 0.5, in layer 1)",
              float(ind2.max()) >= 0.5 and li == 1,
              f"top induction head {top_ind} scores {float(ind2.max()):.3f} on repeated random tokens"),
        Check("the formation is a sudden phase change (0.1 -> 0.5 within 20% of training)",
              window is not None and window[1] - window[0] <= 0.2 * n,
              "never reached 0.5" if window is None else
              f"max induction score < 0.1 at step {window[0]}, >= 0.5 at step {window[1]} "
              f"({window[1] - window[0]} of {n} steps)"),
        Check("it coincides with the steepest drop of the ICL score",
              window is not None and window[0] - 4 * config.eval_every <= icl_drop_step
              <= window[1] + 4 * config.eval_every,
              f"steepest ICL drop around step {icl_drop_step}; ICL score {h2.icl_score[0]:+.3f} -> "
              f"{h2.icl_score[-1]:+.3f} nats"),
        Check("a previous-token head in layer 0 feeds the induction head (K-composition, causal)",
              float(prev0.max()) >= 0.5 and int(kcomp_into_top.argmax()) == top_prev_h
              and float(abl.effect[0, top_prev_h]) > 0.25 * abs(abl.baseline_icl),
              f"head {top_prev} prev-token score {float(prev0.max()):.3f}; K-composition into {top_ind}: "
              + ", ".join(f"0.{h} {float(v):.3f}" for h, v in enumerate(kcomp_into_top))
              + f"; mean-ablating {top_prev} moves the ICL score {abl.baseline_icl:+.3f} -> "
                f"{float(abl.ablated_icl[0, top_prev_h]):+.3f}"),
        Check("the 1-layer twin never forms an induction head (max score < 0.2 throughout)",
              max1_hist < 0.2, f"1-layer max induction score over training {max1_hist:.3f}, "
                               f"final {final[1]['max_induction']:.3f}"),
    ]
