"""gpt2-ioi-circuit: GPT-2 small's indirect-object-identification circuit by activation and path patching."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from experiments.core.context import RunContext
from experiments.core.preconditions import does_the_task, pairs_differ
from experiments.core.registry import Check, Experiment, Finding, RunResult, Verdict, register
from experiments.core.report import markdown_table, model_or_not_checked
from experiments.core.settings import MODEL_HELP, RunSettings, setting
from interp.types import Head
from plots.patching import head_effect_heatmap
from probes.patching.activation import direct_effects, path_patch_senders, run_sweeps
from probes.skills import score_pairs
from tasks.ioi import ioi_pairs
from tasks.pairs import encode_pairs

# class -> (published heads, how they are found here)
CLASSES: dict[str, tuple[tuple[str, ...], str]] = {
    "name movers": (("9.9", "9.6", "10.0"), "largest positive direct effect on the logits"),
    "negative name movers": (("10.7", "11.10"), "largest negative direct effect on the logits"),
    "S-inhibition": (("7.3", "7.9", "8.6", "8.10"), "largest |effect| of the path into the name movers' queries"),
    "induction": (("5.5", "6.9"), "largest |effect| of the path into the S-inhibition heads' values"),
    "duplicate-token": (("0.1", "3.0"), "largest |effect| of the path into the S-inhibition heads' values"),
    "previous-token": (("2.2", "4.11"), "largest |effect| of the path into the induction heads' keys"),
}


@dataclass
class IOICircuitConfig(RunSettings):
    """Defaults: GPT-2 small, 24 IOI prompts from 8 BABA/ABBA templates, ABC corruption."""

    model: str = setting("gpt2", MODEL_HELP, path="model")
    n_pairs: int = setting(24, "IOI prompt pairs", low=1, high=10_000)
    slack: int = setting(3, "a published head must rank within (size of its class + slack)", low=0, high=1000,
                         threshold=True)
    min_top1: float = setting(0.5, "precondition: top-1 accuracy of the indirect object on the clean prompts", low=0,
                              high=1, threshold=True)
    min_logit_diff: float = setting(1.0, "precondition: clean logit difference IO - S, and clean - corrupted", low=-100,
                                    high=100, threshold=True)


def _ranked(values: torch.Tensor, key) -> list[str]:
    n_layers, n_heads = values.shape
    cells = [(la, h) for la in range(n_layers) for h in range(n_heads) if not torch.isnan(values[la, h])]
    return [str(Head(la, h)) for la, h in sorted(cells, key=lambda c: key(float(values[c])))]


@register
class GPT2IOICircuit(Experiment):
    name = "gpt2-ioi-circuit"
    title = "GPT-2 small's indirect-object-identification circuit, by path patching"
    Config = IOICircuitConfig
    presets = {"ci": {"n_pairs": 1, "slack": 0}}
    finding = Finding(
        claim="In GPT-2 small, name movers (9.9, 9.6, 10.0) copy the indirect object to the logits, negative name "
              "movers (10.7, 11.10) push against it, S-inhibition heads (7.3, 7.9, 8.6, 8.10) steer the name movers' "
              "queries away from the subject, fed by induction (5.5, 6.9) and duplicate-token (0.1, 3.0) heads, "
              "which previous-token heads (2.2, 4.11) feed.",
        source="Wang et al. 2022, Interpretability in the Wild: a Circuit for Indirect Object Identification in "
               "GPT-2 small",
        published="name movers 9.9, 9.6, 10.0; negative name movers 10.7, 11.10; S-inhibition 7.3, 7.9, 8.6, 8.10; "
                  "induction 5.5, 6.9; duplicate-token 0.1, 3.0; previous-token 2.2, 4.11 (logit difference IO - S)",
        url="https://arxiv.org/abs/2211.00593",
    )
    precondition = ("the model does IOI (top-1 accuracy and IO - S logit difference on the clean prompts above "
                    "min_top1 and min_logit_diff; clean - corrupted gap above min_logit_diff)")

    def run(self, config: IOICircuitConfig, ctx: RunContext) -> RunResult:
        handle = model_or_not_checked(ctx, config.model, "needs GPT-2 weights from the Hub",
                                      "Run again online (or with `gpt2` in the Hugging Face cache).")
        if isinstance(handle, RunResult):
            return handle
        n_layers, n_heads = handle.info.n_layers, handle.info.n_heads
        expected = {c: [Head.parse(h) for h in heads if Head.parse(h).layer < n_layers and Head.parse(h).head < n_heads]
                    for c, (heads, _) in CLASSES.items()}
        batch = encode_pairs(handle, ioi_pairs(handle.tokenizer, config.n_pairs, seed=config.seed))
        score = score_pairs(handle, batch)
        competence = does_the_task("indirect object identification", score.accuracy, score.mean_logit_diff,
                                   min_top1=config.min_top1, min_gap=config.min_logit_diff)
        if not competence.passed:
            return RunResult({"model": handle.info.name, "accuracy": score.accuracy,
                              "mean_logit_diff": score.mean_logit_diff},
                             Verdict.from_checks([], preconditions=[competence]),
                             f"Model `{handle.info.name}` does not do IOI on these prompts (top-1 "
                             f"{score.accuracy:.0%}, IO - S {score.mean_logit_diff:+.2f}); no circuit was traced.")
        ctx.progress(0.05, "head outputs (all positions)")
        heads = run_sweeps(handle, batch, ("head_out",))["head_out"]
        ctx.progress(0.25, "direct effect of every head on the logits")
        direct = direct_effects(handle, batch).normalised()
        ctx.progress(0.45, "paths into the name movers' queries")
        into_nm = path_patch_senders(handle, batch, expected["name movers"], "q").normalised()
        ctx.progress(0.65, "paths into the S-inhibition heads' values")
        into_si = path_patch_senders(handle, batch, expected["S-inhibition"], "v").normalised()
        ctx.progress(0.85, "paths into the induction heads' keys")
        into_ind = path_patch_senders(handle, batch, expected["induction"], "k").normalised()
        rankings = {
            "name movers": _ranked(direct, lambda v: -v),
            "negative name movers": _ranked(direct, lambda v: v),
            "S-inhibition": _ranked(into_nm, lambda v: -abs(v)),
            "induction": _ranked(into_si, lambda v: -abs(v)),
            "duplicate-token": _ranked(into_si, lambda v: -abs(v)),
            "previous-token": _ranked(into_ind, lambda v: -abs(v)),
        }
        checks = []
        for cls, heads_ in expected.items():
            k = len(heads_) + config.slack
            rank = {h: i for i, h in enumerate(rankings[cls])}
            checks.append(Check(f"{cls} ({', '.join(map(str, heads_))}) rank in the top {k}: {CLASSES[cls][1]}",
                                all(rank.get(str(h), 10**9) < k for h in heads_),
                                ", ".join(f"{h}: rank {rank.get(str(h), -2) + 1}" for h in heads_)
                                + f"; top {k}: {', '.join(rankings[cls][:k])}"))
        figures = {
            "head_out": head_effect_heatmap(heads.normalised().numpy(), f"{handle.info.name}: head-output patching"),
            "direct_effect": head_effect_heatmap(direct.numpy(), "path patching: each head -> logits"),
            "into_name_movers_q": head_effect_heatmap(into_nm.nan_to_num(0).numpy(), "path -> name movers' queries"),
            "into_s_inhibition_v": head_effect_heatmap(into_si.nan_to_num(0).numpy(), "path -> S-inhibition values"),
            "into_induction_k": head_effect_heatmap(into_ind.nan_to_num(0).numpy(), "path -> induction heads' keys"),
        }
        rows = [{"class": c, "published": ", ".join(CLASSES[c][0]), "found (top)": ", ".join(
            rankings[c][: len(expected[c]) + config.slack])} for c in CLASSES]
        summary = (f"Model `{handle.info.name}`; {config.n_pairs} IOI pairs (e.g. `{batch.pairs[0].clean}` -> "
                   f"`{batch.answer_str[0]}` vs `{batch.wrong_str[0]}`), corrupted with three fresh names (ABC); "
                   f"clean logit diff {float(heads.clean.mean()):.2f}, corrupted {float(heads.corrupted.mean()):.2f}."
                   "\n\n" + markdown_table(rows))
        metrics = {"model": handle.info.name, "clean_logit_diff": float(heads.clean.mean()),
                   "corrupted_logit_diff": float(heads.corrupted.mean()), "head_out_effect": heads.normalised(),
                   "direct_effect": direct, "into_name_movers_q": into_nm, "into_s_inhibition_v": into_si,
                   "into_induction_k": into_ind, "rankings": {c: r[:10] for c, r in rankings.items()}}
        preconditions = [competence, pairs_differ(float(heads.clean.mean() - heads.corrupted.mean()),
                                                  min_gap=config.min_logit_diff)]
        return RunResult(metrics, Verdict.from_checks(checks, preconditions=preconditions), summary, figures)
