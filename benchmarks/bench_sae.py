"""SAE training throughput against the matmul floor, and activation streaming against a plain forward pass.

1. GEMM rate: a float32 matmul of the SAE's encoder shape, timed here (GFLOP/s on this machine, this run).
2. SAE training: tokens/s of ``training.sae.train_sae`` steps (TopK, aux-k, Adam) on activations held in memory;
   the floor is the FLOPs of encode + decode + backward (6 x 2 x tokens x d_in x d_sae: forward encoder and
   decoder GEMMs, twice that for the backward) at the GEMM rate. Ratio = floor time / measured time (1.0 =
   as fast as the matmuls alone).
3. Streaming: ``Model.activations`` (stops after the site) and ``Model.run(read=[site])`` (full pass, one site
   read) against a plain forward on the same tokens.

Run: ``.venv/bin/python benchmarks/bench_sae.py [--model stdlib-gpt2] [--hook blocks.2.hook_resid_pre]``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.timing import add_quick, best_of  # noqa: E402
from interp import load_model  # noqa: E402
from training.sae import SAETrainSettings, train_sae  # noqa: E402


class Held:
    """Activation batches already in memory (so the SAE step alone is timed)."""

    def __init__(self, x: torch.Tensor, rows: int):
        self.x, self.rows, self.d_in = x, rows, x.shape[1]

    def batch(self, step: int) -> torch.Tensor:
        start = (step * self.rows) % (self.x.shape[0] - self.rows)
        return self.x[start:start + self.rows]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="stdlib-gpt2")
    ap.add_argument("--hook", default="blocks.2.hook_resid_pre")
    ap.add_argument("--expansion", type=int, default=8)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    add_quick(ap)
    args = ap.parse_args(argv)
    if args.quick:  # the bundled attention-only model (no MLP needed), tiny batches
        args.model, args.hook, args.expansion, args.k, args.rows, args.steps = (
            "attn-only-1l", "blocks.0.hook_resid_pre", 2, 4, 256, 2)
    torch.set_num_threads(args.threads)
    handle = load_model(args.model)
    d_in = handle.info.d_model
    d_sae = args.expansion * d_in
    n = args.rows

    a, b = torch.randn(n, d_in), torch.randn(d_in, d_sae)
    reps = 1 if args.quick else 3
    t_gemm = best_of(lambda: a @ b, 1 if args.quick else 5)
    gemm_rate = 2 * n * d_in * d_sae / t_gemm
    print(f"GEMM [{n} x {d_in}] @ [{d_in} x {d_sae}]: {gemm_rate / 1e9:.1f} GFLOP/s ({args.threads} thread(s))")

    seq = min(128, handle.info.n_ctx)
    n_seq = max(1, n // seq)
    tokens = torch.randint(1, handle.info.d_vocab, (n_seq * 4, seq))
    x = handle.activations(tokens, args.hook).flatten(0, -2)  # [rows, d_in]
    source = Held(x, n)
    s = SAETrainSettings(architecture="topk", d_sae=d_sae, k=args.k, steps=args.steps, dead_tokens=n, log_every=5,
                         scale_batches=1)
    t = time.perf_counter()
    train_sae(source, s, log=None)
    t_train = (time.perf_counter() - t) / args.steps
    floor = 6 * 2 * n * d_in * d_sae / gemm_rate
    print(f"SAE training (TopK k={args.k}, {d_sae} latents, {n} tokens/step): {n / t_train:,.0f} tokens/s, "
          f"{t_train * 1e3:.0f} ms/step; matmul floor {floor * 1e3:.0f} ms/step -> ratio {floor / t_train:.2f} "
          f"of the floor ({t_train / floor:.1f}x slower than the GEMMs alone)")

    tok = tokens[:n_seq]
    t_plain = best_of(lambda: handle.logits(tok), reps)
    t_stop = best_of(lambda: handle.activations(tok, args.hook), reps)
    t_cap = best_of(lambda: handle.run(tok, read=[args.hook]), reps)
    print(f"Streaming {n_seq * seq} tokens at {args.hook}: plain forward {t_plain * 1e3:.0f} ms; "
          f"Model.activations (stops after the site) {t_stop * 1e3:.0f} ms = {t_stop / t_plain:.2f}x; "
          f"Model.run reading one site (full pass) {t_cap * 1e3:.0f} ms = {t_cap / t_plain:.2f}x")
    step_total = t_train + t_stop
    print(f"One streamed SAE step (activations + training): {n_seq * seq / step_total:,.0f} tokens/s; "
          f"the model's share {t_stop / step_total:.0%}")


if __name__ == "__main__":
    main()
