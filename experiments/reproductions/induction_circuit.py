"""induction-circuit: trace attn-only-2l's induction circuit by activation and path patching (K-composition)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from experiments.core.context import RunContext
from experiments.core.preconditions import does_the_task, pairs_differ, significance_reachable
from experiments.core.registry import Check, Experiment, Finding, RunResult, Verdict, register
from experiments.core.report import markdown_table
from experiments.core.settings import MODEL_HELP, RunSettings, setting
from interp.types import Head
from plots.patching import dla_bars, effect_bars_with_ci, head_effect_heatmap, layer_pos_heatmap, path_bars
from probes.heads.detectors import k_composition_scores, scan_heads
from probes.patching.activation import path_patch, run_sweeps
from probes.patching.dla import direct_logit_attribution
from probes.patching.stats import dataset_effects
from probes.skills import score_pairs
from tasks.pairs import repeated_sequence_pairs


@dataclass
class InductionCircuitConfig(RunSettings):
    """Defaults: the bundled 2-layer attention-only model, 32 pairs of 20-token repeated random sequences."""

    model: str = setting("attn-only-2l", MODEL_HELP, path="model")
    n_pairs: int = setting(32, "prompt pairs (BOS + A + A[:-1], answer A[-1])", low=2, high=10_000)
    seq_len: int = setting(20, "length of the random sequence A", low=3, high=2048)
    sender: str = setting("0.3", "the previous-token head whose path into the receiver is patched")
    receiver: str = setting("1.2", "the induction head expected to rank first")
    min_induction: float = setting(0.5, "induction score (scan_heads) from which a head counts as an induction head",
                                   low=0, high=1, threshold=True)
    k_share: float = setting(0.5, "the K path must carry at least this share of the receiver's own patching effect",
                             low=0, high=10, threshold=True)
    qv_share: float = setting(0.2, "the Q and V paths must each carry at most this share (absolute)", low=0, high=10,
                              threshold=True)
    min_top1: float = setting(0.5, "precondition: top-1 accuracy of the answer on the clean (repeated) prompts",
                              low=0, high=1, threshold=True)
    min_logit_diff: float = setting(1.0, "precondition: clean logit difference answer - wrong, and clean - corrupted",
                                    low=-100, high=100, threshold=True)

    def check(self) -> None:
        super().check()
        Head.parse(self.sender)
        Head.parse(self.receiver)


@register
class InductionCircuit(Experiment):
    name = "induction-circuit"
    title = "The induction circuit of a 2-layer attention-only model, by activation and path patching"
    Config = InductionCircuitConfig
    presets = {"ci": {"n_pairs": 4, "seq_len": 8}}
    finding = Finding(
        claim="Patching head outputs from repeated into fresh sequences ranks the induction heads (1.2 first) at the "
              "top; path patching from previous-token head 0.3 into 1.2's keys carries most of 1.2's effect while "
              "its queries and values do not (K-composition), consistent with the K-composition scores.",
        source="Elhage et al. 2021, A Mathematical Framework for Transformer Circuits; Olsson et al. 2022, "
               "In-context Learning and Induction Heads",
        published="induction heads compose with a previous-token head through their keys (K-composition); "
                  "here: attn-only-2l's induction head 1.2 (score 0.93) fed by previous-token head 0.3",
        url="https://transformer-circuits.pub/2021/framework/index.html",
    )
    precondition = ("the model does induction on the pairs (top-1 accuracy and answer - wrong logit difference on the "
                    "clean prompts above min_top1 and min_logit_diff; clean - corrupted gap above min_logit_diff)")

    def run(self, config: InductionCircuitConfig, ctx: RunContext) -> RunResult:
        handle = ctx.load_model(config.model)
        n_layers, n_heads = handle.info.n_layers, handle.info.n_heads
        sender = Head.parse(config.sender).check(n_layers, n_heads)
        receiver = Head.parse(config.receiver).check(n_layers, n_heads)
        ctx.progress(0.05, "scoring heads on repeated random tokens")
        scores = scan_heads(handle, seq_len=min(50, (handle.info.n_ctx - 1) // 2), n_batch=10, seed=config.seed,
                            include_copying=False)
        ind = scores.scores["induction"]
        induction_heads = [str(Head(la, h)) for la in range(n_layers) for h in range(n_heads)
                           if float(ind[la, h]) >= config.min_induction]
        kcomp = k_composition_scores(handle)[:, :, receiver.layer, receiver.head]  # [layer, head] into receiver

        ctx.progress(0.15, "fresh-first-copy pairs: head outputs and residual stream")
        fresh = repeated_sequence_pairs(handle, config.n_pairs, config.seq_len, seed=config.seed, corruption="fresh")
        score = score_pairs(handle, fresh)
        competence = does_the_task("induction on repeated random tokens", score.accuracy, score.mean_logit_diff,
                                   min_top1=config.min_top1, min_gap=config.min_logit_diff)
        if not competence.passed:
            return RunResult({"model": handle.info.name, "accuracy": score.accuracy,
                              "mean_logit_diff": score.mean_logit_diff},
                             Verdict.from_checks([], preconditions=[competence]),
                             f"Model `{handle.info.name}` does not predict the repeated token (top-1 "
                             f"{score.accuracy:.0%}, logit difference {score.mean_logit_diff:+.2f}), so its induction "
                             "circuit cannot be traced; no patching was run.")
        sweeps = run_sweeps(handle, fresh, ("head_out", "resid_pre"),
                            progress=lambda f, m: ctx.progress(0.15 + 0.35 * f, m))
        heads = sweeps["head_out"]
        effect = heads.normalised()  # [layer, head]
        table = dataset_effects(heads, seed=config.seed)
        ranked = [str(Head(la, h)) for la, h in sorted(((la, h) for la in range(n_layers) for h in range(n_heads)),
                                                        key=lambda c: -float(effect[c]))]

        ctx.progress(0.55, "key-corrupted pairs: path patching into q, k, v")
        keyed = repeated_sequence_pairs(handle, config.n_pairs, config.seq_len, seed=config.seed + 1,
                                        corruption="prev_token")
        own = run_sweeps(handle, keyed, ("head_out",))["head_out"].normalised()
        recv_effect = float(own[receiver.layer, receiver.head])
        paths = {c: path_patch(handle, keyed, sender, c) for c in ("q", "k", "v")}
        path_effect = {c: float(p.normalised()[receiver.layer, receiver.head]) for c, p in paths.items()}
        share = {c: (v / recv_effect if abs(recv_effect) > 1e-9 else float("nan")) for c, v in path_effect.items()}
        ctx.progress(0.9, "direct logit attribution")
        dla = direct_logit_attribution(handle, fresh)

        top_n = ranked[: max(1, len(induction_heads))]
        earlier = [(la, h) for la in range(receiver.layer) for h in range(n_heads)]
        kc_rank = [str(Head(la, h)) for la, h in sorted(earlier, key=lambda c: -float(kcomp[c]))]
        checks = [
            Check(f"{receiver} has the largest head-output patching effect", ranked[0] == str(receiver),
                  "top 5: " + ", ".join(f"{h} {float(effect[Head.parse(h)]):+.3f}" for h in ranked[:5])),
            Check(f"the top {len(top_n)} heads by effect are the induction heads (score >= {config.min_induction})",
                  bool(induction_heads) and set(top_n) == set(induction_heads),
                  f"top: {', '.join(top_n)}; induction heads: {', '.join(induction_heads) or 'none'}"),
            Check(f"the path {sender} -> {receiver} keys carries >= {config.k_share:.0%} of {receiver}'s own effect",
                  bool(share["k"] >= config.k_share), f"K path {path_effect['k']:+.3f} of {recv_effect:+.3f} "
                                                      f"({share['k']:.0%})"),
            Check(f"its queries and values carry <= {config.qv_share:.0%} each",
                  bool(abs(share["q"]) <= config.qv_share and abs(share["v"]) <= config.qv_share),
                  f"Q {path_effect['q']:+.3f} ({share['q']:.0%}), V {path_effect['v']:+.3f} ({share['v']:.0%})"),
            Check(f"{sender} has the highest K-composition score into {receiver} among earlier heads",
                  bool(kc_rank and kc_rank[0] == str(sender)),
                  ", ".join(f"{h} {float(kcomp[Head.parse(h)]):.3f}" for h in kc_rank[:4])),
        ]
        figures = circuit_figures(handle.info.name, sender, receiver, effect, sweeps, fresh, own, paths, path_effect,
                                  recv_effect, dla, table)
        rows = table.head(8)[["component", "mean", "ci_low", "ci_high", "p_value"]].to_dict(orient="records")
        summary = (
            f"Model `{handle.info.name}`; {config.n_pairs} pairs of BOS + A + A[:-1] (A = {config.seq_len} random "
            "tokens, answer A[-1]).\n\n**Head-output patching** (clean repeated -> corrupted with a fresh first copy; "
            f"clean logit diff {float(heads.clean.mean()):.2f}, corrupted {float(heads.corrupted.mean()):.2f}):\n\n"
            + markdown_table(rows)
            + f"\n\nInduction heads (score >= {config.min_induction}): {', '.join(induction_heads) or 'none'}. A "
            f"negative effect for {sender} is K-composition at work: with the clean previous-token signal in the "
            "first copy's keys, the induction heads find the answer's slot there and copy the fresh token B[-1] "
            "(the wrong answer).\n\n"
            f"**Path patching** on pairs whose first-copy token before the answer is replaced (keys broken, values "
            f"intact): {receiver}'s own output patch recovers {recv_effect:+.3f}; the path {sender} -> {receiver} "
            f"recovers Q {path_effect['q']:+.3f}, K {path_effect['k']:+.3f}, V {path_effect['v']:+.3f}.\n\n"
            f"K-composition into {receiver}: " + ", ".join(f"{h} {float(kcomp[Head.parse(h)]):.3f}" for h in kc_rank)
        )
        metrics = {
            "model": handle.info.name, "head_out_effect": effect, "ranked_heads": ranked,
            "induction_heads": induction_heads, "induction_scores": ind, "dataset_effects": table.to_dict("records"),
            "clean_logit_diff": float(heads.clean.mean()), "corrupted_logit_diff": float(heads.corrupted.mean()),
            "receiver_effect": recv_effect, "path_effect": path_effect, "path_share": share,
            "k_composition_into_receiver": kcomp, "dla_heads": dla.heads,
        }
        reachable, power = significance_reachable(config.n_pairs)
        summary += f"\n\n*{power[0].upper() + power[1:]} (the p-values in the table above).*"
        preconditions = [competence, pairs_differ(float(heads.clean.mean() - heads.corrupted.mean()),
                                                  min_gap=config.min_logit_diff)]
        return RunResult(metrics, Verdict.from_checks(checks, preconditions=preconditions), summary, figures)


def circuit_figures(model: str, sender: Head, receiver: Head, effect: torch.Tensor, sweeps: dict, fresh, own,
                    paths: dict, path_effect: dict[str, float], recv_effect: float, dla, table) -> dict:
    """The figures of the run: head and residual patching, path patching into q/k/v, DLA, effects with CIs."""
    n_layers, n_heads = effect.shape
    return {
        "head_out_fresh": head_effect_heatmap(effect.numpy(), f"{model}: head-output patching "
                                                              "(repeated into fresh first copy)"),
        "resid_pre_fresh": layer_pos_heatmap(sweeps["resid_pre"].normalised().numpy(), fresh.clean_str[0],
                                             "residual stream (resid_pre) patching, pair 0's tokens"),
        "head_out_keyed": head_effect_heatmap(own.numpy(), "head-output patching (key token corrupted)"),
        "path_qkv": path_bars({f"{sender} -> {receiver} {c}": v for c, v in path_effect.items()}
                              | {f"{receiver} output": recv_effect}, f"path patching from {sender}"),
        "path_k_receivers": head_effect_heatmap(paths["k"].normalised().nan_to_num(0).numpy(),
                                                f"path {sender} -> each later head's keys"),
        "dla_heads": dla_bars([str(Head(la, h)) for la in range(n_layers) for h in range(n_heads)],
                              dla.heads.flatten().tolist(), "direct logit attribution per head (clean)"),
        "effects_ci": effect_bars_with_ci(table["component"].head(8), table["mean"].head(8),
                                          table["ci_low"].head(8), table["ci_high"].head(8),
                                          "head-output effect over pairs, 95% bootstrap CI"),
    }
