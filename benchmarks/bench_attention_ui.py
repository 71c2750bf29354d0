"""Attention explorer latency on a GPT-2-small-shape random model with the real tokenizer, 1024 tokens.

Baseline: a head switch that re-runs the model (forward + pattern capture). Thing: the app's head switch
(cached patterns -> select head, token scores, both figures, JSON serialisation as Streamlit sends it).

    python benchmarks/bench_attention_ui.py [--quick]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
torch.set_num_threads(1)

from benchmarks.timing import add_quick, save_gpt2  # noqa: E402
from interp import load_model  # noqa: E402
from interp.attention import prompt_attention, token_scores  # noqa: E402
from plots.attention import pattern_figure, small_multiples_figure  # noqa: E402


def timed(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_quick(ap)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gpt2-shape-") as tmp:
        handle = load_model(save_gpt2(Path(tmp), quick=args.quick))
    n_tokens = 60 if args.quick else 1023
    prompt = " ".join(["the quick brown fox jumps over the lazy dog"] * 200)
    ids = handle.tokenizer(prompt)["input_ids"][:n_tokens]
    prompt = handle.tokenizer.decode(ids)
    t0 = time.perf_counter()
    pa = prompt_attention(handle, prompt)
    first = time.perf_counter() - t0
    n = len(pa.tokens)

    layer5 = min(5, handle.info.n_layers - 1)

    def switch(layer: int = layer5, head: int = 1) -> None:
        p = pa.head(layer, head)
        token_scores(p, n - 1)
        pattern_figure(p, pa.tokens, f"Head {layer}.{head}").to_json()
        small_multiples_figure(pa.patterns[layer].astype("float32"), layer).to_json()

    def recompute() -> None:
        prompt_attention(handle, prompt)
        switch()

    base = timed(recompute, repeats=1 if args.quick else 2)
    thing = timed(switch, repeats=1 if args.quick else 3)
    shape = "quick mode: a toy GPT-2" if args.quick else "GPT-2-small shape (12x12, d_model 768)"
    print(f"model: {shape}, random weights; prompt {n} tokens; "
          f"1 CPU thread; cached patterns {pa.patterns.nbytes / 2**20:.0f} MiB")
    print(f"{'operation':<45}{'seconds':>10}{'ratio':>10}")
    print(f"{f'first {n}-token prompt (forward + capture)':<45}{first:>10.3f}{'':>10}")
    print(f"{'head switch, re-running the model (baseline)':<45}{base:>10.3f}{1.0:>10.2f}")
    print(f"{'head switch, cached patterns (app)':<45}{thing:>10.3f}{thing / base:>10.3f}")


if __name__ == "__main__":
    main()
