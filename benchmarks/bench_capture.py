"""Selective capture vs plain forward on a GPT-2-small-shape model (random weights), batch 8 x 128, CPU.

Each mode runs in its own subprocess (same machine, same run) so peak memory is measured cleanly; the
table prints tokens/s, time ratio to the plain Hugging Face forward, and peak RSS above the loaded model.
Target (issue 2): selective capture at most 1.15x the plain forward's time.

    python benchmarks/bench_capture.py [--reps 5] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.timing import add_quick, save_gpt2  # noqa: E402

MODES = {
    "hf_forward": "plain Hugging Face forward (eager attention)",
    "bridge_forward": "bridge forward, no cache",
    "cache_all": "run_with_cache, every hook",
    "patterns_only": "selective: attention patterns only",
    "resid_only": "selective: residual stream only",
}


class PeakRSS:
    """Samples this process's RSS every 2 ms in a thread; ``peak`` is the maximum seen."""

    def __init__(self) -> None:
        import psutil

        self.proc, self.peak, self._stop = psutil.Process(), 0, threading.Event()

    def __enter__(self) -> PeakRSS:
        self.base = self.peak = self.proc.memory_info().rss
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.002)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()


def build_model(model_dir: Path, quick: bool = False) -> None:
    """GPT-2 small's shape with random weights (the real tokenizer when the fixture exists); ``quick``: a toy."""
    save_gpt2(model_dir, quick=quick)


def make_runners(model_dir: str, shape: tuple[int, int] = (8, 128)) -> dict:
    """One zero-argument callable per mode, all over the same ``shape`` (8 x 128) random tokens."""
    import torch
    from transformers import AutoModelForCausalLM

    from interp import load_model
    from interp.backends.bridge import bridge_of

    h = load_model(model_dir)
    tokens = torch.randint(0, h.info.d_vocab, shape, generator=torch.Generator().manual_seed(0))
    hf = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="eager").eval()
    patterns, resid = h.sites("pattern"), h.sites("resid_post")
    return {
        "hf_forward": lambda: hf(tokens).logits,
        "bridge_forward": lambda: bridge_of(h)(tokens),
        "cache_all": lambda: bridge_of(h).run_with_cache(tokens),
        "patterns_only": lambda: h.run(tokens, read=patterns),
        "resid_only": lambda: h.run(tokens, read=resid),
    }, tokens.numel()


def time_modes(model_dir: str, reps: int, shape: tuple[int, int] = (8, 128)) -> dict[str, float]:
    """Best-of-``reps`` seconds per mode, interleaved round-robin so machine load hits every mode alike."""
    import torch

    runners, _ = make_runners(model_dir, shape)
    best = {m: float("inf") for m in MODES}
    with torch.no_grad():
        for fn in runners.values():
            fn()  # warm-up
        for _ in range(reps):
            for mode, fn in runners.items():
                t0 = time.perf_counter()
                out = fn()
                best[mode] = min(best[mode], time.perf_counter() - t0)
                del out
    return best


def peak_memory(mode: str, model_dir: str, shape: tuple[int, int] = (8, 128)) -> float:
    """MiB of RSS above the loaded models while running ``mode`` twice (fresh process per mode)."""
    import torch

    runners, _ = make_runners(model_dir, shape)
    with torch.no_grad(), PeakRSS() as mem:
        for _ in range(2):
            out = runners[mode]()
            del out
    return (mem.peak - mem.base) / 2**20


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    add_quick(ap)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    shape = (2, 16) if args.quick else (8, 128)
    reps = 1 if args.quick else args.reps
    if args.child:
        print(json.dumps({"mib": peak_memory(args.child, args.model_dir, shape)}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "gpt2-shape"
        build_model(model_dir, quick=args.quick)
        seconds = time_modes(str(model_dir), reps, shape)
        mib = {}
        for i, mode in enumerate(MODES):
            if args.quick and i:  # the quick mode checks the child path once; the rest in this process
                mib[mode] = peak_memory(mode, str(model_dir), shape)
                continue
            out = subprocess.run([sys.executable, __file__, "--child", mode, "--model-dir", str(model_dir),
                                  "--threads", str(args.threads)] + (["--quick"] if args.quick else []),
                                 capture_output=True, text=True, check=True)
            mib[mode] = json.loads(out.stdout.strip().splitlines()[-1])["mib"]
    base = seconds["hf_forward"]
    n_tokens = shape[0] * shape[1]
    what = "quick mode (a toy GPT-2)" if args.quick else "GPT-2-small shape (random weights)"
    print(f"{what}, batch {shape[0]} x {shape[1]} tokens, {args.threads} threads, "
          f"best of {reps} interleaved rounds")
    print(f"{'mode':<42} {'tokens/s':>10} {'time ratio':>11} {'peak RSS +MiB':>14}")
    for mode, desc in MODES.items():
        print(f"{desc:<42} {n_tokens / seconds[mode]:>10.0f} {seconds[mode] / base:>10.2f}x {mib[mode]:>14.0f}")
    sel = max(seconds["patterns_only"], seconds["resid_only"]) / base
    print(f"\nselective capture / plain forward: {sel:.2f}x (target <= 1.15x): {'PASS' if sel <= 1.15 else 'MISS'}")


if __name__ == "__main__":
    main()
