"""train-othello-gpt: a GPT-2-architecture model trained on next-move prediction of random legal Othello
games (Li et al. 2023's synthetic setting), saved as an ordinary Hugging Face directory with a word-level
tokenizer over the 60 square names, so it loads like every other model.

Games are generated on the fly from a seed per step (``probes.othello.random_games``), so the data is
unlimited, a resumed run sees the same batches, and the whole run is reproducible from its config.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from interp.toy_models import save_hf_dir
from plots.common import lines_by_x
from training.lm import InitialWeights, TrainSettings, continued_from_markdown, load_initial_weights, train_causal_lm
from training.othello import SEQ_LEN, evaluate_legal, game_batch, othello_gpt, othello_tokenizer

from .core.registry import Check, Experiment, RunResult, Verdict, register


@dataclass
class OthelloTrainConfig:
    n_layer: int = 8  # Li et al.: 8 layers, d_model 512, 8 heads
    n_embd: int = 512
    n_head: int = 8
    batch_size: int = 64  # games per step
    steps: int = 20000
    lr: float = 1e-3
    warmup: int = 200
    eval_every: int = 500
    eval_games: int = 500
    threads: int = 1
    out_model: str = ""  # where to write the model directory (default: <results>/model)
    init_from: str = ""  # continue from this model directory's weights (use another seed: fresh games)
    seed: int = 0
    device: str = "cpu"


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

    def run(self, config: OthelloTrainConfig, ctx) -> RunResult:
        torch.set_num_threads(max(1, config.threads))
        model = othello_gpt(config.n_layer, config.n_embd, config.n_head, config.seed)
        init = load_initial_weights(model, config.init_from) if config.init_from else None
        settings = TrainSettings(steps=config.steps, batch_size=config.batch_size, seq_len=SEQ_LEN, lr=config.lr,
                                 warmup=config.warmup, seed=config.seed, eval_every=10**9,
                                 checkpoint_every=max(10, min(250, config.steps // 10)))
        evals_path = ctx.work_dir / "legal_evals.json"
        evals: dict[str, float] = json.loads(evals_path.read_text()) if evals_path.is_file() else {}
        t0 = time.perf_counter()

        def on_step(step: int, loss: float) -> None:
            done = step + 1
            if done % config.eval_every == 0 or done == config.steps:
                evals[str(done)] = evaluate_legal(model, config.eval_games, device=config.device)
                evals_path.write_text(json.dumps(evals))
                print(f"step {done} loss {loss:.4f} legal_top1 {evals[str(done)]:.4f} "
                      f"{time.perf_counter() - t0:.0f}s", flush=True)
            ctx.progress(0.02 + 0.9 * done / config.steps, f"step {done}/{config.steps} loss {loss:.3f}")

        def batch_fn(step: int, gen: torch.Generator) -> torch.Tensor:
            return game_batch(config.batch_size, int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))

        log = train_causal_lm(model, None, None, settings, checkpoint=ctx.work_dir / "checkpoint.pt",
                              device=config.device, batch_fn=batch_fn, on_step=on_step)
        model = model.to("cpu").eval()
        ctx.progress(0.95, "evaluating and saving")
        final = evaluate_legal(model, 2000, seed=999_999)
        tokens_seen = config.steps * config.batch_size * SEQ_LEN
        out_model = Path(config.out_model) if config.out_model else ctx.out_dir / "model"
        save_hf_dir(model, othello_tokenizer(), out_model)
        metrics = {"legal_top1_final_2000_games": final, "legal_top1_by_step": evals, "tokens_seen": tokens_seen,
                   "games_seen": config.steps * config.batch_size, "final_train_loss": float(np.mean(log.train_loss[-50:])),
                   "n_params": sum(p.numel() for p in model.parameters()), "train_seconds": log.seconds,
                   "tokens_per_second": tokens_seen / max(log.seconds, 1e-9),
                   "init_from": asdict(init) if init else None}
        (out_model / "README.md").write_text(model_card(config, metrics, init))
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
    curve = ", ".join(f"{k}: {v:.3f}" for k, v in m["legal_top1_by_step"].items())
    return f"""# othello-gpt: a GPT-2 trained on random legal Othello games

A GPT-2-architecture causal LM (Hugging Face `GPT2LMHeadModel`) trained from scratch on CPU by this repository
on next-move prediction of uniformly random legal Othello games (Li et al. 2023, synthetic dataset). It loads
like every model: `interp.load_model("othello-gpt")`.

## How it was made
- Command: `python -m experiments run train-othello-gpt {sets} --set out_model=models/othello-gpt`{stage1}
- Data: games from `probes.othello.random_games(batch, seed)`, a fresh seeded batch every step (seed {config.seed});
  {m['games_seen']:,} games, {m['tokens_seen']:,} tokens seen{' in this stage' if init else ''}; no game is repeated on purpose (duplicates are
  possible but rare).
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
