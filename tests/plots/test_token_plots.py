"""Token figures: thinned ticks at any length, the strip keeps whitespace visible, pickers carry L.H."""
from __future__ import annotations

import numpy as np

from interp.token_display import TokenPiece
from plots.attention_grid import all_heads_figure, head_pattern_figure, layer_heads_figure
from plots.common import layer_head_heatmap
from plots.select import PICKER_NAME, add_head_picker, head_from_points
from plots.tokens import attention_strip_html, thinned_ticks, token_strip_html


def test_ticks_are_thinned_at_any_length_and_hover_keeps_every_token():
    for n in (5, 40, 300, 1024):
        ticks = thinned_ticks([f"{i}" for i in range(n)])
        assert 1 <= len(ticks["tickvals"]) <= 40 and ticks["tickvals"][0] == 0
    fig = head_pattern_figure(np.eye(100, dtype=np.float32), [f"t{i}" for i in range(100)], "p")
    assert len(fig.layout.xaxis.tickvals) <= 40 and fig.data[0].customdata[0][99].startswith("99: t99")


def test_strip_shows_whitespace_and_newlines_and_escapes_html():
    pieces = [TokenPiece(0, 0, "<b>", special=True), TokenPiece(1, 5, "\n\n    x"), TokenPiece(2, 6, "⟨c3⟩",
                                                                                        partial=True, merged="é")]
    html = token_strip_html(pieces)
    assert "&lt;b&gt;" in html and html.count("<br>") == 2 and "⟨c3⟩" in html
    assert html.count('<span class="ws">·</span>') == 4
    assert "bytes of &#x27;é&#x27;" in html
    live = attention_strip_html(pieces, np.tril(np.ones((3, 3))) / 3, "0.1")
    assert "mouseenter" in live and '"p": [[333, 0, 0]' in live


def test_pickers_carry_the_head_and_selection_points_parse():
    fig = add_head_picker(layer_head_heatmap(np.arange(6.0).reshape(2, 3), "t", "score"), "score")
    picker = [t for t in fig.data if t.name == PICKER_NAME][0]
    assert list(picker.customdata) == ["0.0", "0.1", "0.2", "1.0", "1.1", "1.2"] and fig.data[0].hoverinfo == "skip"
    grid = all_heads_figure(np.random.rand(2, 3, 10, 10).astype(np.float32))
    assert sum(t.type == "heatmap" for t in grid.data) == 6
    picked = {t.customdata[0] for t in grid.data if t.name == PICKER_NAME}
    assert picked == {f"{a}.{b}" for a in range(2) for b in range(3)}
    assert sum(t.type == "heatmap" for t in layer_heads_figure(np.random.rand(4, 8, 8), 1).data) == 4
    assert head_from_points([{"customdata": "1.2", "x": 2}]) == "1.2"
    assert head_from_points([{"customdata": ["0.3"]}]) == "0.3" and head_from_points([]) is None
