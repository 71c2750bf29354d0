"""Patching cost on a GPT-2-small-shape model (GPT2Config() defaults, random weights, real GPT-2 tokenizer), CPU.

Two ratios measured in one run on the same IOI prompt pairs:
1. attribution patching (every head's output at once: 2 forwards + 1 backward) vs one forward pass of the
   batch, in forward-pass equivalents (target <= 3), beside the exact head-output sweep's cost per head;
2. this project's exact head-output sweep (cells batched as replicas) vs TransformerLens's
   ``get_act_patch_attn_head_out_all_pos`` (one forward per head): the numbers must agree, speed ratio.

    python benchmarks/bench_patching.py [--pairs 4] [--threads 1] [--reps 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TQDM_DISABLE", "1")  # TransformerLens's sweep draws a progress bar per call
from benchmarks.timing import TOKENIZER, add_quick, save_gpt2  # noqa: E402


def timed(fn, reps: int, warmup: bool = True) -> tuple[float, object]:
    """Median wall time of ``reps`` calls (after one warm-up call unless ``warmup=False``) and the last result."""
    out = fn() if warmup else None
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=8, help="IOI pairs generated (those of the commonest length kept)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    add_quick(ap)
    args = ap.parse_args(argv)
    if args.quick:
        args.pairs, args.reps = 2, 1
    import torch
    from transformer_lens.patching import get_act_patch_attn_head_out_all_pos

    from interp import load_model
    from interp.backends.bridge import bridge_of
    from probes.patching.activation import metric_fn, prepare, sweep
    from probes.patching.attribution import attribute
    from tasks.ioi import ioi_pairs
    from tasks.pairs import encode_pairs

    torch.set_num_threads(args.threads)
    if not (TOKENIZER / "vocab.json").is_file():
        sys.exit(f"needs the GPT-2 tokenizer fixture at {TOKENIZER}")
    with tempfile.TemporaryDirectory() as tmp:
        handle = load_model(save_gpt2(Path(tmp), quick=args.quick))
    batch = encode_pairs(handle, ioi_pairs(handle.tokenizer, args.pairs, seed=0))
    lengths = batch.lengths.tolist()
    mode = max(sorted(set(lengths)), key=lengths.count)  # one length, so every pair patches position by position
    batch = batch.select([i for i, n in enumerate(lengths) if n == mode])
    bridge, fn = bridge_of(handle), metric_fn(batch)
    n_cells = handle.info.n_layers * handle.info.n_heads
    what = "quick mode (a toy GPT-2)" if args.quick else "GPT-2-small shape"
    print(f"{what}: {handle.info.n_layers} layers x {handle.info.n_heads} heads, d_model "
          f"{handle.info.d_model}; {len(batch)} IOI pairs x {batch.clean.shape[1]} tokens; {args.threads} thread(s)")

    def forward():
        with torch.no_grad():
            return bridge(batch.corrupted)

    t_fwd, _ = timed(forward, args.reps)
    t_attr, attr = timed(lambda: attribute(handle, batch, ("head_out",)), args.reps)
    runs = prepare(handle, batch, kinds=("head_out",))
    t_ours, ours = timed(lambda: sweep(runs, "head_out"), 1, warmup=False)
    _, cache = bridge.run_with_cache(batch.clean, names_filter=lambda n: n.endswith("attn.hook_z"))
    t_tl, tl = timed(lambda: get_act_patch_attn_head_out_all_pos(bridge, batch.corrupted, cache,
                                                                  lambda lg: fn(lg).mean()), 1, warmup=False)
    diff = float((ours.values.mean(-1) - tl.cpu()).abs().max())
    est = attr.normalised("head_out").flatten()
    exact = ours.normalised().flatten()
    r = float(torch.corrcoef(torch.stack([est, exact]))[0, 1])

    print("\n1. attribution patching vs the exact head-output sweep")
    print(f"   one forward pass (baseline)          {t_fwd * 1000:8.1f} ms")
    print(f"   attribution, all {n_cells} heads          {t_attr * 1000:8.1f} ms = {t_attr / t_fwd:5.2f} forward-pass "
          "equivalents (target <= 3)")
    print(f"   exact sweep (ours), all {n_cells} heads   {t_ours * 1000:8.1f} ms = {t_ours / t_fwd:6.1f} forward "
          f"passes, {t_ours / n_cells * 1000:.1f} ms = {t_ours / n_cells / t_fwd:.2f} forward passes per head")
    print(f"   exact sweep (TransformerLens)        {t_tl * 1000:8.1f} ms = {t_tl / n_cells * 1000:.1f} ms per head")
    print(f"   attribution / exact time: {t_attr / t_ours:.3f}; Pearson r(attribution, exact) = {r:.3f} "
          "(random weights)")
    print("\n2. our head-output sweep vs get_act_patch_attn_head_out_all_pos")
    print(f"   max |difference| of the {n_cells} metric values: {diff:.2e}")
    print(f"   speed ratio TransformerLens / ours: {t_tl / t_ours:.2f}x (target >= 1)")


if __name__ == "__main__":
    main()
