"""Attention extraction and per-token scores, checked against hand-built patterns and a real capture."""
import numpy as np
import pytest

from interp.attention import downsample, prompt_attention, token_scores
from interp.errors import InvalidInput
from plots.attention import pattern_figure, small_multiples_figure


def test_token_scores_row_and_column():
    p = np.tril(np.ones((4, 4))) / np.arange(1, 5)[:, None]  # uniform causal attention
    to, frm = token_scores(p, 2)
    np.testing.assert_allclose(to, [1 / 3, 1 / 3, 1 / 3, 0])
    np.testing.assert_allclose(frm, [0, 0, 1 / 3, 1 / 4])
    with pytest.raises(InvalidInput, match="0..3"):
        token_scores(p, 4)


def test_downsample_block_max():
    p = np.zeros((10, 10))
    p[9, 0] = 0.7
    pooled, block = downsample(p, 4)
    assert block == 3 and pooled.shape == (4, 4)
    assert pooled[3, 0] == pytest.approx(0.7) and pooled.sum() == pytest.approx(0.7)
    same, b1 = downsample(p, 64)
    assert b1 == 1 and same.shape == (10, 10)


def test_prompt_attention_matches_capture(tiny_handle):
    pa = prompt_attention(tiny_handle, "the cat sat on the mat")
    assert pa.patterns.shape[:2] == (2, 4)
    n = len(pa.tokens)
    assert pa.patterns.shape[2:] == (n, n)
    rows = pa.patterns.astype(np.float32).sum(-1)
    np.testing.assert_allclose(rows, 1.0, atol=2e-3)  # softmax rows
    assert np.abs(np.triu(pa.head(1, 3), 1)).max() == 0  # causal
    with pytest.raises(InvalidInput, match="1.4"):
        pa.head(1, 4)


def test_figures_long_prompt_have_no_per_cell_labels():
    p = np.tril(np.ones((300, 300))) / np.arange(1, 301)[:, None]
    fig = pattern_figure(p, [str(i) for i in range(300)], "long")
    assert fig.data[0].customdata is None and fig.data[0].text is None
    sm = small_multiples_figure(np.stack([p] * 3), layer=0, max_size=50)
    assert len(sm.data) == 3 and np.asarray(sm.data[0].z).shape == (50, 50)
