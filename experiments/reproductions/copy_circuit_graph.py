"""copy-circuit-graph: the attribution graph of argument copying in code-gpt2 (``def f(a, b):\\n    return a *`` ->
`` b``): does it route the answer logit through the answer's earlier position, reached through the induction heads'
frozen attention, and do its nodes agree with activation patching and with interventions in the model?"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from experiments.core.context import RunContext
from experiments.core.registry import NOT_CHECKED, Check, Experiment, Finding, RunResult, Verdict, register
from experiments.core.report import markdown_table, model_or_not_checked
from experiments.core.settings import MODEL_HELP, RunSettings, setting
from experiments.reproductions._transcoders import transcoder_or_train
from interp.types import Head
from learned.transcoder import normalized_mse
from plots.graph import attribution_figure, grouped_bars
from probes.graph.attribution import AttributionGraph, GraphSettings, attribute
from probes.graph.intervene import attention_route_share, intervention_check
from probes.graph.replacement import mlp_io
from probes.heads.detectors import scan_heads
from probes.patching.activation import run_sweeps
from probes.skills import score_copy_task
from tasks.copy import TEMPLATES, copy_task_pairs
from tasks.copy_mix import stdlib_name_pairs
from tasks.pairs import PromptPair, encode_pairs


@dataclass
class CopyCircuitGraphConfig(RunSettings):
    """Defaults: code-gpt2 with its bundled cross-layer transcoders, held-out argument-copy pairs whose names never
    share a line of the model's stdlib training text; thresholds fixed before the full run."""

    model: str = setting("code-gpt2", MODEL_HELP, path="model")
    transcoder: str = setting("clt-topk32", "transcoder set beside the model or a folder ('' = train a small one "
                              "here, a smoke test)")
    train_steps: int = setting(60, "steps of a set trained in the run", low=1, high=1_000_000)
    n_pairs: int = setting(16, "held-out argument-copy pairs", low=2, high=1000)
    template: str = setting("two_args", "copy template", choices=tuple(TEMPLATES))
    max_feature_nodes: int = setting(0, "features per graph (0: every active feature)", low=0, high=10_000_000)
    min_accuracy: float = setting(0.5, "the model must complete at least this share of the clean prompts (else the "
                                  "circuit of a task it does not do is not checked)", low=0, high=1,
                                  threshold=True)
    min_induction: float = setting(0.5, "induction score from which a head counts as an induction head", low=0, high=1,
                                   threshold=True)
    min_route_rank: float = setting(0.6, "share of prompts whose answer position must be the most influential "
                                    "earlier position (BOS left out)", low=0, high=1, threshold=True)
    min_head_share: float = setting(0.5, "share of the answer position's effect that must pass through the induction "
                                    "heads' attention", low=0, high=1, threshold=True)
    min_spearman: float = setting(0.5, "rank correlation between the graph's MLP-node influence and MLP-output "
                                  "activation patching, per (layer, position)", low=-1, high=1, threshold=True)
    intervention_prompts: int = setting(4, "prompts on which graph features are ablated in the model", low=1, high=1000)
    intervention_nodes: int = setting(10, "top features ablated per prompt", low=3, high=1000)
    min_intervention_r: float = setting(0.7, "correlation between the graph's predicted and the model's measured "
                                        "change of the answer logit", low=-1, high=1, threshold=True)


@register
class CopyCircuitGraph(Experiment):
    name = "copy-circuit-graph"
    title = "Argument copying as an attribution graph: the answer's earlier position, induction heads, patching"
    Config = CopyCircuitGraphConfig
    presets = {"ci": {"transcoder": "", "train_steps": 8, "n_pairs": 6, "max_feature_nodes": 48,
                      "intervention_prompts": 1, "intervention_nodes": 4}}
    finding = Finding(
        claim="The attribution graph of an argument-copy prompt routes the answer logit through the answer token's "
              "earlier position (its features reached through the induction heads' frozen attention); its nodes "
              "agree with activation patching at the same positions, and ablating its features in the model moves "
              "the answer logit as its edges predict.",
        source="Ameisen et al. 2025, Circuit Tracing (attribution graphs, intervention checks); Olsson et al. 2022 "
               "(induction heads copy earlier tokens); this workbench's copy-circuit finding (induction heads carry "
               "argument copying in code-gpt2)",
        published="graphs validated by feature interventions; copying routed through induction heads",
        url="https://transformer-circuits.pub/2025/attribution-graphs/methods.html",
    )

    def run(self, config: CopyCircuitGraphConfig, ctx: RunContext) -> RunResult:
        handle = model_or_not_checked(ctx, config.model, f"{config.model} is not available",
                                      "Pass `--model <dir>` with transcoders beside it.")
        if isinstance(handle, RunResult):
            return handle
        pairs = copy_task_pairs(handle.tokenizer, config.n_pairs, template=config.template,  # type: ignore[arg-type]
                                split="heldout", seed=config.seed, avoid=stdlib_name_pairs())
        ctx.progress(0.02, "does the model do the task?")
        score = score_copy_task(handle, pairs)
        correct = [p for p, ok in zip(pairs, score.table["correct"]) if ok]
        lengths = [len(handle.tokenize([p.clean]).tokens[0]) for p in correct]
        modal = max(set(lengths), key=lengths.count) if lengths else 0
        correct = [p for p, n in zip(correct, lengths) if n == modal]  # position-wise patching needs one length
        if score.accuracy < config.min_accuracy or len(correct) < 2:
            low = score.accuracy < config.min_accuracy
            why = (f"the model completes {score.accuracy:.0%} of the clean prompts (< {config.min_accuracy:.0%}): it "
                   "does not do the task, so its circuit for it is not checked") if low \
                else f"only {len(correct)} completed prompt(s) of one length: too few to compare"
            return RunResult({"model": handle.info.name, "accuracy": score.accuracy}, Verdict.not_checked(why),
                             f"Top-1 accuracy on {len(pairs)} held-out pairs: {score.accuracy:.0%}.")
        tc, tc_desc = transcoder_or_train(ctx, handle, config.transcoder, "cross_layer", steps=config.train_steps,
                                          expansion=2, k=8, seed=config.seed)
        ctx.progress(0.1, "induction heads")
        ind = scan_heads(handle, seq_len=min(50, (handle.info.n_ctx - 1) // 2), n_batch=10, seed=config.seed,
                         include_copying=False).scores["induction"]
        heads = [(la, h) for la in range(handle.info.n_layers) for h in range(handle.info.n_heads)
                 if float(ind[la, h]) >= config.min_induction]
        batch = encode_pairs(handle, [PromptPair(p.clean, p.corrupted, p.answer, p.wrong) for p in correct])
        x, y = mlp_io(handle, batch.clean, tc)  # [batch, pos, L, d]
        real = torch.arange(batch.clean.shape[1])[None] < batch.lengths.cpu()[:, None]
        with torch.no_grad():
            nmse = normalized_mse(y[real], tc(x[real])).tolist()  # on these very prompts
        ctx.progress(0.15, "activation patching of every MLP output")
        patch = run_sweeps(handle, batch, ("mlp_out",))["mlp_out"]
        per_prompt, graphs = [], []
        for b in range(len(correct)):
            ctx.progress(0.25 + 0.6 * b / len(correct), f"graph {b + 1}/{len(correct)}")
            n = int(batch.lengths[b])
            tokens = batch.clean[b, :n].cpu()
            g = attribute(handle, tc, tokens, GraphSettings(max_feature_nodes=config.max_feature_nodes))
            graphs.append(g)
            row = _prompt_row(handle, tc, g, tokens, int(batch.answer[b]), heads, patch, b)
            if b < config.intervention_prompts and row["target"] is not None:
                iv = intervention_check(handle, tc, g, n_nodes=config.intervention_nodes, target=row["target"])
                row.update({"r_logit_model": iv.r_logit["model"], "r_features_model": iv.r_features["model"],
                            "r_logit_frozen_total": iv.r_logit["frozen_total"]})
            per_prompt.append(row)
        return _result(config, handle.info.name, tc_desc, score.accuracy, len(pairs), heads, per_prompt, graphs, nmse)


def _prompt_row(handle, tc, g: AttributionGraph, tokens: torch.Tensor, answer: int, heads: list[tuple[int, int]],
                patch, b: int) -> dict:
    """One prompt's numbers: where the answer's influence comes from, the induction heads' share, patching."""
    n = len(g.tokens)
    row: dict = {"prompt": g.prompt, "answer": handle.tokenizer.decode([answer]), "target": None}
    if answer not in g.logit_tokens:
        return row
    j = g.logit_tokens.index(answer)
    row["target"] = j
    earlier = [p for p in range(1, n - 1) if g.tokens[p] == answer]
    infl = g.influence(j).numpy()
    by_pos = np.zeros(n)
    for i in range(g.n_nodes):
        if g.kind[i] != "logit":
            by_pos[int(g.pos[i])] += infl[i]
    row["influence_by_position"] = by_pos.tolist()
    if earlier:
        a = earlier[0]
        ranked = sorted(range(1, n - 1), key=lambda p: -by_pos[p])  # BOS (an attention sink) and the last left out
        row.update(answer_pos=a, answer_rank=ranked.index(a) + 1,
                   answer_share=float(by_pos[a] / max(by_pos[1:n - 1].sum(), 1e-12)))
        share = attention_route_share(handle, tc, tokens[None], a, heads, answer)
        row.update(through_heads=share.through_heads, through_all=share.through_all, head_share=share.share)
    cells_graph = np.zeros((g.n_layers, n))
    for i in range(g.n_nodes):
        if g.kind[i] in ("feature", "error"):
            cells_graph[int(g.layer[i]), int(g.pos[i])] += infl[i]
    gap = float(patch.clean[b] - patch.corrupted[b])
    effect = ((patch.values[:, :n, b] - patch.corrupted[b]) / gap).abs().numpy() if abs(gap) > 1e-9 else None
    if effect is not None:
        ranks = pd.Series(cells_graph.ravel()).rank(), pd.Series(effect.ravel()).rank()  # ties: average ranks
        row["spearman"] = float(ranks[0].corr(ranks[1]))  # Spearman = Pearson of ranks (no scipy here)
        top_g = set(np.argsort(-cells_graph.ravel())[:5].tolist())
        top_p = set(np.argsort(-effect.ravel())[:5].tolist())
        row["top5_overlap"] = len(top_g & top_p) / 5
    row["replacement"], row["completeness"] = g.scores(j)
    return row


def _result(config: CopyCircuitGraphConfig, model: str, tc_desc: str, accuracy: float, n_pairs: int,
            heads: list[tuple[int, int]], rows: list[dict], graphs: list[AttributionGraph],
            nmse: list[float]) -> RunResult:
    def col(key: str) -> np.ndarray:
        return np.array([r[key] for r in rows if r.get(key) is not None and np.isfinite(r[key])], dtype=float)

    ranks, shares, rho, r_iv = col("answer_rank"), col("head_share"), col("spearman"), col("r_logit_model")
    head_names = ", ".join(str(Head(la, h)) for la, h in heads) or "none"
    checks = [
        Check(f"the answer's earlier position is the most influential earlier position (BOS left out) in >= "
              f"{config.min_route_rank:.0%} of prompts",
              bool(len(ranks)) and float(np.mean(ranks == 1)) >= config.min_route_rank if len(ranks) else None,
              f"top in {float(np.mean(ranks == 1)) if len(ranks) else float('nan'):.0%} of {len(ranks)} prompts "
              f"(mean rank {float(np.mean(ranks)) if len(ranks) else float('nan'):.2f}, mean share of earlier "
              f"positions' influence {float(np.mean(col('answer_share'))) if len(ranks) else float('nan'):.2f})"),
        Check(f"the induction heads' attention carries >= {config.min_head_share:.0%} of that position's effect on "
              "the answer logit",
              (float(np.mean(shares)) >= config.min_head_share if heads else False) if len(shares) else None,
              f"induction heads {head_names}: mean share {float(np.mean(shares)) if len(shares) else float('nan'):.2f}"
              f" over {len(shares)} prompts"),
        Check(f"graph MLP-node influence and MLP-output activation patching agree per (layer, position) (mean "
              f"Spearman >= {config.min_spearman})", float(np.mean(rho)) >= config.min_spearman if len(rho) else None,
              f"mean Spearman {float(np.mean(rho)) if len(rho) else float('nan'):.2f} over {len(rho)} prompts; top-5 "
              f"cells shared {float(np.mean(col('top5_overlap'))) if len(rho) else float('nan'):.0%}"),
        Check(f"ablating the top graph features in the model moves the answer logit as predicted (mean r >= "
              f"{config.min_intervention_r})", float(np.mean(r_iv)) >= config.min_intervention_r if len(r_iv) else None,
              f"mean r {float(np.mean(r_iv)) if len(r_iv) else float('nan'):.2f} over {len(r_iv)} prompts (frozen "
              f"attention, same ablations: {float(np.mean(col('r_logit_frozen_total'))) if len(r_iv) else 0:.2f})"),
    ]
    scores = col("replacement"), col("completeness")
    if float(np.mean(nmse)) >= 1.0:
        verdict = Verdict(NOT_CHECKED, f"the transcoders explain none of the MLP outputs' variance on these prompts "
                          f"(normalised MSE {float(np.mean(nmse)):.2f} >= 1): the graph's features mean nothing yet",
                          checks)
    elif len(scores[0]) and float(np.mean(scores[0])) < 0.05:
        verdict = Verdict(NOT_CHECKED, "the graphs are almost all error nodes (replacement score < 0.05): the "
                          "transcoders explain too little for the graph to say anything", checks)
    else:
        verdict = Verdict.from_checks(checks, "a prompt's answer was not among its graph's logit nodes")
    table = [{"prompt": repr(r["prompt"][-40:]), "answer": repr(r["answer"]), "rank": r.get("answer_rank"),
              "head share": r.get("head_share"), "spearman": r.get("spearman"), "r (model)": r.get("r_logit_model"),
              "replacement": r.get("replacement"), "completeness": r.get("completeness")} for r in rows]
    metrics = {"model": model, "transcoder": tc_desc, "transcoder_nmse": nmse, "accuracy": accuracy, "n_pairs": n_pairs,
               "n_correct": len(rows), "induction_heads": [str(Head(la, h)) for la, h in heads], "prompts": rows,
               "mean_answer_rank": float(np.mean(ranks)) if len(ranks) else None,
               "mean_head_share": float(np.mean(shares)) if len(shares) else None,
               "mean_spearman": float(np.mean(rho)) if len(rho) else None,
               "mean_intervention_r": float(np.mean(r_iv)) if len(r_iv) else None,
               "mean_replacement": float(np.mean(scores[0])) if len(scores[0]) else None,
               "mean_completeness": float(np.mean(scores[1])) if len(scores[1]) else None}
    figures = {}
    first = next((i for i, r in enumerate(rows) if r["target"] is not None), None)
    if first is not None:
        g = graphs[first]
        figures["graph_first_prompt"] = attribution_figure(g, g.pruned(target=rows[first]["target"]),
                                                           title=f"{model}: {g.prompt[-40:]!r} -> "
                                                                 f"{rows[first]['answer']!r}")
        by_pos = rows[first].get("influence_by_position")
        if by_pos:
            figures["influence_by_position"] = grouped_bars([f"{p}: {t!r}" for p, t in enumerate(g.str_tokens)],
                                                            {"graph influence": by_pos},
                                                            "influence on the answer logit by position (first prompt)")
    summary = (f"Model `{model}`; transcoders: {tc_desc} (normalised MSE on these prompts per layer "
               f"{', '.join(f'{v:.3f}' for v in nmse)}). {n_pairs} held-out `{config.template}` pairs; the model "
               f"completes {accuracy:.0%} of them; the {len(rows)} it completes whose prompts have the most common "
               "length (position-wise patching aligns prompts token by token) are analysed. Induction heads "
               f"(score >= {config.min_induction}): {head_names}.\n\n" + markdown_table(table)
               + "\n\n`rank`: the answer's earlier position among earlier positions by graph influence on the answer "
               "logit (1 = most). `head share`: of that position's total effect on the answer logit in the "
               "linearised replacement model, the part through the induction heads' attention to it. `spearman`: "
               "graph influence of MLP nodes vs |activation patching| of MLP outputs, per (layer, position). "
               "`r (model)`: correlation of predicted and measured answer-logit changes when the top features are "
               "ablated in the model (attention and norms live).")
    return RunResult(metrics, verdict, summary, figures)
