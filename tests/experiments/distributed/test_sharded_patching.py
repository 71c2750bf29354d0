"""A patching sweep over pairs sharded across Ray workers gives the single-process sweep's numbers."""
from __future__ import annotations

import pytest
import torch

from experiments.distributed.patching import sharded_run_sweeps, shards_of
from interp.errors import InvalidInput
from probes.patching.activation import run_sweeps
from tasks.pairs import repeated_sequence_pairs

pytestmark = pytest.mark.slow  # starts (or joins) a Ray cluster


def test_sharded_sweep_equals_the_single_process_sweep(ray_cluster, tiny_handle, tiny_gpt2_dir):
    batch = repeated_sequence_pairs(tiny_handle, 11, 6, seed=3)  # 11 pairs in shards of 4, 4, 3
    kinds = ("head_out", "resid_pre")
    one = run_sweeps(tiny_handle, batch, kinds)
    many = sharded_run_sweeps(str(tiny_gpt2_dir), batch, kinds, shard_size=4, workers=2)
    for kind in kinds:
        assert many[kind].values.shape == one[kind].values.shape  # [*cells, batch]
        torch.testing.assert_close(many[kind].values, one[kind].values, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(many[kind].clean, one[kind].clean, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(many[kind].normalised(), one[kind].normalised(), rtol=1e-5, atol=1e-5)
        assert many[kind].pos_labels == one[kind].pos_labels and many[kind].axes == one[kind].axes
    assert float(one["head_out"].normalised().abs().max()) > 0  # not a vacuous equality of zeros


def test_shards_cover_the_pairs_in_order(tiny_handle):
    batch = repeated_sequence_pairs(tiny_handle, 5, 4, seed=0)
    parts = shards_of(batch, 2)
    assert [len(p) for p in parts] == [2, 2, 1]
    assert torch.equal(torch.cat([p.clean for p in parts]), batch.clean)
    with pytest.raises(InvalidInput, match="shard_size"):
        shards_of(batch, 0)
