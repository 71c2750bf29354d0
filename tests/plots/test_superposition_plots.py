"""Superposition figures: each builds from plain results and shows what its docstring says."""
from __future__ import annotations

import math

import numpy as np
import torch

from plots.superposition import columns_2d, dimensionality_plot, norms_and_gram, phase_diagram
from probes.features.superposition import PUBLISHED_FRACTIONS, phase_grid

PENTAGON = np.stack([np.cos(np.arange(5) * 2 * math.pi / 5), np.sin(np.arange(5) * 2 * math.pi / 5)])


def test_columns_2d_draws_one_line_per_feature_per_panel():
    fig = columns_2d([PENTAGON, PENTAGON[:, :2]], ["a", "b"], [np.ones(5), np.ones(2)])
    assert len(fig.data) == 7
    assert list(fig.data[1].x) == [0, PENTAGON[0, 1]] and list(fig.data[1].y) == [0, PENTAGON[1, 1]]
    assert fig.layout.yaxis.scaleanchor == "x"  # equal aspect: a regular pentagon looks regular


def test_norms_and_gram_has_bars_and_heatmap_per_model():
    fig = norms_and_gram([PENTAGON, 2 * PENTAGON], ["x", "y"])
    kinds = [t.type for t in fig.data]
    assert kinds == ["bar", "heatmap", "bar", "heatmap"]
    np.testing.assert_allclose(fig.data[2].y, np.full(5, 2.0), atol=1e-6)
    np.testing.assert_allclose(np.asarray(fig.data[1].z), PENTAGON.T @ PENTAGON, atol=1e-6)


def test_phase_diagram_shows_trained_and_theory_panels():
    W = torch.tensor([[[1.0, 0.0]], [[1.0, -1.0]]])
    grid = phase_grid(W, torch.tensor([0.0, 0.0]), [0.1], [1.0, 0.01], 1)
    fig = phase_diagram(grid)
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == 2 and heat[0].z.tolist() == heat[1].z.tolist()  # both cells agree with the theory
    assert "100%" in fig.layout.annotations[0].text


def test_dimensionality_plot_marks_published_fractions():
    fig = dimensionality_plot([1.0, 0.1], [1.0, 0.5], [np.ones(4), np.full(4, 0.5)])
    assert fig.layout.xaxis.type == "log"
    assert sorted(round(s.y0, 4) for s in fig.layout.shapes) == sorted(round(v, 4) for _, v in PUBLISHED_FRACTIONS)
    assert list(fig.data[-1].x) == [1.0, 10.0]  # x is 1/(1-S)
