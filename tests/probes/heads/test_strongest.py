"""The strongest head on a prompt: the head whose tokens read one other earlier token most sharply (not the first
token, not themselves), with a sentence saying why; planted patterns pick the planted head."""
from __future__ import annotations

import numpy as np
import pytest

from interp import InvalidInput
from interp.types import Head
from probes.heads.strongest import sharpness, strongest_head


def _resting(n_layers: int = 2, n_heads: int = 3, n: int = 8) -> np.ndarray:
    """Every head puts all attention on the first token (BOS)."""
    p = np.zeros((n_layers, n_heads, n, n), dtype=np.float32)
    p[..., 0] = 1.0
    return p


def test_a_planted_previous_token_head_is_chosen_and_named():
    p = _resting()
    n = p.shape[-1]
    p[1, 2] = 0.0
    p[1, 2, 0, 0] = 1.0
    for q in range(1, n):
        p[1, 2, q, q - 1] = 1.0
    p[0, 1] = np.eye(n)  # a self-attending head: sharp, but moves nothing between positions
    best = strongest_head(p)
    assert best.head == Head(1, 2) and best.score > 0.99
    assert "previous-token head" in best.why and "1.2" in best.why
    assert sharpness(p)[0, 1] == 0.0 and sharpness(p)[0, 0] == 0.0


def test_an_induction_like_head_beats_a_diffuse_one():
    p = _resting(1, 2, 9)
    n = 9
    p[0, 0] = np.tril(np.ones((n, n))) / np.arange(1, n + 1)[:, None]  # uniform over the past
    p[0, 1] = 0.0
    p[0, 1, :, 0] = 1.0
    for q in range(5, n):  # second half reads the token after its earlier copy
        p[0, 1, q] = 0.0
        p[0, 1, q, q - 3] = 1.0
    best = strongest_head(p)
    assert best.head == Head(0, 1) and "previous-token" not in best.why


def test_too_short_prompts_fall_back_to_head_0_0_and_say_why():
    best = strongest_head(_resting(n=2))
    assert best.head == Head(0, 0) and best.score == 0.0 and "too short" in best.why


def test_bad_shapes_are_clear_errors():
    with pytest.raises(InvalidInput, match="layer, head, query, key"):
        strongest_head(np.zeros((2, 3, 4)))
