"""The one timer the benchmarks share: best wall time of ``reps`` calls (after one warm-up call unless told not)."""
from __future__ import annotations

import time
from collections.abc import Callable


def best_of(fn: Callable[[], object], reps: int, warm: bool = True) -> float:
    """Seconds of the fastest of ``reps`` calls of ``fn``: the least-disturbed run on a shared machine."""
    if warm:
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)
