"""Information-flow routes: importances into every node sum to 1; on attn-only-2l the route of a repeated token runs
through the induction head 1.2 from the token after its earlier occurrence, fed by previous-token head 0.3."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from interp import InvalidInput, load_model
from probes.graph.routes import contribution_graph, importance

REPEAT = "t5 t17 t3 t9 t11 t5 t17 t3"  # position 8 is t3 again; its first occurrence is 3, followed by t9 at 4


@pytest.fixture(scope="module")
def induction():
    return contribution_graph(load_model("attn-only-2l"), REPEAT)


def test_importances_into_each_node_sum_to_one(induction, tiny_handle):
    g = induction
    n = len(g.str_tokens)
    total = g.attn.sum(axis=(1, 3)) + g.attn_residual  # [layer, query]
    np.testing.assert_allclose(total, np.ones((g.n_layers, n)), atol=1e-5)
    assert not g.has_mlp
    gpt = contribution_graph(tiny_handle, "the cat sat on the mat")
    assert gpt.has_mlp
    np.testing.assert_allclose(gpt.mlp + gpt.mlp_residual, 1.0, atol=1e-5)
    for e in gpt.route(threshold=0.01):
        assert 0 <= e.weight <= 1 and (e.kind != "attn" or abs(sum(e.heads) - e.weight) < 1e-5)


def test_the_route_of_a_repeated_token_runs_through_the_induction_head(induction):
    edges = {(e.source, e.target): e for e in induction.route()}
    ind = edges[(("resid", 1, 4), ("mid", 1, 8))]  # layer 1 reads the token after the earlier t3
    assert ind.kind == "attn" and int(np.argmax(ind.heads)) == 2
    prev = edges[(("resid", 0, 3), ("mid", 0, 4))]  # which layer 0 moved from t3 to t9's position
    assert int(np.argmax(prev.heads)) == 3
    assert (("resid", 1, 3), ("mid", 1, 8)) not in edges  # not the earlier t3 itself


def test_a_higher_threshold_keeps_a_subset(induction):
    low = {(e.source, e.target) for e in induction.route(threshold=0.02)}
    high = {(e.source, e.target) for e in induction.route(threshold=0.2)}
    assert high < low and high


def test_importance_is_alti_proximity():
    parts = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    whole = parts.sum(0)  # [0, 1]: the middle part is all of it, the others cancel
    imp = importance(parts, whole)
    assert float(imp[1]) == pytest.approx(1.0) and float(imp[0]) == float(imp[2]) == 0.0


@pytest.mark.parametrize("kw", [{"position": 99}, {"position": -1}, {"threshold": 0.0}, {"threshold": 2.0},
                                {"position": 1.5}])
def test_bad_route_requests(induction, kw):
    with pytest.raises(InvalidInput):
        induction.route(**kw)
