"""Othello world-model figures: probe accuracy by layer, true vs decoded boards, an intervention's effect."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from plots.common import lines_by_x
from probes.probing.linear import LayerSweep
from tasks.othello import RELATIVE_CLASSES, SQUARE_NAMES, flip_square

# board cells: 0 empty (green), 1 mine (white), 2 theirs (black), 3 probe wrong (red)
BOARD_COLOURS = [[0, "#2e7d32"], [0.25, "#2e7d32"], [0.25, "#fafafa"], [0.5, "#fafafa"], [0.5, "#212121"],
                 [0.75, "#212121"], [0.75, "#e53935"], [1, "#e53935"]]


def world_accuracy_figure(m: dict) -> go.Figure:
    series = {"relative (mine/theirs)": m["relative_accuracy_by_layer"],
              "absolute (black/white)": m["absolute_accuracy_by_layer"]}
    if m["random_init_relative_accuracy_by_layer"]:
        series["random-init model, relative"] = m["random_init_relative_accuracy_by_layer"]
    fig = lines_by_x(series, m["layers"], "Linear probe accuracy by layer (64 squares x 3 classes, test games)",
                     "layer (L0 = embeddings)", "accuracy")
    fig.add_hline(y=m["majority_accuracy"], line_dash="dot", annotation_text="majority class")
    fig.add_scatter(x=[m["best_relative_layer"]], y=[m["control_task_accuracy_at_best"]], mode="markers",
                    marker=dict(symbol="x", size=12), name="control task (relative, best layer)")
    return fig


def _board_text(labels: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    glyph = {"empty": "", "mine": "M", "theirs": "T", "black": "B", "white": "W"}
    return np.array([glyph[classes[int(v)]] for v in labels]).reshape(8, 8)


def board_by_layer_figure(feats: dict, sweep: LayerSweep, y_rel: np.ndarray, split, g: np.ndarray,
                          t: np.ndarray) -> go.Figure:
    """True vs probe-decoded relative state of one test position (move 30 of a test game), layer by layer."""
    test = split.test
    pick = test[np.argmin(np.abs(t[test] - 30))]
    n = len(sweep.layers)
    fig = make_subplots(rows=1, cols=n + 1, subplot_titles=["true"] + sweep.layers, horizontal_spacing=0.01)
    boards = [y_rel[pick]] + [sweep.probes[i].predict(feats[name][pick:pick + 1])[0] for i, name in
                              enumerate(sweep.layers)]
    for c, b in enumerate(boards):
        wrong = (b != y_rel[pick]).reshape(8, 8)
        z = np.where(wrong, 3, b.reshape(8, 8))
        fig.add_trace(go.Heatmap(z=z, zmin=0, zmax=3, showscale=False, text=_board_text(b, RELATIVE_CLASSES),
                                 texttemplate="%{text}", colorscale=BOARD_COLOURS,
                                 hovertemplate="%{text}<extra></extra>"), row=1, col=c + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    fig.update_layout(title=f"Game {int(g[pick])}, after move {int(t[pick]) + 1}: true vs decoded (M mine, T theirs; "
                            "red = probe wrong)", height=260, width=170 * (n + 1), template="plotly_white")
    return fig


def intervention_figure(absolute: np.ndarray, games, case: tuple, example: dict) -> go.Figure:
    """Board before/after the edit with the model's next-move probabilities; legal squares marked."""
    g, t, sq, before, after = case
    board = absolute[g, t]
    edited = flip_square(board, sq)
    fig = make_subplots(rows=1, cols=2, subplot_titles=[
        "before: model's next-move probabilities (* legal)", f"after flipping {SQUARE_NAMES[sq]} (* legal now)"])
    for c, (b, probs, legal) in enumerate([(board, example["probs_clean"], before),
                                           (edited, example["probs_edited"], after)]):
        glyph = np.array([("B" if v == 1 else "W" if v == 2 else "") for v in b])
        mark = np.array(["*" if s in legal else "" for s in range(64)])
        text = np.char.add(glyph, mark).reshape(8, 8)
        fig.add_trace(go.Heatmap(z=probs.reshape(8, 8), zmin=0, zmax=max(0.3, float(probs.max())), colorscale="Blues",
                                 text=text, texttemplate="%{text}", showscale=c == 1,
                                 hovertemplate="p=%{z:.2f} %{text}<extra></extra>"), row=1, col=c + 1)
    fig.update_yaxes(autorange="reversed", tickvals=list(range(8)), ticktext=list("ABCDEFGH"))
    fig.update_xaxes(tickvals=list(range(8)), ticktext=[str(i) for i in range(1, 9)])
    fig.update_layout(title=f"Intervention example: game {g}, after move {t + 1}, {SQUARE_NAMES[sq]} flipped "
                            f"{'mine->theirs' if example['target'] == 2 else 'theirs->mine'}", height=420, width=900,
                      template="plotly_white")
    return fig
