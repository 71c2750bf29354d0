"""The nnsight backend's capture vs the bridge backend's, and the cost of sending a run as an NDIF request.

On a GPT-2-small-shape model (random weights), batch 8 x 128, CPU, both backends load the same directory and
capture the same sites through ``Model.run``; all modes are timed in one run, interleaved round-robin (best of
``--reps``), so machine load hits every mode alike. Printed: tokens/s, time ratio to the plain Hugging Face forward
(the floor), the nnsight / bridge ratio per capture (target <= 1.2x, issue 22) and what ``remote="local"`` adds per
request (nnsight serialises the request and deserialises it with the working tree's modules hidden, exactly as
for NDIF, then runs it here: the client-side cost of every NDIF request; NDIF's own queue and network are not in
it, and cannot be measured here).

    python benchmarks/bench_nnsight.py [--reps 5] [--threads 2]      # GPT-2-small shape
    python benchmarks/bench_nnsight.py --quick                         # a tiny GPT-2, seconds (the test suite)
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET = 1.2  # nnsight capture / bridge capture
CAPTURES = {"patterns": "attention patterns, every layer", "resid": "residual stream, every layer"}


def build_model(model_dir: Path, quick: bool) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from interp.toy_models import save_hf_dir, train_bpe_tokenizer

    tok_dir = ROOT.parent / "shared" / "fixtures" / "gpt2-tokenizer"
    if (tok_dir / "vocab.json").is_file() and not quick:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(tok_dir))
    else:  # any tokenizer works for timing; the vocabulary size is what matters
        tok = train_bpe_tokenizer(["benchmark text"] * 10, vocab_size=300)
    config = GPT2Config(n_layer=2, n_head=4, n_embd=64, n_positions=64, vocab_size=len(tok)) if quick else GPT2Config()
    torch.manual_seed(0)
    save_hf_dir(GPT2LMHeadModel(config), tok, model_dir)


def measure(model_dir: str, *, reps: int, batch: int, pos: int) -> dict[str, float]:
    """Best seconds per mode: ``hf`` (plain forward), ``bridge:<capture>``, ``nnsight:<capture>`` and
    ``local:<capture>`` (nnsight through ``remote="local"``)."""
    import time

    import torch
    from transformers import AutoModelForCausalLM

    from interp import load_model

    bridge = load_model(model_dir)
    nnsight = load_model(model_dir, backend="nnsight")
    local = nnsight.with_remote("local")  # type: ignore[attr-defined]
    hf = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="eager").eval()
    tokens = torch.randint(1, bridge.info.d_vocab, (batch, pos), generator=torch.Generator().manual_seed(0))
    sites = {"patterns": bridge.sites("pattern"), "resid": bridge.sites("resid_post")}
    modes = {"hf": lambda: hf(tokens).logits}
    for cap, read in sites.items():
        modes[f"bridge:{cap}"] = lambda read=read: bridge.run(tokens, read=read)
        modes[f"nnsight:{cap}"] = lambda read=read: nnsight.run(tokens, read=read)
        modes[f"local:{cap}"] = lambda read=read: local.run(tokens, read=read)
    best = {m: float("inf") for m in modes}
    with torch.no_grad():
        for fn in modes.values():
            fn()  # warm-up (nnsight instruments the attention forwards on first use)
        for _ in range(reps):
            for mode, fn in modes.items():
                t0 = time.perf_counter()
                out = fn()
                best[mode] = min(best[mode], time.perf_counter() - t0)
                del out
    return best


def report(best: dict[str, float], *, batch: int, pos: int, label: str) -> dict[str, float]:
    """Print the table and the verdict lines; return the ratios."""
    n = batch * pos
    base = best["hf"]
    print(f"{label}, batch {batch} x {pos} tokens")
    print(f"{'mode':<52} {'tokens/s':>10} {'vs HF forward':>14}")
    print(f"{'plain Hugging Face forward (eager attention)':<52} {n / base:>10.0f} {1.0:>13.2f}x")
    ratios: dict[str, float] = {}
    for cap, desc in CAPTURES.items():
        for backend, name in (("bridge", "bridge"), ("nnsight", "nnsight"), ("local", "nnsight, remote='local'")):
            t = best[f"{backend}:{cap}"]
            print(f"{f'{name}: {desc}':<52} {n / t:>10.0f} {t / base:>13.2f}x")
        ratios[f"capture_{cap}"] = best[f"nnsight:{cap}"] / best[f"bridge:{cap}"]
        ratios[f"local_overhead_ms_{cap}"] = 1000 * (best[f"local:{cap}"] - best[f"nnsight:{cap}"])
        ratios[f"local_ratio_{cap}"] = best[f"local:{cap}"] / best[f"nnsight:{cap}"]
    worst = max(ratios["capture_patterns"], ratios["capture_resid"])
    print(f"\nnnsight capture / bridge capture: patterns {ratios['capture_patterns']:.2f}x, residual stream "
          f"{ratios['capture_resid']:.2f}x (target <= {TARGET}x): {'PASS' if worst <= TARGET else 'MISS'}")
    print(f"remote='local' serialisation per request: {ratios['local_overhead_ms_patterns']:+.0f} ms "
          f"({ratios['local_ratio_patterns']:.2f}x) with patterns, {ratios['local_overhead_ms_resid']:+.0f} ms "
          f"({ratios['local_ratio_resid']:.2f}x) with the residual stream")
    ratios["worst_capture"] = worst
    return ratios


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="a tiny GPT-2, one round: seconds (the test suite)")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    batch, pos, reps = (2, 16, 1) if args.quick else (8, 128, args.reps)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "gpt2"
        build_model(model_dir, args.quick)
        best = measure(str(model_dir), reps=reps, batch=batch, pos=pos)
    label = ("tiny GPT-2 (2 layers, d_model 64; quick mode: the ratios mean little)" if args.quick
             else "GPT-2-small shape (random weights)")
    return report(best, batch=batch, pos=pos, label=f"{label}, {args.threads} threads, best of {reps}")


if __name__ == "__main__":
    main()
