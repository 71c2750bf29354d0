"""Probe benchmarks, baseline and thing measured in the same run:

1. Fitting a 3-class linear probe on 100k x 768 activations: this engine (torch L-BFGS, float32) vs
   scikit-learn's StandardScaler + LogisticRegression (lbfgs) with the same L2 penalty on the same raw
   activations, both standardising inside the timed fit and stopping at the same gradient tolerance; time and
   test accuracy. scikit-learn is a benchmark-only dependency (not in requirements.txt): without it the row is
   skipped. Target: >= 3x faster at accuracy within 0.5 points.
2. Capture throughput on the Othello dataset: streaming every layer's residual stream to disk
   (interp.streaming) vs a plain forward pass over the same games. Target: >= 0.9x.

Both sides run on one CPU thread (``--threads`` to change). Usage: python benchmarks/bench_probes.py [--rows N]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.timing import add_quick  # noqa: E402


def planted_data(n: int, d: int, k: int, seed: int = 0):
    """Rows from a softmax model with a known weight matrix (Bayes accuracy < 100%)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=(d, k)) * 1.5 / np.sqrt(d)
    logits = x @ w
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = (p.cumsum(1) > rng.random((n, 1))).argmax(1)
    return x, y


def bench_fit(rows: int, l2: float) -> list[tuple[str, float, float]]:

    from probes.probing.linear import evaluate, fit_logistic, split_indices

    x, y = planted_data(rows, 768, 3)
    split = split_indices(rows, seed=0)
    out = []
    fit_logistic(x[:2000], y[:2000], split_indices(2000, seed=0), l2_grid=(l2,), max_iter=5)  # warm-up: imports
    t0 = time.perf_counter()
    probe = fit_logistic(x, y, split, l2_grid=(l2,), max_iter=1000, tol=1e-4)  # standardises inside
    t_ours = time.perf_counter() - t0
    out.append(("this engine (torch L-BFGS, fp32)", t_ours, evaluate(probe, x, y, split.test)["accuracy"]))
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        print("scikit-learn is not installed: skipping its row (pip install scikit-learn; benchmark-only dependency)")
        return out
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n_train = len(split.train)
    # ours: mean CE + l2 * |w|^2  ==  sklearn: C * sum CE + 0.5 * |w|^2  with C = 1 / (2 * l2 * n_train);
    # both standardise the features inside the timed fit and stop at max |gradient| < 1e-4 (sklearn's default)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0 / (2 * l2 * n_train), max_iter=1000, tol=1e-4))
    with warnings.catch_warnings():  # the warm-up stops early on purpose
        warnings.simplefilter("ignore")
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=5)).fit(x[:2000], y[:2000])
    t0 = time.perf_counter()
    clf.fit(x[split.train], y[split.train])
    t_sk = time.perf_counter() - t0
    out.append(("sklearn StandardScaler + LogisticRegression lbfgs", t_sk,
                float((clf.predict(x[split.test]) == y[split.test]).mean())))
    return out


def bench_capture(n_games: int) -> tuple[float, float, int]:
    import torch

    from interp import load_model
    from interp.streaming import stream_activations
    from tasks.othello import random_games

    name = "othello-gpt" if (ROOT / "models" / "othello-gpt" / "config.json").is_file() else None
    if name is None:
        from experiments.builds.train_othello_gpt import othello_gpt, othello_tokenizer
        from interp.toy_models import save_hf_dir

        name = str(save_hf_dir(othello_gpt(6, 128, 4), othello_tokenizer(), tempfile.mkdtemp(prefix="othello-")))
    handle = load_model(name)
    tokens = torch.from_numpy(random_games(n_games, seed=5).tokens()[:, :59])
    hooks = ["blocks.0.hook_resid_pre"] + [f"blocks.{i}.hook_resid_post" for i in range(handle.info.n_layers)]
    bs = 100

    def plain():
        with torch.no_grad():
            for i in range(0, n_games, bs):
                handle.logits(tokens[i:i + bs])

    plain()  # warm-up
    t0 = time.perf_counter()
    plain()
    t_plain = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        stream_activations(handle, tokens, hooks, Path(tmp) / "acts", positions="all", batch_size=bs)
        t_stream = time.perf_counter() - t0
    return t_plain, t_stream, len(hooks)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--l2", type=float, default=1e-4)
    ap.add_argument("--games", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    add_quick(ap)
    args = ap.parse_args(argv)
    if args.quick:
        args.rows, args.games = 3000, 20
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    rows = bench_fit(args.rows, args.l2)
    print(f"\nProbe fit: {args.rows:,} x 768 activations, 3 classes, L2 {args.l2}, {args.threads} thread(s)")
    print(f"| {'method':<46} | {'seconds':>8} | {'test acc':>8} | {'speed-up':>8} |")
    print(f"|{'-' * 48}|{'-' * 10}|{'-' * 10}|{'-' * 10}|")
    base = rows[-1][1]
    for name, secs, acc in rows:
        print(f"| {name:<46} | {secs:8.2f} | {acc:8.4f} | {base / secs:7.2f}x |")
    if len(rows) == 2:
        print(f"accuracy difference: {100 * (rows[0][2] - rows[1][2]):+.2f} points (target within 0.5); "
              f"speed-up {rows[1][1] / rows[0][1]:.2f}x (target >= 3x)")
    t_plain, t_stream, n_hooks = bench_capture(args.games)
    tok = args.games * 59
    print(f"\nOthello capture: {args.games:,} games x 59 moves, {n_hooks} residual hooks streamed to disk")
    print(f"| {'method':<46} | {'seconds':>8} | {'tokens/s':>9} | {'ratio':>6} |")
    print(f"|{'-' * 48}|{'-' * 10}|{'-' * 11}|{'-' * 8}|")
    print(f"| {'plain forward pass':<46} | {t_plain:8.2f} | {tok / t_plain:9.0f} | {1:5.2f}x |")
    print(f"| {'stream_activations (all layers -> .npy)':<46} | {t_stream:8.2f} | {tok / t_stream:9.0f} | "
          f"{t_plain / t_stream:5.2f}x |")
    print("target: streaming throughput >= 0.9x of the plain forward pass")


if __name__ == "__main__":
    main()
