"""Logit lens over every layer and position of a 512-token prompt vs one plain forward pass, GPT-2-small shape.

Model: transformers ``GPT2Config()`` defaults (12 layers, d_model 768, vocabulary 50257) with random weights and
the real GPT-2 tokenizer when ``../shared/fixtures/gpt2-tokenizer`` exists; the prompt is 512 random token ids.
Timing: best of ``--reps`` rounds, modes interleaved so machine load hits each alike. Memory: each mode runs in
its own subprocess; peak RSS above the loaded model. Target (issue 4): the lens at most 2x one forward pass.

Modes:
  forward       plain bridge forward (no cache): the baseline
  hf_forward    plain Hugging Face forward (eager attention), for reference
  logit_lens    probes.lens.logit.logit_lens: one capture of the 13 residual streams, then per (layer, position)
                top-5, next-token prob/rank/logit, KL(final || layer) and entropy in position chunks
  unembed_only  the 13 x 512 final-norm + unembedding matmuls alone (chunked as the lens does): the floor any
                exact full-vocabulary lens pays on top of the forward pass
  lens_window   the same for the last 48 positions only (what the app's grid shows at a time): one forward
                pass + 13 x 48 read-outs
  tl_topk       TransformerLens 4.3 ``tools.analysis.logit_lens`` with top_k=5 only (it takes one selector
                per call and computes no KL), for reference

    python benchmarks/bench_lens.py [--reps 3] [--threads 1] [--pos 512]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_capture import PeakRSS, build_model  # noqa: E402

from benchmarks.timing import add_quick  # noqa: E402
from interp.backends.bridge import bridge_of  # noqa: E402

MODES = {
    "forward": "plain forward (bridge, no cache)",
    "hf_forward": "plain forward (Hugging Face)",
    "logit_lens": "logit lens, all layers x positions",
    "unembed_only": "  of which: norm + unembed matmuls only",
    "lens_window": "logit lens, last 48 positions (page view)",
    "tl_topk": "TransformerLens logit_lens(top_k=5)",
}


def make_runners(model_dir: str, n_pos: int) -> dict:
    """One zero-argument callable per mode, all over the same random prompt [1, n_pos]."""
    import torch
    from transformers import AutoModelForCausalLM

    from interp import load_model
    from probes.lens.logit import CHUNK_ELEMENTS, batch_residual_stack, logit_lens

    h = load_model(model_dir)
    tokens = torch.randint(0, h.info.d_vocab, (1, n_pos), generator=torch.Generator().manual_seed(0))
    hf = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="eager").eval()
    resid = batch_residual_stack(h, tokens)[:, 0]  # [layers, pos, d_model], for unembed_only
    readout = h.readout  # final norm + unembedding, as the lens decodes
    chunk = max(1, CHUNK_ELEMENTS // h.info.d_vocab)

    def unembed_only():
        for start in range(0, n_pos, chunk):
            for layer in range(resid.shape[0]):
                readout(resid[layer, start:start + chunk])

    def tl_topk():
        from transformer_lens.tools.analysis.logit_lens import logit_lens as tl_lens

        return tl_lens(bridge_of(h), tokens, positions=None, top_k=5)

    return {
        "forward": lambda: h.logits(tokens),
        "hf_forward": lambda: hf(tokens).logits,
        "logit_lens": lambda: logit_lens(h, tokens[0], k=5),
        "unembed_only": unembed_only,
        "lens_window": lambda: logit_lens(h, tokens[0], k=5, positions=range(max(0, n_pos - 48), n_pos)),
        "tl_topk": tl_topk,
    }


def time_modes(model_dir: str, n_pos: int, reps: int, modes: list[str]) -> dict[str, float]:
    """Best-of-``reps`` seconds per mode, interleaved round-robin."""
    import torch

    runners = make_runners(model_dir, n_pos)
    best = {m: float("inf") for m in modes}
    with torch.no_grad():
        for m in modes:
            runners[m]()  # warm-up
        for _ in range(reps):
            for m in modes:
                t0 = time.perf_counter()
                out = runners[m]()
                best[m] = min(best[m], time.perf_counter() - t0)
                del out
    return best


def peak_memory(mode: str, model_dir: str, n_pos: int) -> float:
    """MiB of RSS above the loaded model while running ``mode`` once more after a warm-up (fresh process)."""
    import torch

    runners = make_runners(model_dir, n_pos)
    with torch.no_grad():
        runners[mode]()
        with PeakRSS() as mem:
            out = runners[mode]()
            del out
    return (mem.peak - mem.base) / 2**20


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--pos", type=int, default=512)
    ap.add_argument("--skip-tl", action="store_true", help="leave out the TransformerLens reference row")
    add_quick(ap)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.pos, args.reps = min(args.pos, 64), 1
    import torch

    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps({"mib": peak_memory(args.child, args.model_dir, args.pos)}))
        return
    modes = [m for m in MODES if not (args.skip_tl and m == "tl_topk")]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "gpt2-shape"
        build_model(model_dir, quick=args.quick)
        seconds = time_modes(str(model_dir), args.pos, args.reps, modes)
        mib = {}
        for i, mode in enumerate(modes):
            if args.quick and i:  # the quick mode checks the child path once; the rest in this process
                mib[mode] = peak_memory(mode, str(model_dir), args.pos)
                continue
            out = subprocess.run([sys.executable, __file__, "--child", mode, "--model-dir", str(model_dir),
                                  "--threads", str(args.threads), "--pos", str(args.pos)],
                                 capture_output=True, text=True, check=True)
            mib[mode] = json.loads(out.stdout.strip().splitlines()[-1])["mib"]
    base = seconds["forward"]
    n_layers = 3 if args.quick else 13
    full = n_layers * args.pos * 50257 * 4 / 2**20
    what = "quick mode (a toy GPT-2)" if args.quick else "GPT-2-small shape (random weights, vocabulary 50257)"
    print(f"{what}, 1 x {args.pos} tokens, {args.threads} thread(s), best of {args.reps} interleaved rounds")
    print(f"{'mode':<42} {'seconds':>9} {'x forward':>10} {'peak RSS +MiB':>14}")
    for mode in modes:
        print(f"{MODES[mode]:<42} {seconds[mode]:>9.3f} {seconds[mode] / base:>9.2f}x {mib[mode]:>14.0f}")
    print(f"(the full [{n_layers}, {args.pos}, 50257] float32 logits tensor would be {full:,.0f} MiB)")
    ratio = seconds["logit_lens"] / base
    print(f"\nlogit lens / plain forward: {ratio:.2f}x time (target <= 2x): {'PASS' if ratio <= 2 else 'MISS'}; "
          f"memory {mib['logit_lens']:.0f} MiB vs forward {mib['forward']:.0f} MiB")


if __name__ == "__main__":
    main()
