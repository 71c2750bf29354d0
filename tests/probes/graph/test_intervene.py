"""Interventions: with attention and norms held, ablating a graph feature in the model moves downstream features and
the target logit exactly as the graph's edges (direct) and paths (total) predict; in the live model, closely."""
from __future__ import annotations

import numpy as np
import pytest

from interp import InvalidInput
from probes.graph.intervene import intervention_check, pearson


@pytest.fixture(scope="module")
def check(relu_handle, exact, graph):
    return intervention_check(relu_handle, exact, graph, n_nodes=8, n_targets=20)


@pytest.mark.parametrize("mode", ["frozen_direct", "frozen_total"])
def test_frozen_interventions_equal_the_graphs_prediction(check, mode):
    np.testing.assert_allclose(check.logit_meas[mode], check.logit_pred[mode], atol=1e-4, rtol=1e-3)
    np.testing.assert_allclose(check.feat_meas[mode], check.feat_pred[mode], atol=1e-4, rtol=1e-3)
    assert len(check.feat_pred[mode]) >= 5 and max(map(abs, check.logit_pred[mode])) > 1e-2  # not all zeros


def test_direct_and_total_predictions_differ(check):
    """Paths through layer-1 features matter for the logit, so the two checks test different things."""
    assert not np.allclose(check.logit_pred["frozen_direct"], check.logit_pred["frozen_total"], atol=1e-3)


def test_the_live_model_follows_the_graph(check):
    assert check.r_logit["model"] > 0.8 and check.r_features["model"] > 0.8


def test_steering_scales_the_prediction(relu_handle, exact, graph, check):
    steer = intervention_check(relu_handle, exact, graph, n_nodes=8, n_targets=20, factor=3.0,
                               modes=("frozen_total",))
    np.testing.assert_allclose(steer.logit_pred["frozen_total"], -2.0 * np.array(check.logit_pred["frozen_total"]),
                               atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(steer.logit_meas["frozen_total"], steer.logit_pred["frozen_total"], atol=1e-4)


def test_bad_requests(relu_handle, exact, graph):
    with pytest.raises(InvalidInput, match="Target logit"):
        intervention_check(relu_handle, exact, graph, target=99)
    with pytest.raises(InvalidInput, match="finite"):
        intervention_check(relu_handle, exact, graph, factor=float("inf"))


def test_pearson_is_nan_without_variance():
    assert np.isnan(pearson([1, 1, 1], [1, 2, 3])) and np.isnan(pearson([1, 2], [1, 2]))
    assert pearson([1, 2, 3], [2, 4, 7]) > 0.98


def test_route_share_cuts_exact_paths(relu_handle, exact, graph):
    """Cutting every head's reading of a position removes exactly that position's total effect in the graph; cutting
    all heads through the heads list gives the same number; an empty list gives none."""
    import torch

    from probes.graph.intervene import attention_route_share
    from probes.graph.prune import total_effects

    tokens = torch.tensor([graph.tokens])
    tok, pos = graph.logit_tokens[0], 2
    every = [(la, h) for la in range(relu_handle.info.n_layers) for h in range(relu_handle.info.n_heads)]
    full = attention_route_share(relu_handle, exact, tokens, pos, every, tok)
    assert full.through_heads == pytest.approx(full.through_all, abs=1e-5) and full.share == pytest.approx(1.0)
    none = attention_route_share(relu_handle, exact, tokens, pos, [], tok)
    assert none.through_heads == pytest.approx(0.0, abs=1e-6) and none.through_all == pytest.approx(full.through_all)
    # the graph's path sums from the nodes at that position (embedding, features, errors) are the same effect
    logit = graph.slice_of("logit").start
    eff = total_effects(graph.adjacency, torch.tensor(graph.activation, dtype=torch.float32), logit,
                        graph.count("feature"))
    at_pos = [i for i in range(graph.n_nodes) if graph.pos[i] == pos and graph.kind[i] != "logit"]
    assert abs(full.through_all) > 1e-3
    assert float(eff[at_pos].sum()) == pytest.approx(full.through_all, rel=0.02, abs=1e-3)
    with pytest.raises(InvalidInput):
        attention_route_share(relu_handle, exact, tokens, len(graph.tokens) - 1, every, tok)
