"""Superposition analyses on hand-built W's whose answers are known: polytopes' dimensionalities, phases."""
from __future__ import annotations

import math

import pytest
import torch

from probes.features.superposition import (
    classify_phase,
    column_angles_2d,
    dimensionality,
    dimensions_per_feature,
    feature_angles,
    feature_norms,
    fraction_shares,
    gram,
    interference,
    phase_grid,
    theory_phase,
)


def polygon(k: int) -> torch.Tensor:
    """Regular k-gon of unit columns in 2-D: [2, k]."""
    t = torch.arange(k, dtype=torch.float64) * 2 * math.pi / k
    return torch.stack([t.cos(), t.sin()])


def test_pentagon_dimensionality_angles_and_norms():
    W = polygon(5)
    assert torch.allclose(dimensionality(W), torch.full((5,), 0.4, dtype=W.dtype))
    assert torch.allclose(column_angles_2d(W), torch.full((5,), 72.0, dtype=W.dtype))
    assert torch.allclose(feature_norms(W), torch.ones(5, dtype=W.dtype))
    assert float(dimensions_per_feature(W)) == pytest.approx(2 / 5)
    angles = feature_angles(W)
    assert float(angles[0, 1]) == pytest.approx(72.0) and float(angles[0, 2]) == pytest.approx(144.0)


@pytest.mark.parametrize("W, want", [
    (torch.tensor([[1.0, -1.0]]), [0.5, 0.5]),  # antipodal pair
    (polygon(3), [2 / 3] * 3),  # triangle
    (torch.tensor([[1.0, 1, -1, -1], [1, -1, 1, -1], [1, -1, -1, 1]]) / math.sqrt(3), [3 / 4] * 4),  # tetrahedron
    (torch.tensor([[1.0, 0, 0], [0, 1, 0]]), [1.0, 1.0, 0.0]),  # two own dimensions, one dropped feature
    (torch.tensor([[1.0, -1, 0, 0], [0, 0, 1, -1]]), [0.5] * 4),  # two antipodal pairs (a tegum product)
])
def test_dimensionality_of_known_geometries(W, want):
    assert dimensionality(W.to(torch.float64)).tolist() == pytest.approx(want)


def test_batched_analyses_keep_the_model_axis():
    W = torch.stack([polygon(5), 2 * polygon(5)]).float()  # [2, 2, 5]
    assert dimensionality(W).shape == (2, 5) and torch.allclose(dimensionality(W), torch.full((2, 5), 0.4))
    assert gram(W).shape == (2, 5, 5) and torch.allclose(gram(W)[1].diagonal(), torch.full((5,), 4.0))
    assert interference(torch.tensor([[1.0, 0.0], [0.0, 1.0]])).tolist() == [0.0, 0.0]
    assert interference(torch.tensor([[1.0, -1.0]])).tolist() == [1.0, 1.0]


def test_classify_phase_on_hand_built_models():
    W = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[1.0, -1.0]], [[0.7, 0.7]], [[1.0, 0.1]], [[0.1, 1.1]]])
    assert classify_phase(W) == ["not represented", "own dimension", "superposition", "superposition",
                                 "not represented", "own dimension"]
    with pytest.raises(ValueError):
        classify_phase(torch.zeros(1, 2, 2))


def test_theory_phase_regions_and_boundaries():
    assert theory_phase(0.1, 1.0) == "not represented"
    assert theory_phase(10.0, 1.0) == "own dimension"
    assert theory_phase(0.1, 0.01) == theory_phase(10.0, 0.01) == theory_phase(1.0, 0.05) == "superposition"
    r = 0.5
    edge = 4 * r / (2 + 5 * r)  # superposition below, not represented above
    assert theory_phase(r, edge * 0.99) == "superposition" and theory_phase(r, edge * 1.01) == "not represented"
    r = 4.0
    edge = 4 / (5 + 2 * r)
    assert theory_phase(r, edge * 0.99) == "superposition" and theory_phase(r, edge * 1.01) == "own dimension"


def test_phase_grid_rules_and_agreement():
    # one importance (0.1), two densities (1 -> not represented, 0.01 -> superposition), three restarts each
    sup, drop = [[1.0, -1.0]], [[1.0, 0.0]]
    W = torch.tensor([drop, drop, sup,  # dense cell: majority 'not represented', lowest loss too
                      drop, sup, drop])  # sparse cell: lowest-loss restart is superposition, majority is not
    loss = torch.tensor([0.1, 0.2, 0.3, 0.5, 0.1, 0.4])
    best = phase_grid(W, loss, [0.1], [1.0, 0.01], 3, rule="best")
    assert best.labels == [["not represented", "superposition"]] and best.agreement == 1.0
    maj = phase_grid(W, loss, [0.1], [1.0, 0.01], 3, rule="majority")  # drops the worst: drop(0.5) in cell 2
    assert maj.labels[0][0] == "not represented" and maj.labels[0][1] == "superposition"  # tie -> lowest loss
    W2 = torch.tensor([drop, drop, drop, drop, drop, sup])
    maj2 = phase_grid(W2, loss, [0.1], [1.0, 0.01], 3, rule="majority")
    assert maj2.labels[0][1] == "not represented" and maj2.agreement == 0.5


def test_fraction_shares_counts_features_near_published_fractions():
    D = torch.tensor([0.5, 0.5, 0.4, 0.45, 0.0])
    norms = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0])  # the last feature is dropped and not counted
    shares = fraction_shares(D, norms, tol=0.01)
    assert shares["1/2"] == pytest.approx(0.5) and shares["2/5"] == pytest.approx(0.25)
    assert shares["any"] == pytest.approx(0.75) and 0 < shares["chance"] <= 1
