"""train-othello-gpt: a GPT-2-architecture model trained on next-move prediction of random legal Othello
games (Li et al. 2023's synthetic setting), saved as an ordinary Hugging Face directory with a word-level
tokenizer over the 60 square names, so it loads like every other model.

Games are generated on the fly from a seed per step (``tasks.othello.random_games``), so the data is
unlimited, a resumed run sees the same batches, and the whole run is reproducible from its config.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from experiments.core.context import RunContext
from experiments.core.registry import Check, Experiment, RunResult, Verdict, register
from experiments.core.settings import RunSettings, setting
from interp.errors import InvalidInput
from interp.toy_models import save_hf_dir
from plots.common import lines_by_x
from training.lm import InitialWeights, TrainSettings, continued_from_markdown, load_initial_weights, train_causal_lm
from training.othello import SEQ_LEN, evaluate_legal, game_batch, othello_gpt, othello_tokenizer


@dataclass
class OthelloTrainConfig(RunSettings):
    n_layer: int = setting(8, "transformer layers (Li et al.: 8 layers, d_model 512, 8 heads)", low=1, high=96)
    n_embd: int = setting(512, "width d_model (a multiple of n_head)", low=8, high=8192)
    n_head: int = setting(8, "attention heads per layer", low=1, high=256)
    batch_size: int = setting(64, "games per step", low=1, high=4096)
    steps: int = setting(20000, "training steps", low=1, high=10_000_000)
    lr: float = setting(1e-3, "peak learning rate (AdamW; warm-up then cosine to 10%)", positive=True, high=10.0)
    warmup: int = setting(200, "linear warm-up steps", low=0, high=10_000_000)
    eval_every: int = setting(500, "legal-move evaluation every this many steps (and at the end)", low=1, high=10**9)
    eval_games: int = setting(500, "held-out games per evaluation", low=1, high=100_000)
    threads: int = setting(1, "CPU threads for torch during the run (0: leave torch's default)", low=0, high=512)
    out_model: str = setting("", "where to write the model directory (empty: model/ in the results folder)",
                             path="out")
    init_from: str = setting("", "continue from this saved model directory's weights (use another seed: fresh "
                                 "games)", path="model_dir")

    def check(self) -> None:
        super().check()
        if self.n_embd % self.n_head:
            raise InvalidInput(f"Settings n_embd={self.n_embd} and n_head={self.n_head}: n_head must divide n_embd.")


@register
class TrainOthelloGPT(Experiment):
    name = "train-othello-gpt"
    title = "Train Othello-GPT: a GPT-2 on next-move prediction of random legal Othello games"
    Config = OthelloTrainConfig
    presets = {"ci": {"n_layer": 2, "n_embd": 64, "n_head": 4, "batch_size": 32, "steps": 40, "warmup": 5,
                      "eval_every": 20, "eval_games": 100, "lr": 3e-3},
               "bundled": {"n_layer": 6, "n_embd": 128, "n_head": 4, "batch_size": 64, "steps": 2500,
                           "warmup": 100, "eval_every": 250, "lr": 2e-3}}
    finding = None

    def run(self, config: OthelloTrainConfig, ctx: RunContext) -> RunResult:
        model = othello_gpt(config.n_layer, config.n_embd, config.n_head, config.seed)
        init = load_initial_weights(model, config.init_from) if config.init_from else None
        settings = TrainSettings(steps=config.steps, batch_size=config.batch_size, seq_len=SEQ_LEN, lr=config.lr,
                                 warmup=config.warmup, seed=config.seed, eval_every=config.eval_every,
                                 checkpoint_every=max(10, min(250, config.steps // 10)))
        last: dict[str, float] = {}

        def legal(m: torch.nn.Module) -> float:
            last["legal"] = evaluate_legal(m, config.eval_games, device=config.device)
            return last["legal"]

        def on_step(step: int, loss: float) -> None:
            done = step + 1
            seen = f", legal top-1 {last['legal']:.3f}" if last else ""
            ctx.progress(0.02 + 0.9 * done / config.steps, f"step {done}/{config.steps} loss {loss:.3f}{seen}")

        def batch_fn(step: int, gen: torch.Generator) -> torch.Tensor:
            return game_batch(config.batch_size, int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))

        log = train_causal_lm(model, None, None, settings, checkpoint=ctx.work_dir / "checkpoint.pt",
                              device=config.device, batch_fn=batch_fn, on_step=on_step, eval_fn=legal)
        evals = log.evals
        model = model.to("cpu").eval()
        ctx.progress(0.95, "evaluating and saving")
        final = evaluate_legal(model, 2000, seed=999_999)
        tokens_seen = config.steps * config.batch_size * SEQ_LEN
        out_model = Path(config.out_model) if config.out_model else ctx.out_dir / "model"
        save_hf_dir(model, othello_tokenizer(), out_model)
        metrics = {"legal_top1_final_2000_games": final, "legal_top1_by_step": evals, "tokens_seen": tokens_seen,
                   "games_seen": config.steps * config.batch_size,
                   "final_train_loss": float(np.mean(log.train_loss[-50:])),
                   "n_params": sum(p.numel() for p in model.parameters()),
                   "init_from": asdict(init) if init else None}
        timing = {"train_seconds": log.seconds, "tokens_per_second": tokens_seen / max(log.seconds, 1e-9)}
        (out_model / "README.md").write_text(model_card(config, {**metrics, **timing}, init))
        (out_model / "training_log.json").write_text(json.dumps({"legal_top1_by_step": evals,
                                                                "train_loss": log.train_loss[::10]}, indent=1))
        checks = [Check("top-1 next-move predictions are legal on > 90% of held-out positions", final > 0.9,
                        f"{final:.2%} on 2000 fresh random games")]
        xs = [int(k) for k in evals]
        fig = lines_by_x({"legal top-1": list(evals.values())}, xs, "Legal-move top-1 accuracy during training",
                         "step", "fraction legal")
        summary = (f"Trained a {config.n_layer}-layer GPT-2 (d_model {config.n_embd}, {config.n_head} heads, "
                   f"{metrics['n_params']:,} parameters) on {metrics['games_seen']:,} random legal games "
                   f"({tokens_seen:,} tokens) in {log.seconds / 60:.1f} min.\n\n"
                   f"Legal top-1 on 2000 fresh games: **{final:.2%}** (Li et al. 2023 report 99.99% for a "
                   "25M-parameter model trained on 20M synthetic games).")
        return RunResult(metrics, Verdict.from_checks(checks), summary, {"legal_accuracy": fig})


def model_card(config: OthelloTrainConfig, m: dict, init: InitialWeights | None = None) -> str:
    """README.md beside the weights: exactly how they were made (both stages for a continued run)."""
    sets = " ".join(f"--set {k}={v}" for k, v in asdict(config).items()
                    if v != getattr(OthelloTrainConfig(), k) and k != "out_model")
    stage1 = continued_from_markdown(init)
    this_stage = " in this stage" if init else ""
    curve = ", ".join(f"{k}: {v:.3f}" for k, v in m["legal_top1_by_step"].items())
    return f"""# othello-gpt: a GPT-2 trained on random legal Othello games

A GPT-2-architecture causal LM (Hugging Face `GPT2LMHeadModel`) trained from scratch on CPU by this repository
on next-move prediction of uniformly random legal Othello games (Li et al. 2023, synthetic dataset). It loads
like every model: `interp.load_model("othello-gpt")`.

## How it was made
- Command: `python -m experiments run train-othello-gpt {sets} --set out_model=models/othello-gpt`{stage1}
- Data: games from `tasks.othello.random_games(batch, seed)`, a fresh seeded batch every step (seed {config.seed});
  {m['games_seen']:,} games, {m['tokens_seen']:,} tokens seen{this_stage}; no game is repeated on purpose
  (duplicates are possible but rare).
- Tokenizer: word-level, `<pad>` = 0, the 60 playable squares `A1`..`H8` (centre D4 D5 E4 E5 excluded) = 1..60 in
  board order. Input: the first 59 moves of a game; padding (0) after a game ends early.
- Model: {config.n_layer} layers, d_model {config.n_embd}, {config.n_head} heads, context 60, no dropout,
  {m['n_params']:,} parameters (tied embeddings), float32 safetensors.
- Training: AdamW (betas 0.9/0.95, weight decay 0.1), peak lr {config.lr}, {config.warmup} warm-up steps then
  cosine to 10%, {config.batch_size} games per step, {config.steps} steps, {config.threads} CPU thread(s),
  {m['train_seconds'] / 60:.1f} minutes ({m['tokens_per_second']:,.0f} tokens/s).

## Results
- Legal-move top-1 accuracy (the argmax next move is legal in the true position), 2000 fresh games:
  **{m['legal_top1_final_2000_games']:.2%}**. Li et al. report 99.99% for 8 layers x 512 trained on 20M games; this
  model is ~20x smaller and saw far fewer games, and longer training would raise it.
- During training (500 held-out games): {curve}.
- Final train loss (mean of last 50 steps): {m['final_train_loss']:.3f} nats/move.
"""
