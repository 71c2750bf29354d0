"""train-text-lm: a GPT-2-architecture LM trained from scratch on CPU on text every machine has (the stdlib).

The result is an ordinary Hugging Face directory (config.json, model.safetensors, tokenizer files) plus a
model card, so it loads exactly like GPT-2. The shipped ``models/stdlib-gpt2`` was made by this experiment.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from experiments.core.context import RunContext
from experiments.core.registry import Check, Experiment, RunResult, Verdict, register
from experiments.core.settings import RunSettings, setting
from interp.errors import InvalidInput
from interp.toy_models import save_hf_dir, train_bpe_tokenizer
from plots.common import lines_by_x
from probes.skills import score_skills, skills_summary, skills_table
from tasks.copy import NameSource
from tasks.copy_mix import CopyMix, function_tokens, mixed_batch_fn
from tasks.corpus import encode_docs, load_corpus
from training.lm import (
    InitialWeights,
    TrainSettings,
    cached_tokens,
    continued_from_markdown,
    greedy_completions,
    load_initial_weights,
    train_causal_lm,
    unigram_loss,
)

COMPLETION_PROMPTS = (
    "def __init__(self",
    "import os\nimport ",
    "for i in range(",
    "    def __repr__(self):\n        return ",
    "if __name__ == ",
    "class Error(Exception):\n    ",
)


@dataclass
class TextLMConfig(RunSettings):
    data_dir: str = setting("", "folder of .py/.txt/.md files to train on (empty: the Python standard library's "
                                ".py files, tests/idlelib excluded)", path="dir")
    max_chars: int = setting(0, "characters of text to read (0: all of it)", low=0, high=10**10)
    vocab_size: int = setting(4096, "BPE vocabulary size (ignored with init_from: its tokenizer is reused)",
                              low=300, high=65_535)
    n_layer: int = setting(4, "transformer layers", low=1, high=96)
    n_embd: int = setting(192, "width d_model (a multiple of n_head)", low=8, high=8192)
    n_head: int = setting(6, "attention heads per layer", low=1, high=256)
    n_ctx: int = setting(256, "context length (tokens per training window)", low=8, high=8192)
    dropout: float = setting(0.1, "dropout on embeddings, attention and the residual stream (GPT-2's 0.1; 0 gives a "
                                  "cleaner gradient for precise circuits such as induction heads)", low=0.0, high=0.9)
    batch_size: int = setting(16, "windows per step", low=1, high=4096)
    steps: int = setting(2000, "training steps", low=1, high=10_000_000)
    lr: float = setting(2e-3, "peak learning rate (AdamW; warm-up then cosine to 10%)", positive=True, high=10.0)
    warmup: int = setting(100, "linear warm-up steps", low=0, high=10_000_000)
    eval_every: int = setting(250, "held-out evaluation every this many steps (and at the end)", low=1, high=10**9)
    threads: int = setting(2, "CPU threads for torch during the run (0: leave torch's default)", low=0, high=512)
    out_model: str = setting("", "where to write the model directory (empty: model/ in the results folder)",
                             path="out")
    init_from: str = setting("", "continue from this saved model directory (its weights and tokenizer; use "
                                 "another seed)", path="model_dir")
    # shares of each batch that reward in-context copying (tasks.copy_mix); 0, 0, 0: plain corpus windows
    copy_share: float = setting(0.0, "share of each batch: corpus windows in which an earlier span recurs later",
                                low=0.0, high=1.0)
    function_share: float = setting(0.0, "share of each batch: synthetic functions using their parameters",
                                    low=0.0, high=1.0)
    random_share: float = setting(0.0, "share of each batch: repeated random tokens", low=0.0, high=1.0)
    tiled_share: float = setting(0.0, "share of each batch: one block of corpus code (16-128 tokens) repeated to "
                                 "fill the row (copying that needs more than one token of context)", low=0.0, high=1.0)
    function_names: NameSource = setting("words", "parameter names of the synthetic functions: 'words' (train split of "
                                  "tasks.copy.NAME_WORDS), 'vocab' (every train-split word of the vocabulary), "
                                  "'open' (20,000 one- or two-token identifiers: too many to memorise) or "
                                  "'open_unpaired' (open, plus the held-out task's names at most one per module: "
                                  "seen as parameters, never together)")

    def check(self) -> None:
        super().check()
        if self.n_embd % self.n_head:
            near = max(h for h in range(1, min(self.n_head, self.n_embd) + 1) if self.n_embd % h == 0)
            raise InvalidInput(f"Settings n_embd={self.n_embd} and n_head={self.n_head}: n_head must divide n_embd.",
                               f"Try n_head={near}.")
        if self.copy_share + self.function_share + self.random_share + self.tiled_share > 1:
            raise InvalidInput("Settings copy_share + function_share + random_share + tiled_share add up to more "
                               "than 1.",
                               "They are shares of one batch: keep their sum <= 1.")


@register
class TrainTextLM(Experiment):
    name = "train-text-lm"
    title = "Train a small GPT-2-architecture language model on the Python standard library (CPU)"
    Config = TextLMConfig
    presets = {"ci": {"max_chars": 300_000, "vocab_size": 512, "n_layer": 2, "n_embd": 64, "n_head": 4,
                      "n_ctx": 64, "batch_size": 8, "steps": 60, "lr": 3e-3, "warmup": 10, "eval_every": 30}}
    finding = None

    def run(self, config: TextLMConfig, ctx: RunContext) -> RunResult:

        ctx.progress(0.0, "reading corpus")
        corpus = load_corpus(config.data_dir, max_chars=config.max_chars)
        work = ctx.work_dir

        def build_tokens():
            ctx.progress(0.01, "training BPE tokenizer" if not config.init_from else "reading the tokenizer")
            tok = (PreTrainedTokenizerFast.from_pretrained(config.init_from) if config.init_from
                   else train_bpe_tokenizer(corpus.train, config.vocab_size))
            ctx.progress(0.02, "tokenizing")
            return tok, {"train": encode_docs(tok, corpus.train), "heldout": encode_docs(tok, corpus.heldout)}

        tokenizer, arrays = cached_tokens(work / "tokens", build_tokens)
        train, heldout = arrays["train"], arrays["heldout"]
        hf_cfg = GPT2Config(vocab_size=len(tokenizer), n_positions=config.n_ctx, n_embd=config.n_embd,
                            n_layer=config.n_layer, n_head=config.n_head, bos_token_id=tokenizer.bos_token_id,
                            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                            resid_pdrop=config.dropout, embd_pdrop=config.dropout, attn_pdrop=config.dropout)
        torch.manual_seed(config.seed)
        model = GPT2LMHeadModel(hf_cfg)
        init = load_initial_weights(model, config.init_from) if config.init_from else None
        settings = TrainSettings(steps=config.steps, batch_size=config.batch_size, seq_len=config.n_ctx,
                                 lr=config.lr, warmup=config.warmup, seed=config.seed, eval_every=config.eval_every,
                                 checkpoint_every=max(10, min(200, config.steps // 10)))
        mix = CopyMix(config.copy_share, config.function_share, config.random_share, tiled_share=config.tiled_share)
        batch_fn = None
        if mix.active:
            ctx.progress(0.025, "writing the synthetic functions" if mix.function_share else "mixing copy rows")
            n_modules = 8000 if config.function_names.startswith("open") else 4000
            functions = (function_tokens(tokenizer, n_modules, seed=config.seed, names=config.function_names)
                         if mix.function_share else None)
            batch_fn = mixed_batch_fn(train, functions, mix, batch_size=config.batch_size, seq_len=config.n_ctx,
                                      vocab=len(tokenizer))
        log = train_causal_lm(model, train, heldout, settings, checkpoint=work / "checkpoint.pt", device=config.device,
                              batch_fn=batch_fn,
                              on_step=lambda step, loss: ctx.progress(
                                  0.03 + 0.9 * (step + 1) / config.steps,
                                  f"step {step + 1}/{config.steps} loss {loss:.3f}"))
        model = model.to("cpu").eval()
        ctx.progress(0.95, "evaluating and saving")
        baseline = unigram_loss(train, heldout, len(tokenizer))
        completions = greedy_completions(model, tokenizer, COMPLETION_PROMPTS)
        tokens_seen = config.steps * config.batch_size * config.n_ctx
        final = log.eval_loss[-1]
        out_model = Path(config.out_model) if config.out_model else ctx.out_dir / "model"
        save_hf_dir(model, tokenizer, out_model)
        skills = score_skills(ctx.load_model(str(out_model)))
        metrics = {
            "heldout_loss": final, "heldout_perplexity": math.exp(final), "unigram_baseline_loss": baseline,
            "train_tokens": int(len(train)), "heldout_tokens": int(len(heldout)), "tokens_seen": tokens_seen,
            "epochs": tokens_seen / len(train), "n_params": sum(p.numel() for p in model.parameters()),
            "corpus": corpus.source, "completions": completions,
            "eval_steps": log.eval_steps, "eval_loss": log.eval_loss,
            "skills": skills_table(skills).to_dict(orient="records"),
            "skills_summary": skills_summary(skills).to_dict(orient="records"),
            "init_from": asdict(init) if init else None, "rows_per_batch": mix.counts(config.batch_size),
        }
        (out_model / "README.md").write_text(model_card(config, {**metrics, "train_seconds": log.seconds}, init))
        (out_model / "training_log.json").write_text(json.dumps({"eval_steps": log.eval_steps,
                                                                "eval_loss": log.eval_loss}, indent=1))
        checks = [Check("held-out loss beats the unigram (no-context) baseline by > 1 nat", final < baseline - 1,
                        f"{final:.3f} vs unigram {baseline:.3f} nats/token")]
        smooth = np.convolve(log.train_loss, np.ones(25) / 25, mode="valid").tolist() if len(log.train_loss) > 50 \
            else log.train_loss
        fig = lines_by_x({"train (25-step mean)": smooth}, list(range(len(smooth))), "Training loss",
                         "step", "loss (nats/token)")
        fig.add_scatter(x=log.eval_steps, y=log.eval_loss, mode="lines+markers", name="held-out")
        fig.add_hline(y=baseline, line_dash="dot", annotation_text="unigram baseline")
        summary = (f"Trained a {config.n_layer}-layer GPT-2 (d_model {config.n_embd}, {config.n_head} heads, context "
                   f"{config.n_ctx}, vocabulary {len(tokenizer)}) on {corpus.source} for {config.steps} steps "
                   f"({tokens_seen:,} tokens, {metrics['epochs']:.2f} epochs) in {log.seconds / 60:.1f} min.\n\n"
                   f"Held-out loss **{final:.3f}** nats/token (perplexity {math.exp(final):.1f}); unigram baseline "
                   f"{baseline:.3f}.\n\nGreedy completions:\n\n" + "\n".join(
                       f"- `{p!r}` -> `{c!r}`" for p, c in completions.items()) +
                   "\n\nWhat it has learned (next-token skills on hand-written prompts, `probes.skills`):\n\n"
                   + skills_markdown(metrics) + "\n\nModel written to " +
                   (f"`{out_model}`." if config.out_model else "`model/` in this results folder."))
        return RunResult(metrics, Verdict.from_checks(checks), summary, {"loss": fig})


def skills_markdown(m: dict) -> str:
    """The per-skill summary and the per-case table as markdown (summary.md and the model card)."""
    rows = ["| skill | cases | greedy correct | mean p(first expected token) |", "|---|---|---|---|"]
    rows += [f"| {r['skill']} | {r['cases']} | {r['greedy_correct']:.0%} | {r['mean_p_first']:.3f} |"
             for r in m["skills_summary"]]
    rows += ["", "| prompt | expected | p(first token) | greedy wrote |", "|---|---|---|---|"]
    rows += [f"| `{r['prompt']!r}` | `{r['expected']!r}` | {r['p(first token)']:.3f} | `{r['greedy wrote']!r}` |"
             for r in m["skills"]]
    return "\n".join(rows)


def model_card(config: TextLMConfig, m: dict, init: InitialWeights | None = None) -> str:
    """The README.md written beside the weights: exactly how they were made (both stages for a continued run)."""
    sets = " ".join(f"--set {k}={v}" for k, v in asdict(config).items()
                    if v != getattr(TextLMConfig(), k) and k != "out_model")
    comp = "\n".join(f"| `{p!r}` | `{c!r}` |" for p, c in m["completions"].items())
    reused = " (the initial model's tokenizer, reused)" if init else ""
    stage1 = continued_from_markdown(init)
    return f"""# stdlib-gpt2: a small GPT-2 trained on the Python standard library

A GPT-2-architecture causal LM (Hugging Face `GPT2LMHeadModel`) trained from scratch on CPU by this repository,
so the workbench has a real language model to open offline. It loads like GPT-2:
`interp.load_model("stdlib-gpt2")`.

## How it was made
- Command: `python -m experiments run train-text-lm {sets} --set out_model=models/stdlib-gpt2`{stage1}
- Data: {m['corpus']}; `.py` files, `test/`, `tests/`, `idlelib/`, `lib2to3/` excluded; about 3% of files held
  out by a hash of their path. {m['train_tokens']:,} training tokens, {m['heldout_tokens']:,} held-out tokens.
- Tokenizer: byte-level BPE trained with `tokenizers` on the training files, vocabulary {config.vocab_size},
  `<|endoftext|>` (id 0) is BOS/EOS/pad{reused}.
- Model: {config.n_layer} layers, d_model {config.n_embd}, {config.n_head} heads, context {config.n_ctx},
  {m['n_params']:,} parameters (tied embeddings), float32 safetensors.
- Training: AdamW (betas 0.9/0.95, weight decay 0.1), peak lr {config.lr}, {config.warmup} warm-up steps then
  cosine to 10%, batch {config.batch_size} x {config.n_ctx} tokens, {config.steps} steps =
  {m['tokens_seen']:,} tokens ({m['epochs']:.2f} epochs), seed {config.seed}, {config.threads} CPU threads,
  {m['train_seconds'] / 60:.1f} minutes.

## Results
- Held-out loss {m['heldout_loss']:.3f} nats/token (perplexity {m['heldout_perplexity']:.1f}); a unigram model
  scores {m['unigram_baseline_loss']:.3f}.
- Greedy completions (prompt -> continuation):

| prompt | completion |
|---|---|
{comp}

## What it has learned
Next-token skills on hand-written prompts in the stdlib's style (`probes.skills.PYTHON_SKILLS`): the
probability of the continuation a Python programmer would write, and whether greedy decoding writes it.

{skills_markdown(m)}

## Limits
A few million parameters trained for minutes on CPU: it knows Python's surface (indentation, brackets,
common identifiers), not semantics. It is meant for looking inside, not for generating code.
"""
