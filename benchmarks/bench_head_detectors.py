"""All-head induction / previous-token / duplicate scoring on a GPT-2-small-shape model (random weights, real
GPT-2 tokenizer), 10 prompts: ours (one batched capture of hook_pattern, scores by tensor ops) vs TransformerLens's
``head_detector.detect_head`` (one full-cache forward per prompt and per head type, a Python loop over heads),
and vs one plain bridge forward over the same tokens. All measured in this run, on this machine.

Targets (issue 3): >= 20x faster than head_detector; the whole scan within 1.3x of one plain forward.

    python benchmarks/bench_head_detectors.py [--reps 3] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.timing import add_quick, best_of, save_gpt2  # noqa: E402
from interp.backends.bridge import bridge_of  # noqa: E402

TOKENIZER = ROOT.parent / "shared" / "fixtures" / "gpt2-tokenizer"


def prompts(n: int = 10, words: int = 30) -> list[str]:
    """``n`` prompts, each a run of stdlib source words written twice (text with a repeated segment)."""
    import random

    text = (Path(os.__file__).parent / "collections" / "__init__.py").read_text().split()
    rng = random.Random(0)
    out = []
    for _ in range(n):
        start = rng.randrange(0, len(text) - words)
        seg = " ".join(text[start : start + words])
        out.append(f"{seg} {seg}")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    add_quick(ap)
    args = ap.parse_args(argv)
    if args.quick:
        args.reps = 1
    import torch

    torch.set_num_threads(args.threads)
    os.environ["HF_HUB_OFFLINE"] = "1"
    from transformer_lens.head_detector import detect_head

    import interp
    from probes.heads.detectors import detector_scores

    if not (TOKENIZER / "vocab.json").is_file() and not args.quick:
        sys.exit(f"GPT-2 tokenizer fixture missing at {TOKENIZER}")
    with tempfile.TemporaryDirectory() as tmp:
        handle = interp.load_model(save_gpt2(Path(tmp), quick=args.quick))
    ps = prompts(2, 8) if args.quick else prompts()
    batch = interp.tokenize(handle, ps)
    n_tok = int(batch.lengths.sum())
    names = {"prev_token": "previous_token_head", "duplicate": "duplicate_token_head", "induction": "induction_head"}

    def ours():
        return detector_scores(handle, ps)

    def tl():
        return {k: detect_head(bridge_of(handle), ps, v) for k, v in names.items()}

    def plain():
        handle.logits(batch)

    # same numbers first (padding differs from TL's per-prompt passes only in which tokens are real)
    a, b = ours(), tl()
    diff = max(float((a[k] - b[k].float()).abs().max()) for k in names)
    t_plain = best_of(plain, args.reps)
    t_ours = best_of(ours, args.reps)
    t_tl = best_of(tl, 1, warm=False)  # already warm from the equality check; 30 passes, slow
    what = "quick mode (a toy GPT-2)" if args.quick else "GPT-2-small shape (12 x 12 heads, random weights)"
    print(f"{what}, {len(ps)} prompts, {n_tok} tokens "
          f"(padded batch {tuple(batch.tokens.shape)}), {args.threads} threads, best of {args.reps}")
    n_heads = handle.info.n_layers * handle.info.n_heads
    print(f"max |ours - head_detector| over 3 x {n_heads} scores: {diff:.2e}")
    print()
    print(f"| {'method':<58} | {'seconds':>8} | {'vs ours':>8} |")
    print(f"|{'-' * 60}|{'-' * 10}|{'-' * 10}|")
    rows = [("TL head_detector.detect_head x 3 head types (per prompt)", t_tl),
            ("ours: detector_scores (1 batched pattern capture, early stop)", t_ours),
            ("plain bridge forward over the same batch (no cache)", t_plain)]
    for name, t in rows:
        print(f"| {name:<58} | {t:8.3f} | {t / t_ours:7.2f}x |")
    print()
    print(f"speed-up over head_detector: {t_tl / t_ours:.1f}x (target >= 20x)")
    print(f"scan / plain forward: {t_ours / t_plain:.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
