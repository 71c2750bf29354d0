"""gpt2-induction-heads: score every head of GPT-2 small on repeated random tokens and confirm causally."""
from __future__ import annotations

from dataclasses import dataclass

from experiments.core.context import RunContext
from experiments.core.registry import Check, Experiment, Finding, RunResult, Verdict, register
from experiments.core.report import markdown_table, model_or_not_checked
from experiments.core.settings import MODEL_HELP, RunSettings, setting
from interp.types import Head
from plots.common import layer_head_heatmap
from probes.heads.ablation import AblationMode, ablate_heads
from probes.heads.detectors import scan_heads
from tasks.repeats import repeated_random_tokens

SCORES = ("induction", "prev_token", "duplicate", "prefix_matching", "copying")


@dataclass
class GPT2InductionConfig(RunSettings):
    """Defaults: the published setting (GPT-2 small, repeated random tokens, seq 50, batch 10)."""
    model: str = setting("gpt2", MODEL_HELP, path="model")
    seq_len: int = setting(50, "length of the random sequence A in BOS + A + A", low=2, high=4096)
    n_batch: int = setting(10, "rows of BOS + A + A scored", low=1, high=4096)
    expected_induction: tuple[str, ...] = setting(("5.1", "5.5", "6.9", "7.2", "7.10"),
                                                  "heads (layer.head) expected to be induction heads; empty: none")
    expected_prev_token: tuple[str, ...] = setting(("4.11",), "heads (layer.head) expected to be previous-token heads")
    top_k_slack: int = setting(3, "an expected head must rank within (number expected + slack)", low=0, high=100_000,
                               threshold=True)
    ablation: bool = setting(True, "also ablate each head and measure the rise of the ICL score")
    ablation_mode: AblationMode = setting("mean", "replace a head's output by its batch mean or by zeros")

    def check(self) -> None:
        super().check()
        for name in ("expected_induction", "expected_prev_token"):
            for head in getattr(self, name):
                Head.parse(head)  # InvalidInput: "... is not a head; write it as layer.head"


@register
class GPT2InductionHeads(Experiment):
    name = "gpt2-induction-heads"
    title = "Induction and previous-token heads of GPT-2 small, detected and confirmed by ablation"
    Config = GPT2InductionConfig
    presets = {"ci": {"model": "attn-only-2l", "seq_len": 20, "n_batch": 4, "expected_induction": (),
                      "expected_prev_token": ()}}
    finding = Finding(
        claim="GPT-2 small's induction heads are 5.1, 5.5, 6.9, 7.2 and 7.10, fed by previous-token head 4.11; "
              "ablating them weakens in-context learning on repeated tokens.",
        source="Elhage et al. 2021 / Olsson et al. 2022; Nanda, TransformerLens 'Exploratory analysis demo'",
        published="induction heads 5.1, 5.5, 6.9, 7.2, 7.10; previous-token head 4.11 (repeated random tokens, "
                  "seq 50, batch 10)",
    )

    def run(self, config: GPT2InductionConfig, ctx: RunContext) -> RunResult:
        handle = model_or_not_checked(ctx, config.model, "needs GPT-2 weights from the Hub",
                                      "Run again online (or with `gpt2` in the Hugging Face cache), or pass "
                                      "`--model <dir>` for another model.")
        if isinstance(handle, RunResult):
            return handle
        ctx.progress(0.2, "scoring every head from one capture")
        scores = scan_heads(handle, seq_len=config.seq_len, n_batch=config.n_batch, seed=config.seed)
        abl = None
        if config.ablation:
            ctx.progress(0.5, f"{config.ablation_mode}-ablating each head")
            bos = handle.bos_token_id if handle.bos_token_id is not None else 0
            toks = repeated_random_tokens(config.n_batch, config.seq_len, handle.info.d_vocab, seed=config.seed + 7,
                                          bos=bos, low=1)
            toks[:, 1:] = toks[:, 1:].where(toks[:, 1:] != bos, (bos + 1) % handle.info.d_vocab)
            abl = ablate_heads(handle, toks, config.seq_len, mode=config.ablation_mode)
            scores = scores.with_scores(ablation_effect=abl.effect)
        table = scores.table("induction")
        rank = {h: i for i, h in enumerate(table["head"])}
        prev_rank = {h: i for i, h in enumerate(scores.table("prev_token")["head"])}
        n_layers, n_heads = handle.info.n_layers, handle.info.n_heads
        exp_ind, exp_prev = ([str(Head.parse(h).check(n_layers, n_heads)) for h in heads]
                             for heads in (config.expected_induction, config.expected_prev_token))
        checks: list[Check] = []
        if exp_ind:
            k = len(exp_ind) + config.top_k_slack
            checks.append(Check(f"the expected induction heads rank in the top {k} by induction score",
                                all(rank.get(h, 10**9) < k for h in exp_ind),
                                ", ".join(f"{h}: rank {rank.get(h, -1) + 1}, score "
                                          f"{_score(table, h, 'induction'):.3f}" for h in exp_ind)))
        if exp_prev:
            k = len(exp_prev) + config.top_k_slack
            checks.append(Check(f"the expected previous-token heads rank in the top {k} by previous-token score",
                                all(prev_rank.get(h, 10**9) < k for h in exp_prev),
                                ", ".join(f"{h}: rank {prev_rank.get(h, -1) + 1}, score "
                                          f"{_score(table, h, 'prev_token'):.3f}" for h in exp_prev)))
        if exp_ind and abl is not None:
            effects = {h: _score(table, h, "ablation_effect") for h in exp_ind}
            checks.append(Check("ablating each expected induction head weakens in-context learning (ICL score rises)",
                                all(v > 0 for v in effects.values()),
                                f"baseline ICL score {abl.baseline_icl:+.3f}; rise: "
                                + ", ".join(f"{h} {v:+.3f}" for h, v in effects.items())))
        if checks:
            verdict = Verdict.from_checks(checks)
        else:
            verdict = Verdict.not_checked(f"no expected heads were given for {handle.info.name}; scores only")
        figures = {f"heatmap_{s}": layer_head_heatmap(scores.scores[s].numpy(), f"{handle.info.name}: {s} score",
                                                      s, zmin=-1 if s == "copying" else 0, zmax=1)
                   for s in SCORES}
        if abl is not None:
            figures["heatmap_ablation_effect"] = layer_head_heatmap(
                abl.effect.numpy(),
                f"{handle.info.name}: ICL-score rise when the head is {config.ablation_mode}-ablated",
                "nats", colorscale="Reds")
        rows = table.drop(columns=["layer", "head_index"]).head(15).to_dict(orient="records")
        summary = (f"Model `{handle.info.name}` ({handle.info.n_layers} layers x {handle.info.n_heads} heads); "
                   f"{config.n_batch} rows of BOS + A + A, A = {config.seq_len} random tokens (BOS never scored as a "
                   "target); prefix matching on random tokens recurring at random gaps; copying = positive-eigenvalue "
                   "share of W_E W_V W_O W_U.\n\nTop 15 heads by induction score:\n\n" + markdown_table(rows))
        metrics = {"model": handle.info.name, "table": table.to_dict(orient="records"),
                   "scores": {k: v for k, v in scores.scores.items()},
                   "top_induction": scores.top("induction", 8), "top_prev_token": scores.top("prev_token", 4),
                   "baseline_icl": abl.baseline_icl if abl is not None else None}
        return RunResult(metrics, verdict, summary, figures)


def _score(table, head: str, col: str) -> float:
    row = table[table["head"] == head]
    return float(row[col].iloc[0]) if len(row) and col in row else float("nan")
