"""Activation-patching sweeps over a large pair dataset, sharded across Ray workers: the same numbers as
``probes.patching.activation.run_sweeps`` on the whole batch, in less wall time where there are cores to spare.

Every patched cell's metric is per pair and pairs do not interact (each row is its own forward), so the pairs
are cut into contiguous shards, each shard's sweeps run on a Ray actor that loaded the model once, and the
per-pair values, clean and corrupted metrics are concatenated back in order. Normalised effects are then means
over all pairs, exactly as for one process. Ray's ``ActorPool`` hands the shards out; nothing is scheduled here.
"""
from __future__ import annotations

from typing import Any

import torch

from experiments.distributed.cluster import connected
from interp.errors import InvalidInput
from probes.patching.activation import PatchMetric, SweepResult
from tasks.pairs import PairBatch


class ShardWorker:
    """A Ray actor: one model, loaded once, sweeping the shards it is handed with ``threads`` torch threads."""

    def __init__(self, model: str, threads: int) -> None:
        from interp import load_model

        torch.set_num_threads(threads)  # Ray sets OMP_NUM_THREADS only; torch reads its own setting
        self.handle = load_model(model)

    def sweeps(self, batch: PairBatch, kinds: tuple[str, ...], metric: PatchMetric, max_rows: int
               ) -> dict[str, SweepResult]:
        from probes.patching.activation import run_sweeps

        return run_sweeps(self.handle, batch, kinds, metric=metric, max_rows=max_rows)


def shards_of(batch: PairBatch, shard_size: int) -> list[PairBatch]:
    """Contiguous shards of at most ``shard_size`` pairs, in order."""
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise InvalidInput(f"shard_size={shard_size!r} is invalid: expected a whole number >= 1.")
    n = len(batch)
    return [batch.select(range(i, min(n, i + shard_size))) for i in range(0, n, shard_size)]


def merge(parts: list[dict[str, SweepResult]]) -> dict[str, SweepResult]:
    """Shards' sweep results as one: per-pair values, clean and corrupted metrics concatenated in shard order."""
    out = {}
    for kind, first in parts[0].items():
        rs = [p[kind] for p in parts]
        out[kind] = SweepResult(first.kind, first.axes, torch.cat([r.values for r in rs], dim=-1),  # [*cells, batch]
                                torch.cat([r.clean for r in rs]), torch.cat([r.corrupted for r in rs]),
                                first.metric, first.pos_labels)
    return out


def sharded_run_sweeps(model: str, batch: PairBatch, kinds: tuple[str, ...], *, metric: PatchMetric = "logit_diff",
                       shard_size: int = 64, workers: int = 2, cpus_per_worker: int = 1, max_rows: int = 256,
                       address: str | None = None) -> dict[str, SweepResult]:
    """``run_sweeps`` of ``model`` (a name or directory every worker can load) over ``batch``, in shards of
    ``shard_size`` pairs spread over ``workers`` Ray actors (a local cluster unless ``address``)."""
    import ray
    from ray.util import ActorPool

    for name, v in (("workers", workers), ("cpus_per_worker", cpus_per_worker)):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 4096:
            raise InvalidInput(f"{name}={v!r} is invalid: expected a whole number in 1 .. 4096.")
    shards = shards_of(batch, shard_size)
    with connected(address):
        actor = ray.remote(ShardWorker).options(num_cpus=cpus_per_worker)
        actors = [actor.remote(model, cpus_per_worker) for _ in range(min(workers, len(shards)))]
        try:
            parts: list[Any] = list(ActorPool(actors).map(lambda a, b: a.sweeps.remote(b, kinds, metric, max_rows),
                                                          shards))
        finally:
            for a in actors:  # free their CPUs now, also on a cluster that outlives this call
                ray.kill(a)
    return merge(parts)
