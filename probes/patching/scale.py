"""When patching effects may be normalised, and when a spread of effects is within noise.

A normalised effect divides by the clean - corrupted gap of the metric. When that gap is tiny next to how much the
metric varies anyway, the quotient amplifies noise: a gap of 0.014 turns patched changes of 0.04 into "effects" of
-3 to +2. So a gap must exceed a floor set by the metric's own scale before effects are normalised:

- ``logit_diff`` and ``logprob`` (nats): the spread (standard deviation over the vocabulary) of the clean run's
  logits at the answer position, averaged over pairs; the floor is ``GAP_FLOOR`` times it (half the spread:
  a gap smaller than that is less than the typical difference between two arbitrary tokens' logits).
- ``prob``: probabilities have the natural range 0..1; the floor is ``PROB_FLOOR`` (one percentage point).

The same floor in metric units decides whether a heatmap's spread is "within noise".
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from interp.model import Model
from probes.patching.activation import PatchMetric, SweepResult
from probes.patching.attribution import AttributionResult
from tasks.pairs import PairBatch

#: Normalise only when |clean - corrupted| >= GAP_FLOOR x the spread of the clean logits (logit_diff, logprob).
GAP_FLOOR = 0.5
#: ... or >= PROB_FLOOR for the prob metric.
PROB_FLOOR = 0.01
#: Normalised effects are coloured on -NORMALISED_RANGE..NORMALISED_RANGE; cells beyond are marked as outliers.
NORMALISED_RANGE = 1.0


@dataclass(frozen=True)
class GapCheck:
    """The clean - corrupted gap of a metric against its floor."""

    metric: PatchMetric
    clean: float
    corrupted: float
    scale: float  # the metric's own scale (nats of logit spread; 1.0 for prob)
    floor: float  # in metric units

    @property
    def gap(self) -> float:
        return self.clean - self.corrupted

    @property
    def ok(self) -> bool:
        """Whether effects may be normalised by this gap."""
        return abs(self.gap) >= self.floor

    def note(self) -> str:
        """One line for the page: why effects are (not) normalised."""
        rule = (f"{GAP_FLOOR:g} x the spread of the clean logits ({self.scale:.3g} nats)" if self.metric != "prob"
                else "one percentage point")
        if self.ok:
            return (f"Clean - corrupted gap {self.gap:+.3g} clears the floor {self.floor:.3g} ({rule}): effects are "
                    "normalised (0 = corrupted run, 1 = clean run; colour fixed at -1..1, cells beyond marked ✕).")
        return (f"The clean - corrupted gap ({self.gap:+.3g} {self.metric}) is below the floor {self.floor:.3g} "
                f"({rule}), so normalising by it would amplify noise: raw effects (patched - corrupted, in "
                f"{self.metric} units) are shown instead. Choose a pair whose answer the clean prompt predicts and the "
                "corrupted one does not.")


def metric_scale(handle: Model, batch: PairBatch, metric: PatchMetric) -> float:
    """The metric's own scale: 1.0 for prob, else the mean over pairs of the std over the vocabulary of the clean
    run's logits at the answer position (one forward pass that unembeds only that position)."""
    if metric == "prob":
        return 1.0
    logits = handle.run(batch.clean, logit_positions=batch.answer_pos).logits  # [batch, 1, vocab]
    assert logits is not None
    return float(logits[:, 0].float().std(dim=-1).mean())


def check_gap(metric: PatchMetric, clean: torch.Tensor, corrupted: torch.Tensor, scale: float) -> GapCheck:
    """The gap of mean clean vs mean corrupted metric (``[batch]`` each) against the floor for ``scale``."""
    floor = PROB_FLOOR if metric == "prob" else GAP_FLOOR * scale
    return GapCheck(metric, float(clean.float().mean()), float(corrupted.float().mean()), scale, floor)


def exact_effects(result: SweepResult, check: GapCheck) -> torch.Tensor:
    """``[*cells]``: normalised effects when the gap clears its floor, else raw (patched - corrupted) effects."""
    if check.ok:
        return result.normalised()
    return result.values.float().mean(-1) - result.corrupted.float().mean()


def attribution_effects(result: AttributionResult, kind: str, check: GapCheck) -> torch.Tensor:
    """``[*cells]``: the attribution estimates, normalised or raw like :func:`exact_effects`."""
    if check.ok:
        return result.normalised(kind)
    return result.estimates[kind].float().mean(-1)


def within_noise(effects: torch.Tensor, check: GapCheck) -> bool:
    """Whether every cell's effect, in metric units, is smaller than the floor: differences are then noise."""
    raw = effects.abs().max() * (abs(check.gap) if check.ok else 1.0)
    return bool(raw < check.floor)
