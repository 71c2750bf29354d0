"""What the benchmarks share: the one timer (best wall time of ``reps`` calls), the ``--quick`` switch every
benchmark has (tiny sizes, one repetition: the test suite runs each quick mode so no benchmark rots unseen; its
numbers mean nothing), and the GPT-2-shape model they time on."""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKENIZER = ROOT.parent / "shared" / "fixtures" / "gpt2-tokenizer"
#: The quick mode's model: GPT-2's architecture at toy size (2 layers x 4 heads, d_model 64).
QUICK_GPT2 = {"n_layer": 2, "n_head": 4, "n_embd": 64, "n_positions": 256}


def best_of(fn: Callable[[], object], reps: int, warm: bool = True) -> float:
    """Seconds of the fastest of ``reps`` calls of ``fn``: the least-disturbed run on a shared machine."""
    if warm:
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def add_quick(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes and one repetition: checks the benchmark runs (the test suite's mode); "
                         "the numbers mean nothing")


def gpt2_tokenizer():
    """The real GPT-2 tokenizer when the fixture exists, else a small BPE (timing depends on the vocabulary size,
    so the full benchmarks say which one they used)."""
    if (TOKENIZER / "vocab.json").is_file():
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(TOKENIZER))
    from interp.toy_models import train_bpe_tokenizer

    return train_bpe_tokenizer(["benchmark text with some words in it"] * 20, vocab_size=300)


def save_gpt2(out: Path, quick: bool = False) -> Path:
    """A random-weights GPT-2 saved at ``out``: ``GPT2Config()`` defaults (GPT-2 small's shape), or
    :data:`QUICK_GPT2` with ``quick``; the tokenizer of :func:`gpt2_tokenizer`."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from interp.toy_models import save_hf_dir

    tok = gpt2_tokenizer()
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tok), **QUICK_GPT2) if quick else GPT2Config(vocab_size=max(len(tok), 50257))
    return save_hf_dir(GPT2LMHeadModel(cfg).eval(), tok, out)
