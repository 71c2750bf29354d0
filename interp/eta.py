"""Time estimates that say where they come from: scale a measured duration, and an ETA from progress so far."""
from __future__ import annotations

import time
from dataclasses import dataclass, field


def scaled_estimate(measured_s: float, measured_units: float, units: float) -> float:
    """Seconds for ``units`` of work when ``measured_units`` took ``measured_s`` (work assumed linear)."""
    if measured_units <= 0:
        return measured_s
    return measured_s * max(0.0, units) / measured_units


def format_seconds(s: float) -> str:
    """'45 s', '3 min 10 s', '1 h 5 min'."""
    s = max(0, int(round(s)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"


@dataclass
class Eta:
    """Remaining time from the fraction done so far (linear extrapolation; None until 2% is done)."""

    started: float = field(default_factory=time.monotonic)

    def remaining(self, fraction: float, now: float | None = None) -> float | None:
        elapsed = (time.monotonic() if now is None else now) - self.started
        if fraction < 0.02 or elapsed <= 0:
            return None
        return elapsed * (1 - min(1.0, fraction)) / fraction

    def label(self, fraction: float, now: float | None = None) -> str:
        left = self.remaining(fraction, now)
        return "estimating time left..." if left is None else f"about {format_seconds(left)} left"
