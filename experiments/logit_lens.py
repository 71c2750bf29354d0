"""logit-lens: decode every layer of held-out text through the final norm + unembedding; does KL fall with depth?"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from interp.handle import ModelHandle
from interp.loading import default_model
from interp.tokens import tokenize
from plots.common import lines_by_x
from plots.lens import grid_figure, kl_figure
from probes.lens import layer_labels, logit_lens
from probes.tuned_lens import LensEval, evaluate_lens
from training.corpus import load_corpus

from .core.registry import Check, Experiment, Finding, RunResult, Verdict, register

#: Short prompts drawn as nostalgebraist grids (code, since the bundled model reads Python).
FIGURE_PROMPTS = (
    "def __init__(self, name, value=None):\n    self.name = name\n    self.value = value\n",
    "import os\nimport sys\n\nfor path in sys.argv[1:]:\n    print(os.path.basename(path))\n",
    "The quick brown fox jumps over the lazy dog.",
)


def token_windows(tokenizer, docs: list[str], n: int, seq_len: int, seed: int) -> torch.Tensor:
    """``n`` windows of ``seq_len`` tokens [n, seq_len] from documents in a seeded order (EOS between documents).

    Only as many documents are tokenized as the windows need (about 4x their tokens), so this is fast on a
    large corpus; the same seed gives the same windows.
    """
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(docs), generator=gen).tolist()
    need = max(4 * n * seq_len, seq_len + 1)
    ids: list[int] = []
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    for i in order:
        ids.extend(tokenizer(docs[i], add_special_tokens=False)["input_ids"])
        ids.append(eos)
        if len(ids) >= need:
            break
    if len(ids) <= seq_len:
        raise ValueError(f"the text has {len(ids)} tokens, fewer than one window of {seq_len}")
    stream = torch.tensor(ids, dtype=torch.long)
    starts = torch.randint(0, len(ids) - seq_len, (n,), generator=gen)
    return torch.stack([stream[s:s + seq_len] for s in starts.tolist()])  # [n, seq_len]


def heldout_windows(tokenizer, docs: list[str], n: int, seq_len: int, seed: int) -> torch.Tensor:
    """The held-out windows both lens experiments evaluate on (seed + 1), so their per-layer numbers match."""
    return token_windows(tokenizer, docs, n, seq_len, seed + 1)


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    import pandas as pd

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


def layer_table(evals: list[LensEval]) -> str:
    """Markdown table: one row per lens layer, KL / top-1 agreement / next-token probability per lens."""
    head = "| layer | " + " | ".join(f"{e.lens}: KL (nats) | {e.lens}: top-1 = final | {e.lens}: p(next)"
                                      for e in evals) + " |"
    sep = "|---|" + "---|" * (3 * len(evals))
    rows = [f"| {lbl} | " + " | ".join(f"{e.kl_to_final[i]:.3f} | {e.top1_agreement[i]:.3f} | "
                                       f"{e.next_token_prob[i]:.3f}" for e in evals) + " |"
            for i, lbl in enumerate(evals[0].layer_labels)]
    return "\n".join([head, sep, *rows])


def prompt_record(handle: ModelHandle, prompt: str, k: int, lens=None) -> tuple[dict, object, object]:
    """One prompt's lens trajectory (first n_ctx tokens) as JSON-able data, plus its probability and KL grids."""
    tokens = tokenize(handle, prompt, truncate=True).tokens[0]  # [pos], BOS first
    res = logit_lens(handle, tokens, k=k, translators=lens)
    rec = {"prompt": prompt, "lens": res.lens, "tokens": res.tokens, "targets": res.target_tokens,
           "top1": res.topk_tokens[..., 0].tolist(), "top1_prob": res.topk_probs[..., 0],
           "target_prob": res.target_prob, "target_rank": res.target_rank, "kl_to_final": res.kl_to_final}
    return rec, grid_figure(res, "target_prob"), grid_figure(res, "kl_to_final")


@dataclass
class LogitLensConfig:
    model: str = ""  # empty: the bundled default model
    n_windows: int = 64  # held-out windows of text the per-layer means are taken over
    seq_len: int = 128
    max_chars: int = 0  # 0: the whole standard library is available (only what is needed is tokenized)
    prompts: tuple[str, ...] = FIGURE_PROMPTS
    k: int = 5
    threads: int = 2
    seed: int = 0
    device: str = "cpu"


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

    def run(self, config: LogitLensConfig, ctx) -> RunResult:
        if config.threads > 0:
            torch.set_num_threads(config.threads)
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

