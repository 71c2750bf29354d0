"""Analyses of toy-model weights W (Elhage et al. 2022): which features are represented, and how they share space.

All functions take ``W`` as ``[..., m, n]`` (columns ``W_i`` are the n feature directions in m dimensions, as in
the paper) with any leading batch of models, and return tensors or small dataclasses; nothing is trained here.

- :func:`feature_norms` ``||W_i||``: is feature i represented (~1) or dropped (~0)?
- :func:`gram` ``W^T W``: the paper's features-by-features picture; off-diagonals are interference.
- :func:`feature_angles`: degrees between columns (a regular pentagon: neighbours 72 degrees apart).
- :func:`dimensionality` ``D_i = ||W_i||^2 / sum_j (W_i_hat . W_j)^2``: the fraction of a dimension feature i
  gets (1 alone, 1/2 antipodal pair, 2/3 triangle, 2/5 pentagon, 0 dropped); :func:`dimensions_per_feature`
  ``m / ||W||_F^2`` is the model-level average the paper plots against 1/(1-S).
- :func:`classify_phase` / :func:`theory_phase`: the n=2, m=1 phase diagram, empirical and analytic.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

Phase = Literal["not represented", "own dimension", "superposition"]
CellRule = Literal["best", "majority"]  # how a grid cell's restarts decide its phase
PHASES: tuple[Phase, ...] = ("not represented", "own dimension", "superposition")
#: The dimensionalities where per-feature D_i sticks (paper: tetrahedron, triangle, antipodal pair, pentagon,
#: square antiprism; 1 is a dedicated dimension).
PUBLISHED_FRACTIONS: tuple[tuple[str, float], ...] = (("1", 1.0), ("3/4", 0.75), ("2/3", 2 / 3), ("1/2", 0.5),
                                                      ("2/5", 0.4), ("3/8", 0.375))
EPS = 1e-8


def feature_norms(W: torch.Tensor) -> torch.Tensor:
    """``||W_i||`` for every feature: ``[..., n]``."""
    return torch.linalg.vector_norm(W, dim=-2)


def gram(W: torch.Tensor) -> torch.Tensor:
    """``W^T W``: ``[..., n, n]``."""
    return W.transpose(-1, -2) @ W


def unit_columns(W: torch.Tensor) -> torch.Tensor:
    """Columns scaled to norm 1 (a zero column stays zero): ``[..., m, n]``."""
    return W / feature_norms(W).clamp_min(EPS)[..., None, :]


def feature_angles(W: torch.Tensor) -> torch.Tensor:
    """Angle in degrees between every pair of columns, ``[..., n, n]``; NaN where a column is (near) zero."""
    U = unit_columns(W)
    cos = (U.transpose(-1, -2) @ U).clamp(-1.0, 1.0)  # [..., n, n]
    ang = torch.rad2deg(torch.arccos(cos))
    dead = feature_norms(W) < 1e-6  # [..., n]
    return ang.masked_fill(dead[..., :, None] | dead[..., None, :], float("nan"))


def interference(W: torch.Tensor) -> torch.Tensor:
    """``sum_{j != i} (W_i_hat . W_j)^2``: how strongly other features project onto feature i (0: orthogonal),
    the colour of the paper's norm bars. ``[..., n]``."""
    proj = unit_columns(W).transpose(-1, -2) @ W  # [..., n, n]: row i = W_i_hat . W_j
    return (proj ** 2).sum(-1) - (proj.diagonal(dim1=-2, dim2=-1) ** 2)


def dimensionality(W: torch.Tensor) -> torch.Tensor:
    """Per-feature dimensionality ``D_i = ||W_i||^2 / sum_j (W_i_hat . W_j)^2`` (j includes i): ``[..., n]``.

    A dropped feature (zero column) has D_i = 0. Across a model the D_i sum to about m when packed efficiently.
    """
    norms = feature_norms(W)  # [..., n]
    proj = unit_columns(W).transpose(-1, -2) @ W  # [..., n, n]
    denom = (proj ** 2).sum(-1)  # [..., n]
    return torch.where(norms > 1e-6, norms ** 2 / denom.clamp_min(EPS), torch.zeros_like(norms))


def dimensions_per_feature(W: torch.Tensor) -> torch.Tensor:
    """``D* = m / ||W||_F^2`` ("dimensions per feature", sticky at 1 and 1/2 in the paper): ``[...]``."""
    return W.shape[-2] / (W ** 2).sum((-1, -2)).clamp_min(EPS)


def column_angles_2d(W: torch.Tensor, min_norm: float = 0.5) -> torch.Tensor:
    """For a 2-D model ``[2, n]``: the angles (degrees) between angularly consecutive represented columns, going
    once around the circle (they sum to 360). A regular pentagon gives five 72s."""
    if W.shape[-2] != 2 or W.ndim != 2:
        raise ValueError(f"column_angles_2d takes one [2, n] matrix, got {tuple(W.shape)}")
    keep = feature_norms(W) >= min_norm
    theta = torch.rad2deg(torch.atan2(W[1, keep], W[0, keep])).sort().values
    if theta.numel() < 2:
        return torch.tensor([360.0]) if theta.numel() == 1 else torch.empty(0)
    return torch.diff(torch.cat([theta, theta[:1] + 360.0]))


# ----------------------------------------------------------------------------- the n = 2, m = 1 phase diagram


def classify_phase(W: torch.Tensor, represented: float = 0.5, own: float = 0.75) -> list[Phase]:
    """Phase of the 2nd ("extra") feature in n=2, m=1 models ``W [..., 1, 2]`` (flattened to a list):
    ``||W_2|| < represented`` -> not represented; else its dimensionality D_2 >= ``own`` -> own dimension
    (feature 1 dropped, W ~ [0, 1]); else superposition (it shares the one dimension, W ~ [1, -1])."""
    if W.shape[-2:] != (1, 2):
        raise ValueError(f"classify_phase takes n=2, m=1 models [..., 1, 2], got {tuple(W.shape)}")
    W = W.reshape(-1, 1, 2)
    norm2, dim2 = feature_norms(W)[:, 1], dimensionality(W)[:, 1]
    out: list[Phase] = []
    for nrm, d in zip(norm2.tolist(), dim2.tolist()):
        out.append("not represented" if nrm < represented else "own dimension" if d >= own else "superposition")
    return out


def theory_losses(relative_importance: float, density: float) -> dict[Phase, float]:
    """Closed-form expected loss of the paper's three n=2, m=1 configurations (first feature importance 1, the
    extra one ``relative_importance`` = r, both active with probability ``density`` = p = 1 - S):

    - W = [1, 0], bias p/2 on the extra (not represented): r (p/3 - p^2/4)
    - W = [0, 1], bias p/2 on the first (extra gets its own dimension): p/3 - p^2/4
    - W = [1, -1], no bias (antipodal superposition; wrong only when both fire): (1 + r) p^2 / 6

    (Wattenberg's "Exploring Exact Toy Models" notebook, cited by the paper for its theoretical diagram.)"""
    r, p = float(relative_importance), float(density)
    drop = p / 3 - p * p / 4
    return {"not represented": r * drop, "own dimension": drop, "superposition": (1 + r) * p * p / 6}


def theory_phase(relative_importance: float, density: float) -> Phase:
    """The lowest-loss configuration of :func:`theory_losses`. Boundaries: superposition wins below
    p = 4r / (2 + 5r) for r < 1 and below p = 4 / (5 + 2r) for r > 1; above them r < 1 drops the extra feature
    and r > 1 gives it the dimension."""
    losses = theory_losses(relative_importance, density)
    return min(PHASES, key=lambda k: losses[k])


@dataclass
class PhaseGrid:
    """An n=2, m=1 phase diagram: ``labels[i][j]`` at ``importances[i]`` x ``densities[j]``."""

    importances: list[float]
    densities: list[float]
    labels: list[list[Phase]]  # [importance][density]
    theory: list[list[Phase]]
    restart_agreement: list[list[float]]  # share of kept restarts whose label is the cell's label

    @property
    def agreement(self) -> float:
        """Share of grid cells whose trained phase equals the analytic one."""
        cells = [a == b for ra, rb in zip(self.labels, self.theory) for a, b in zip(ra, rb)]
        return sum(cells) / max(1, len(cells))

    def counts(self) -> dict[str, int]:
        flat = [v for row in self.labels for v in row]
        return {p: flat.count(p) for p in PHASES}


def phase_grid(W: torch.Tensor, eval_loss: torch.Tensor, importances: Sequence[float], densities: Sequence[float],
               restarts: int, rule: CellRule = "best") -> PhaseGrid:
    """Phase diagram from trained models laid out ``[importance, density, restart]`` (restart innermost) in
    ``W [models, 1, 2]``. ``rule="best"``: a cell's phase is its lowest-loss restart's (the theory asks for the
    optimum; gradient descent on these 2-parameter models often stalls in the other configuration);
    ``"majority"``: as the paper averages, drop the highest-loss restart and take the majority of the rest
    (ties to the lowest loss). ``restart_agreement`` is the share of kept restarts with the cell's label."""
    ni, nd = len(importances), len(densities)
    if W.shape[0] != ni * nd * restarts:
        raise ValueError(f"expected {ni * nd * restarts} models, got {W.shape[0]}")
    labels = classify_phase(W)
    losses = eval_loss.reshape(ni, nd, restarts)
    grid: list[list[Phase]] = []
    agree: list[list[float]] = []
    for i in range(ni):
        row, arow = [], []
        for j in range(nd):
            order = losses[i, j].argsort().tolist()  # best first
            kept = order[:-1] if restarts > 1 else order
            cell = [labels[(i * nd + j) * restarts + r] for r in kept]
            best = cell[0] if rule == "best" else max(PHASES, key=lambda p: (cell.count(p), p == cell[0]))
            row.append(best)
            arow.append(cell.count(best) / len(cell))
        grid.append(row)
        agree.append(arow)
    theory = [[theory_phase(r, p) for p in densities] for r in importances]
    return PhaseGrid(list(map(float, importances)), list(map(float, densities)), grid, theory, agree)


# ----------------------------------------------------------------------------- dimensionality clusters


def nearest_fraction(values: torch.Tensor, fractions: Sequence[float] = tuple(v for _, v in PUBLISHED_FRACTIONS)
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(nearest fraction, distance to it) for every value."""
    f = torch.tensor(list(fractions), dtype=values.dtype)
    dist = (values[..., None] - f).abs()  # [..., k]
    d, idx = dist.min(-1)
    return f[idx], d


def fraction_shares(D: torch.Tensor, norms: torch.Tensor, tol: float = 0.02, min_norm: float = 0.5,
                    fractions: Sequence[tuple[str, float]] = PUBLISHED_FRACTIONS) -> dict[str, float]:
    """Among represented features (``norms >= min_norm``): the share whose D_i lies within ``tol`` of each
    published fraction, plus ``"any"`` (within tol of one of them) and ``"chance"``: the share a uniform spread
    over [min D, max D] of those features would put within tol of one of them."""
    keep = norms >= min_norm
    d = D[keep]
    if d.numel() == 0:
        return {"any": float("nan"), "chance": float("nan"), **{name: float("nan") for name, _ in fractions}}
    out = {name: float(((d - v).abs() <= tol).float().mean()) for name, v in fractions}
    _, dist = nearest_fraction(d, [v for _, v in fractions])
    out["any"] = float((dist <= tol).float().mean())
    lo, hi = float(d.min()), float(d.max())
    covered = sum(max(0.0, min(hi, v + tol) - max(lo, v - tol)) for _, v in fractions)
    out["chance"] = covered / (hi - lo) if hi - lo > 1e-9 else 1.0
    return out


