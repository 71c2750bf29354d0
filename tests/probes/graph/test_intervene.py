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
