"""When an induction head forms during training, how abruptly, and whether the onset can be forecast.

Pure functions of a training history (evaluated steps, the best head's induction score, the ICL score) and of
onsets across data mixtures: the onset (first evaluation where the score crosses a threshold), the rise from
10% to 90% of the final score (Olsson et al. 2022's "abrupt" phase change), the ICL-score drop inside that
rise, and a power law of onset against the share of structured data (onset = c * share^-k, a straight line in
log-log, fitted by least squares) used to forecast a held-out share.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from interp.errors import InvalidInput

#: The induction score at which a head counts as an induction head (the phase-change threshold).
ONSET_THRESHOLD = 0.5
#: Evaluations averaged for the "final" score (one evaluation is noisy).
FINAL_EVALS = 3
#: The ICL score (loss on a repeated copy minus on its first occurrence, nats) at which in-context learning counts
#: as present: the repeat is at least this much easier, whatever mechanism does it.
ICL_THRESHOLD = -1.0


@dataclass(frozen=True)
class Rise:
    """The rise of the best head's induction score from 10% to 90% of its final value (above its start)."""

    start_score: float  # score at the first evaluation (untrained model)
    final_score: float  # mean of the last FINAL_EVALS evaluations
    step_10: int  # first evaluated step at or above 10% of the way from start to final
    step_90: int  # first evaluated step at or above 90% of the way
    icl_drop: float  # ICL score at step_10 minus at step_90 (nats; > 0: the second copy got easier)
    icl_drop_share: float  # icl_drop over the whole drop of the ICL score in training (1.0: all of it)

    @property
    def width(self) -> int:
        """Steps from 10% to 90%: small next to ``step_90`` means abrupt."""
        return self.step_90 - self.step_10


def onset_step(steps: Sequence[int], scores: Sequence[float], threshold: float = ONSET_THRESHOLD) -> int | None:
    """First evaluated step whose score reaches ``threshold``; None if none does (no head within the budget)."""
    _check_history(steps, scores)
    return next((s for s, v in zip(steps, scores) if v >= threshold), None)


def icl_onset_step(steps: Sequence[int], icl: Sequence[float], threshold: float = ICL_THRESHOLD) -> int | None:
    """First evaluated step whose ICL score is at or below ``threshold`` nats (the capability, by behaviour);
    None if none is."""
    _check_history(steps, icl)
    return next((s for s, v in zip(steps, icl) if v <= threshold), None)


def rise(steps: Sequence[int], scores: Sequence[float], icl: Sequence[float]) -> Rise | None:
    """The 10% -> 90% rise of ``scores`` towards their final value, with the ICL-score drop inside it; None when
    the score never rose (final not above the start: nothing formed)."""
    _check_history(steps, scores)
    if len(icl) != len(steps):
        raise InvalidInput(f"{len(icl)} ICL scores for {len(steps)} evaluated steps.")
    start = float(scores[0])
    final = sum(scores[-FINAL_EVALS:]) / len(scores[-FINAL_EVALS:])
    if not final - start > 1e-9:
        return None
    lo, hi = start + 0.1 * (final - start), start + 0.9 * (final - start)
    i10 = next(i for i, v in enumerate(scores) if v >= lo - 1e-12)
    i90 = next(i for i, v in enumerate(scores) if v >= hi - 1e-12)  # reached: hi < final <= the last scores' max
    total = float(icl[0]) - min(float(v) for v in icl)
    drop = float(icl[i10]) - float(icl[i90])
    return Rise(start, final, int(steps[i10]), int(steps[i90]), drop, drop / total if total > 0 else 0.0)


def _check_history(steps: Sequence[int], scores: Sequence[float]) -> None:
    if not steps or len(steps) != len(scores):
        raise InvalidInput(f"A training history needs one score per evaluated step (got {len(steps)} steps, "
                           f"{len(scores)} scores).")
    if any(not math.isfinite(v) for v in scores):
        raise InvalidInput("The training history holds a NaN or infinite score.")


@dataclass(frozen=True)
class OnsetFit:
    """``onset = c * share ** -k``: log(onset) linear in log(share), fitted by least squares."""

    c: float  # the onset at share 1
    k: float  # how fast the onset grows as structure thins out (1: in proportion to 1 / share)
    n_points: int
    shares: tuple[float, ...]  # the distinct shares it was fitted on

    def predict(self, share: float) -> float:
        if share <= 0:
            raise InvalidInput(f"The fit forecasts shares above 0, got {share}.")
        return self.c * share ** -self.k


def fit_onset(shares: Sequence[float], onsets: Sequence[float]) -> OnsetFit:
    """Least-squares line through (log share, log onset), every seed's onset one point; InvalidInput with fewer
    than two distinct shares above 0 (a line needs two)."""
    pts = [(float(s), float(o)) for s, o in zip(shares, onsets) if s > 0 and math.isfinite(o) and o > 0]
    distinct = sorted({s for s, _ in pts})
    if len(distinct) < 2:
        raise InvalidInput(f"Fitting onset against share needs onsets at two or more shares; got {len(distinct)}.",
                           "Give a larger step budget or more shares where the induction head forms.")
    xs = [math.log(s) for s, _ in pts]
    ys = [math.log(o) for _, o in pts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return OnsetFit(math.exp(my - slope * mx), -slope, len(pts), tuple(distinct))


def is_threshold(formed: dict[float, float]) -> tuple[bool, float | None]:
    """``formed``: share -> fraction of seeds whose head formed. (True, threshold) when some shares formed in no
    seed, some in every seed, and every share of the first kind lies below every share of the second (mixed
    shares in between); the threshold is the smallest share where every seed formed."""
    none = [s for s, f in formed.items() if f == 0.0]
    every = [s for s, f in formed.items() if f == 1.0]
    if not none or not every:
        return False, (min(every) if every else None)
    return max(none) < min(every), min(every)
