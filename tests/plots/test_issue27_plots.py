"""Colour scales with a natural range stay fixed and mark outliers; long titles wrap; toy arrows are labelled."""
from __future__ import annotations

import numpy as np

from plots.common import base_layout, wrap_title


def test_normalised_effects_use_a_fixed_scale_and_mark_outliers():
    from plots.patching import OUTLIER_NAME, head_effect_heatmap, layer_pos_heatmap

    values = np.array([[0.2, -3.15], [2.13, 0.5]])
    fig = head_effect_heatmap(values, "t")
    heat = fig.data[0]
    assert (heat.zmin, heat.zmax) == (-1.0, 1.0)
    marks = [t for t in fig.data if t.name == OUTLIER_NAME][0]
    assert sorted(zip(marks.x, marks.y)) == [(0, 1), (1, 0)] and list(marks.customdata) == ["0.1", "1.0"]
    raw = head_effect_heatmap(np.array([[0.001, -0.002]]), "t", normalised=False, floor=0.05)
    assert raw.data[0].zmax == 0.05 and not [t for t in raw.data if t.name == OUTLIER_NAME]  # noise stays pale
    fig = layer_pos_heatmap(values, ["a", "\n    "], "t")
    assert fig.data[0].zmax == 1.0 and "1: ↵····" in fig.layout.xaxis.ticktext


def test_long_titles_wrap_and_the_margin_grows():
    long = "Ablation effect (mean): rise of the repeated copy's loss (tokens L+2..2L), > 0 = head helped copying"
    wrapped = wrap_title(long)
    assert "<br>" in wrapped and all(len(line) <= 56 for line in wrapped.split("<br>"))
    assert wrapped.replace("<br>", " ") == long
    import plotly.graph_objects as go

    fig = base_layout(go.Figure(), long)
    assert fig.layout.margin.t >= 80 and fig.layout.template.layout.plot_bgcolor  # template still applied


def test_superposition_arrows_are_labelled():
    from plots.superposition import columns_2d

    W = np.array([[1.0, 0.0, -0.5, 0.0, 0.01], [0.0, 1.0, 0.5, -1.0, 0.0]])
    fig = columns_2d([W], ["x"], [np.ones(5)])
    labels = [t.text[1] for t in fig.data if t.text is not None]
    assert labels == ["f0", "f1", "f2", "f3", "f4"]


def test_probability_figures_use_zero_to_one():
    from plots.features import steering_figure
    from plots.interventions import before_after_figure

    assert tuple(before_after_figure(["a"], [0.1], [0.2], "t").layout.yaxis.range) == (0, 1)
    assert tuple(steering_figure(["a"], np.array([0.1]), np.array([0.2]), 3, 2.0).layout.yaxis.range) == (0, 1)
