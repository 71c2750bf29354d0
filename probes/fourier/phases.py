"""The phases of grokking read off a training history (Nanda et al. 2023): memorisation, circuit formation,
cleanup, and the epoch the model generalises. Pure functions of logged epochs and curves."""
from __future__ import annotations

import math
from collections.abc import Sequence

#: Test accuracy that counts as "grokked" (the app's and the experiment's threshold).
GROK_ACC = 0.95
#: Train accuracy that counts as "memorised".
MEMORISED_ACC = 0.99


def first_epoch_reaching(epochs: Sequence[int], values: Sequence[float], threshold: float) -> int | None:
    """First logged epoch whose value is >= ``threshold`` (None: never)."""
    return next((e for e, v in zip(epochs, values) if v >= threshold), None)


def phase_boundaries(epochs: Sequence[int], train_acc: Sequence[float], test_loss: Sequence[float],
                     test_acc: Sequence[float], p: int) -> dict[str, int | None]:
    """Memorisation ends when train accuracy reaches 99%; circuit formation ends (cleanup starts) when the test
    loss falls back below chance (ln p); cleanup ends when test accuracy reaches 99.9%; grokked: test >= 95%."""
    mem = first_epoch_reaching(epochs, train_acc, MEMORISED_ACC)
    start = next((e for e, lo in zip(epochs, test_loss) if mem is not None and e > mem and lo < math.log(p)), None)
    end = next((e for e, a in zip(epochs, test_acc) if start is not None and e >= start and a >= 0.999), None)
    return {"memorised": mem, "cleanup_start": start, "cleanup_end": end,
            "grokked": first_epoch_reaching(epochs, test_acc, GROK_ACC)}
