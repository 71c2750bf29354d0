"""copy-circuit: which heads carry argument copying (``def f(a, b): return a *`` -> `` b``) in a code model."""
from __future__ import annotations

from dataclasses import dataclass

from experiments.core.context import RunContext
from experiments.core.preconditions import does_the_task, pairs_differ, significance_reachable
from experiments.core.registry import Check, Experiment, Finding, RunResult, Verdict, register
from experiments.core.report import markdown_table, model_or_not_checked
from experiments.core.settings import MODEL_HELP, RunSettings, setting
from interp.types import Head
from plots.patching import dla_bars, effect_bars_with_ci, head_effect_heatmap, path_bars
from probes.heads.detectors import scan_heads
from probes.patching.activation import path_patch_senders, run_sweeps
from probes.patching.dla import direct_logit_attribution
from probes.patching.stats import dataset_effects
from probes.skills import CopyTaskScore, score_copy_task
from tasks.copy import Split, TemplateName, copy_task_pairs
from tasks.copy_mix import stdlib_name_pairs
from tasks.pairs import PromptPair, encode_pairs


@dataclass
class CopyCircuitConfig(RunSettings):
    """Defaults: the bundled code model, 32 held-out argument-copy pairs whose names never occur in its synthetic
    training functions and never share a line of its stdlib training text."""
    model: str = setting("code-gpt2", MODEL_HELP, path="model")
    n_pairs: int = setting(32, "argument-copy prompt pairs", low=2, high=10_000)
    template: TemplateName = setting("two_args", "copy template")
    split: Split = setting("heldout", "which names the pairs use")
    unseen_pairs: bool = setting(True, "draw only name pairs that never share a line of the standard library's "
                                       "training files (the bundled text models' corpus), so no clean prompt pairs "
                                       "names the model read together")
    top_k: int = setting(5, "how many top heads (by patching effect) must include an induction head", low=1,
                         high=1000, threshold=True)
    min_induction: float = setting(0.5, "induction score from which a head counts as an induction head", low=0,
                                   high=1, threshold=True)
    min_top1: float = setting(0.5, "precondition: the model's top-1 accuracy on the clean prompts must reach this",
                              low=0, high=1, threshold=True)
    min_logit_diff: float = setting(1.0, "precondition: mean logit difference (answer - wrong) on the clean prompts, "
                                         "and clean - corrupted, must reach this", low=-100, high=100, threshold=True)


@register
class CopyCircuit(Experiment):
    name = "copy-circuit"
    title = "Argument copying in a code model: which heads carry it (patching, DLA, path patching)"
    Config = CopyCircuitConfig
    presets = {"ci": {"n_pairs": 8}}  # the code model: 8 pairs let a permutation p-value reach 0.008
    finding = Finding(
        claim="Copying an argument name from a function's signature into its body is carried by a few heads, and "
              "the top heads by patching effect include the induction heads the detectors find (in-context copying "
              "reuses the induction mechanism).",
        source="Olsson et al. 2022, In-context Learning and Induction Heads (induction heads do general in-context "
               "copying); this workbench's argument-copy task (issue 13)",
        published="induction heads implement in-context copying of earlier tokens beyond repeated random sequences",
        url="https://transformer-circuits.pub/2022/in-context-learning-and-induction-heads/index.html",
    )
    precondition = ("the model does the task (top-1 accuracy and answer - wrong logit difference on the clean "
                    "prompts above min_top1 and min_logit_diff; clean - corrupted gap above min_logit_diff)")

    def run(self, config: CopyCircuitConfig, ctx: RunContext) -> RunResult:
        handle = model_or_not_checked(ctx, config.model, f"{config.model} is not available",
                                      "Train the code model first (issue 13, item 2) or pass `--model <dir>`.")
        if isinstance(handle, RunResult):
            return handle
        n_layers, n_heads = handle.info.n_layers, handle.info.n_heads
        avoid = stdlib_name_pairs() if config.unseen_pairs else frozenset()
        pairs = copy_task_pairs(handle.tokenizer, config.n_pairs, template=config.template,  # type: ignore[arg-type]
                                split=config.split, seed=config.seed, avoid=avoid)  # type: ignore[arg-type]
        ctx.progress(0.05, "scoring the task and the heads")
        score = score_copy_task(handle, pairs)
        competence = does_the_task("argument copying", score.accuracy, score.mean_logit_diff,
                                   min_top1=config.min_top1, min_gap=config.min_logit_diff)
        if not competence.passed:  # how a model does a task is only asked of a model that does it
            return _not_done(handle.info.name, config, score, competence)
        batch = encode_pairs(handle, [PromptPair(p.clean, p.corrupted, p.answer, p.wrong) for p in pairs])
        scores = scan_heads(handle, seq_len=min(50, (handle.info.n_ctx - 1) // 2), n_batch=10, seed=config.seed,
                            include_copying=False)
        ind = scores.scores["induction"]
        induction_heads = {str(Head(la, h)) for la in range(n_layers) for h in range(n_heads)
                           if float(ind[la, h]) >= config.min_induction}
        ctx.progress(0.2, "head-output patching")
        res = run_sweeps(handle, batch, ("head_out",), progress=lambda f, m: ctx.progress(0.2 + 0.4 * f, m))
        heads = res["head_out"]
        effect = heads.normalised()
        table = dataset_effects(heads, seed=config.seed)
        ranked = [str(Head(la, h)) for la, h in sorted(((la, h) for la in range(n_layers) for h in range(n_heads)),
                                                        key=lambda c: -float(effect[c]))]
        top = ranked[: config.top_k]
        ctx.progress(0.65, "direct logit attribution")
        dla = direct_logit_attribution(handle, batch)
        paths: dict[str, float] = {}
        best = Head.parse(ranked[0])
        if best.layer > 0:
            ctx.progress(0.75, f"path patching into {best}")
            for comp in ("q", "k", "v"):
                p = path_patch_senders(handle, batch, [best], comp).normalised()  # [layer, head]
                cells = [(la, h) for la in range(best.layer) for h in range(n_heads)]
                la, h = max(cells, key=lambda c: abs(float(p[c])))
                paths[f"{Head(la, h)} -> {best} {comp}"] = float(p[la, h])
        top_row = table.iloc[0]
        gap = float(heads.clean.mean() - heads.corrupted.mean())
        preconditions = [competence, pairs_differ(gap, min_gap=config.min_logit_diff)]
        reachable, power = significance_reachable(config.n_pairs)
        checks = [
            Check(f"the top {config.top_k} heads by patching effect include an induction head (score >= "
                  f"{config.min_induction})", bool(induction_heads & set(top)),
                  f"top: {', '.join(f'{h} {float(effect[Head.parse(h)]):+.3f}' for h in top)}; induction heads: "
                  f"{', '.join(sorted(induction_heads)) or 'none'} (max score {float(ind.max()):.2f})"),
            Check("the strongest component's effect is significant (95% CI excludes 0, p < 0.05)",
                  bool((top_row["ci_low"] > 0 or top_row["ci_high"] < 0) and top_row["p_value"] < 0.05)
                  if reachable else None,
                  f"{top_row['component']}: {top_row['mean']:+.3f} [{top_row['ci_low']:+.3f}, "
                  f"{top_row['ci_high']:+.3f}], p = {top_row['p_value']:.3g}" + ("" if reachable else f"; {power}")),
        ]
        figures = {
            "head_out": head_effect_heatmap(effect.numpy(), f"{handle.info.name}: head-output patching (copy task)"),
            "induction_scores": head_effect_heatmap(ind.numpy(), "induction score (repeated random tokens)",
                                                    "induction"),
            "dla_heads": dla_bars([str(Head(la, h)) for la in range(n_layers) for h in range(n_heads)],
                                  dla.heads.flatten().tolist(), "direct logit attribution per head"),
            "effects_ci": effect_bars_with_ci(table["component"].head(10), table["mean"].head(10),
                                              table["ci_low"].head(10), table["ci_high"].head(10),
                                              "head-output effect over pairs, 95% bootstrap CI"),
        }
        if paths:
            figures["paths_into_top"] = path_bars(paths, f"strongest path into {best}'s q, k, v")
        rows = table.head(10)[["component", "mean", "ci_low", "ci_high", "p_value"]].to_dict(orient="records")
        summary = (f"Model `{handle.info.name}`; {config.n_pairs} {config.split} `{config.template}` pairs (e.g. "
                   f"`{pairs[0].clean!r}` -> `{pairs[0].answer!r}`); top-1 accuracy {score.accuracy:.0%}, "
                   f"clean logit diff {float(heads.clean.mean()):.2f}, corrupted {float(heads.corrupted.mean()):.2f}."
                   "\n\n" + markdown_table(rows) + f"\n\n*{power[0].upper() + power[1:]}.*"
                   "\n\nDirect logit attribution, top heads: " + ", ".join(
                       f"{r['head']} {r['dla']:+.2f}" for r in dla.head_table().head(5).to_dict("records"))
                   + ("\n\nPath patching into " + str(best) + ": " + ", ".join(f"{k} {v:+.3f}" for k, v in
                                                                              paths.items()) if paths else ""))
        metrics = {"model": handle.info.name, "accuracy": score.accuracy, "head_out_effect": effect,
                   "ranked_heads": ranked[:20], "induction_heads": sorted(induction_heads), "induction_scores": ind,
                   "dataset_effects": table.to_dict("records"), "dla_heads": dla.heads, "paths_into_top": paths,
                   "clean_logit_diff": float(heads.clean.mean()), "corrupted_logit_diff": float(heads.corrupted.mean())}
        return RunResult(metrics, Verdict.from_checks(checks, preconditions=preconditions), summary, figures)


def _not_done(model: str, config: CopyCircuitConfig, score: CopyTaskScore, competence: Check) -> RunResult:
    """The verdict when the model does not do the task: "not checked", with its score, and no circuit analysis."""
    rows = score.table[["clean", "answer", "predicted", "logit_diff"]].head(8).to_dict("records")
    summary = (f"Model `{model}` does not do the argument-copy task on {config.n_pairs} {config.split} "
               f"`{config.template}` pairs (top-1 accuracy {score.accuracy:.0%}, mean logit difference answer - wrong "
               f"{score.mean_logit_diff:+.2f}), so which heads carry it cannot be asked: patching effects normalised "
               "by a clean - corrupted gap the model does not have mean nothing. No circuit analysis was run.\n\n"
               + markdown_table(rows))
    metrics = {"model": model, "accuracy": score.accuracy, "mean_logit_diff": score.mean_logit_diff}
    return RunResult(metrics, Verdict.from_checks([], preconditions=[competence]), summary)
