"""Li et al.'s intervention on Othello-GPT: flip one square's colour along linear-probe directions and score
whether the model's predicted legal moves follow the edited board (top-k errors, and the probability shifted
toward the edited board against a same-size edit of another square)."""
from __future__ import annotations

import numpy as np
import torch

from interp.model import Model
from probes.probing.intervention import probe_push_edit
from probes.probing.layers import probe_site
from tasks.othello import EMPTY, TOKEN_TO_SQUARE, flip_square, legal_moves_of, to_relative, topk_errors


def _square_probs(logits: torch.Tensor) -> np.ndarray:
    """[b, 61] next-token logits -> [b, 64] probabilities over board squares (pad and centre get 0)."""
    p = logits.softmax(-1).cpu().numpy()
    out = np.zeros((len(p), 64))
    for tok, sq in TOKEN_TO_SQUARE.items():
        out[:, sq] = p[:, tok]
    return out


def intervention_cases(games, absolute: np.ndarray, test_games: np.ndarray, n: int, seed: int):
    """Pick (game, move, square) edits: a disc whose colour flip changes the legal moves (and leaves some)."""
    rng = np.random.default_rng(seed + 1)
    cases = []
    for _ in range(n * 20):
        if len(cases) == n:
            break
        g = int(rng.choice(test_games))
        t = int(rng.integers(10, 50))
        tm = int(games.to_move[g, t])
        if tm == 0:
            continue
        board = absolute[g, t]
        before = legal_moves_of(board, tm)
        for s in rng.permutation(np.nonzero(board != EMPTY)[0]):
            after = legal_moves_of(flip_square(board, int(s)), tm)
            if after and set(after) != set(before):
                cases.append((g, t, int(s), before, after))
                break
    return cases


def shift_toward(p_before: np.ndarray, p_after: np.ndarray, gained: list[int], lost: list[int]) -> float:
    """How far an edit moved probability toward the edited board: mass added on squares that became legal
    plus mass removed from squares that stopped being legal (positive = the right direction)."""
    return float((p_after[gained] - p_before[gained]).sum() - (p_after[lost] - p_before[lost]).sum())


def run_interventions(handle: Model, tokens: torch.Tensor, games, absolute: np.ndarray, probes: list, layers: list[int],
                      cases: list, margin: float, seed: int = 0) -> dict:
    """Edit each case's square mine<->theirs at every layer in ``layers``; score top-k legal-move predictions.

    Besides Li et al.'s exact top-k match, a graded measure: the probability shifted toward the edited board's
    legal moves (``shift_toward``), compared with the same edit written on a different occupied square (a
    control of the same kind and size that should not move these squares).
    """
    g = np.array([c[0] for c in cases])
    t = np.array([c[1] for c in cases])
    sq = np.array([c[2] for c in cases])
    rows = np.arange(len(cases))
    rng = np.random.default_rng(seed + 2)
    other = np.array([rng.choice([s for s in np.nonzero(absolute[gi, ti] != EMPTY)[0] if s != si])
                      for gi, ti, si in zip(g, t, sq)])  # control: another occupied square of the same board
    rel = to_relative(absolute[g, t], games.to_move[g, t])  # [b, 64]
    x = tokens[g]

    def flipped(squares: np.ndarray) -> np.ndarray:  # the class each edit writes: mine -> theirs -> mine
        return np.where(rel[rows, squares] == 1, 2, 1)

    def edited_probs(squares: np.ndarray) -> np.ndarray:
        target = flipped(squares)
        edits = {probe_site(ly): probe_push_edit(probes[ly], squares, target, t.tolist(), margin) for ly in layers}
        return _square_probs(handle.run(x, edit=edits).logits[rows, t])

    pc = _square_probs(handle.logits(x)[rows, t])
    pe, po = edited_probs(sq), edited_probs(other)
    err_edit = np.array([topk_errors(pe[i], c[4]) for i, c in enumerate(cases)])
    err_clean_vs_edited = np.array([topk_errors(pc[i], c[4]) for i, c in enumerate(cases)])
    err_clean_vs_orig = np.array([topk_errors(pc[i], c[3]) for i, c in enumerate(cases)])
    changes = [(sorted(set(c[4]) - set(c[3])), sorted(set(c[3]) - set(c[4]))) for c in cases]
    shift = np.array([shift_toward(pc[i], pe[i], *changes[i]) for i in rows])
    shift_ctrl = np.array([shift_toward(pc[i], po[i], *changes[i]) for i in rows])
    return {"n": len(cases), "success_rate": float((err_edit == 0).mean()), "mean_errors": float(err_edit.mean()),
            "baseline_success_rate": float((err_clean_vs_edited == 0).mean()),
            "baseline_mean_errors": float(err_clean_vs_edited.mean()),
            "clean_vs_true_success_rate": float((err_clean_vs_orig == 0).mean()),
            "clean_vs_true_mean_errors": float(err_clean_vs_orig.mean()),  # the model's own floor for an edit
            "mean_shift_toward_edited": float(shift.mean()), "shift_positive_rate": float((shift > 0).mean()),
            "control_mean_shift": float(shift_ctrl.mean()),
            "control_shift_positive_rate": float((shift_ctrl > 0).mean()),
            "example": {"case": 0, "probs_clean": pc[0], "probs_edited": pe[0], "target": int(flipped(sq)[0])}}
