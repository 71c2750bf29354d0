"""Attribution-graph time against its floor and a naive loop, and transcoder training against the matmul floor.

1. Graph: ``probes.graph.attribution.attribute`` on a prompt of ``--tokens`` tokens, in forward-pass equivalents
   (one plain forward pass of the prompt), against
   - the floor: the passes it must do, timed here on the same frozen set-up: one forward pass of ``batch_size``
     copies plus one backward pass per batch of targets (``ceil((features + logits) / batch_size)``);
     target: the graph within 2x of it;
   - a naive loop: one forward pass of the prompt, then one backward pass per target node through the same code
     (its edges read off as in the batched run), timed on a sample of nodes and scaled to every target.
2. Transcoder training: tokens/s of ``training.transcoder.train_transcoder`` (TopK, per-layer and cross-layer) on
   activations held in memory; the floor is the FLOPs of the encoders and decoders, forward and backward
   (6 x tokens x d_model x d_transcoder x (encoder blocks + decoder blocks)), at the GEMM rate measured here.
   Ratio = floor time / measured time (target >= 0.5, as benchmarks/bench_sae.py reports for the SAE trainer).

Uses the bundled per-layer transcoder of the model when there is one, else a random TopK set of the same shape
(timing depends on the number of active features, not on what they mean).
Run: ``.venv/bin/python benchmarks/bench_graph.py [--quick]`` (quick: a short prompt, few features, two steps).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.timing import best_of  # noqa: E402
from interp import load_model  # noqa: E402
from learned.transcoder import Transcoder, TranscoderConfig  # noqa: E402
from learned.transcoder_files import list_transcoders, read_transcoder_dir  # noqa: E402
from probes.graph.attribution import GraphSettings, _Backward, _clean, _Columns, attribute  # noqa: E402
from training.transcoder import TranscoderTrainSettings, train_transcoder  # noqa: E402

PROMPT = ("import os\n\ndef read_config(path, default=None):\n    if not os.path.exists(path):\n"
          "        return default\n    with open(path) as f:\n        return f.read()\n")


class Held:
    """MLP inputs and outputs already in memory (so the transcoder step alone is timed)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, rows: int):
        self.x, self.y, self.rows = x, y, rows
        self.n_layers, self.d_model = x.shape[1], x.shape[2]

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = (step * self.rows) % max(1, self.x.shape[0] - self.rows)
        return self.x[start:start + self.rows], self.y[start:start + self.rows]


def transcoder_for(handle, k: int, expansion: int) -> tuple[Transcoder, str]:
    found = [p for p in list_transcoders(handle.info.name) if p.name.startswith("plt")]
    if found:
        return read_transcoder_dir(found[0]), found[0].name
    i = handle.info
    return Transcoder(TranscoderConfig("per_layer", i.n_layers, i.d_model, expansion * i.d_model, k=k)), "random"


def bench_graph(handle, tokens: int, batch: int, max_features: int, k: int, expansion: int, sample: int) -> dict:
    tc, name = transcoder_for(handle, k, expansion)
    ids = handle.tokenizer(PROMPT * 4, add_special_tokens=False)["input_ids"][: tokens - 1]
    prompt = torch.tensor([[handle.bos_token_id, *ids]])
    settings = GraphSettings(batch_size=batch, max_feature_nodes=max_features)
    t_fwd = best_of(lambda: handle.logits(prompt), 3)
    t0 = time.perf_counter()
    g = attribute(handle, tc, prompt, settings)
    t_graph = time.perf_counter() - t0
    n_targets = g.count("feature") + g.count("logit")
    n_batches = math.ceil(g.count("feature") / batch) + math.ceil(g.count("logit") / batch)
    pr = _clean(handle, tc, prompt)
    active = (pr.acts > 0).nonzero()
    cols = _Columns(tc, pr, active[:, 1], active[:, 0], active[:, 2], pr.acts[active[:, 0], active[:, 1], active[:, 2]])
    t0 = time.perf_counter()
    bw = _Backward(handle, tc, pr, batch, cols)
    t_fwd_b = time.perf_counter() - t0

    def one_backward(b: _Backward) -> None:
        metric = sum((b.reads[s] * torch.randn_like(b.reads[s])).sum() for s in b.inputs)
        torch.autograd.grad(metric, b.leaves, retain_graph=True, allow_unused=True)

    t_bwd_b = best_of(lambda: one_backward(bw), 3)
    floor = t_fwd_b + n_batches * t_bwd_b
    t0 = time.perf_counter()
    single = _Backward(handle, tc, pr, 1, cols)
    t_fwd_1 = time.perf_counter() - t0
    enc = tc.W_enc.detach()
    targets = [("feature", int(cols.feat_layer[i]), int(cols.feat_pos[i]),
                enc[int(cols.feat_layer[i]), :, int(cols.feat_idx[i])].float())
               for i in torch.randperm(len(cols.feat_idx), generator=torch.Generator().manual_seed(0))[:sample]]
    t0 = time.perf_counter()
    for t in targets:  # the same code path, one node per backward pass
        single.rows([t])
    t_node = (time.perf_counter() - t0) / max(1, len(targets))
    naive = t_fwd_1 + n_targets * t_node
    return {"transcoder": name, "tokens": prompt.shape[1], "features": g.count("feature"), "targets": n_targets,
            "batches": n_batches, "t_graph": t_graph, "t_forward": t_fwd, "forward_equivalents": t_graph / t_fwd,
            "floor": floor, "ratio_to_floor": t_graph / floor, "naive": naive, "speedup_vs_naive": naive / t_graph}


def bench_training(handle, kind: str, rows: int, steps: int, k: int, expansion: int) -> dict:
    i = handle.info
    d, f, L = i.d_model, expansion * i.d_model, i.n_layers
    n_dec = L if kind == "per_layer" else L * (L + 1) // 2
    a, b = torch.randn(rows, d), torch.randn(d, f)
    t_gemm = best_of(lambda: a @ b, 5)
    rate = 2 * rows * d * f / t_gemm
    x, y = torch.randn(rows * 3, L, d), torch.randn(rows * 3, L, d)
    s = TranscoderTrainSettings(kind=kind, d_transcoder=f, k=k, steps=steps, log_every=max(1, steps),
                                scale_batches=1, dead_tokens=rows)
    src = Held(x, y, rows)
    train_transcoder(src, TranscoderTrainSettings(kind=kind, d_transcoder=f, k=k, steps=1, scale_batches=1),
                     log=None)  # warm-up
    t0 = time.perf_counter()
    train_transcoder(src, s, log=None)
    t_step = (time.perf_counter() - t0) / steps
    floor = 6 * rows * d * f * (L + n_dec) / rate
    return {"kind": kind, "gemm_gflops": rate / 1e9, "tokens_per_s": rows / t_step, "ms_per_step": t_step * 1e3,
            "floor_ms": floor * 1e3, "ratio": floor / t_step}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="code-gpt2")
    ap.add_argument("--quick", action="store_true", help="a short prompt, few features, two training steps")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    handle = load_model(args.model)
    if args.quick:
        g = bench_graph(handle, tokens=8, batch=16, max_features=48, k=8, expansion=2, sample=4)
        tr = [bench_training(handle, kind, rows=256, steps=2, k=8, expansion=2) for kind in ("per_layer",)]
    else:
        g = bench_graph(handle, tokens=32, batch=64, max_features=0, k=32, expansion=8, sample=64)
        tr = [bench_training(handle, kind, rows=2048, steps=5, k=32, expansion=8)
              for kind in ("per_layer", "cross_layer")]
    print(f"Graph of a {g['tokens']}-token prompt ({g['transcoder']} transcoder): {g['features']} features, "
          f"{g['targets']} targets in {g['batches']} batches: {g['t_graph']:.2f} s = {g['forward_equivalents']:.0f} "
          f"forward passes of the prompt; floor (1 batched forward + {g['batches']} backward passes) "
          f"{g['floor']:.2f} s -> {g['ratio_to_floor']:.2f}x the floor (target <= 2x); naive one backward per node "
          f"{g['naive']:.1f} s -> {g['speedup_vs_naive']:.1f}x faster")
    for t in tr:
        print(f"Transcoder training ({t['kind']}): {t['tokens_per_s']:,.0f} tokens/s, {t['ms_per_step']:.0f} ms/step; "
              f"matmul floor {t['floor_ms']:.0f} ms/step at {t['gemm_gflops']:.1f} GFLOP/s -> {t['ratio']:.2f} of the "
              "floor (target >= 0.5)")
    return {"graph": g, "training": tr}


if __name__ == "__main__":
    main()
