"""A per-layer probe sweep with the baselines that keep it honest, as one plain result for the app and tables.

For each layer: test accuracy of a logistic probe on the task, and of the same probe on Hewitt & Liang's
control task (each input token mapped to a fixed random class); selectivity = task - control. The majority
class of the training split is the floor every probe must clear.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from interp.errors import InvalidInput
from interp.types import Progress
from probes.probing.linear import control_labels, majority_baseline, selectivity, split_indices, sweep_layers
from probes.stats import wilson_interval

#: What a probe sweep shows: the label is read beyond the input token (selective), no better than the control task
#: (not_selective), not above the majority class (no_signal), or above it with no control task run (no_control).
ProbeVerdict = Literal["selective", "not_selective", "no_signal", "no_control"]
#: Selectivity (task - control accuracy) must reach this for the best layer to count as selective.
MIN_SELECTIVITY = 0.05


@dataclass
class ProbeReport:
    """Test metrics by layer (``layers`` in model order) and the baselines; JSON-friendly lists."""

    layers: list[str]
    accuracy: list[float]
    balanced_accuracy: list[float]
    control_accuracy: list[float]  # NaN where the control task was not run
    majority_accuracy: float
    n_rows: int
    n_train: int
    n_val: int
    n_test: int
    n_classes: int
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def selectivity(self) -> list[float]:
        return [selectivity(a, c) for a, c in zip(self.accuracy, self.control_accuracy)]

    def best(self) -> tuple[str, float]:
        """(layer, accuracy) of the most accurate layer (the first on ties)."""
        i = int(np.argmax(self.accuracy))
        return self.layers[i], self.accuracy[i]

    def table(self) -> pd.DataFrame:
        """One row per layer: accuracy, balanced accuracy, control accuracy, selectivity, majority baseline."""
        return pd.DataFrame({"layer": self.layers, "accuracy": self.accuracy,
                             "balanced_accuracy": self.balanced_accuracy, "control_accuracy": self.control_accuracy,
                             "selectivity": self.selectivity, "majority_accuracy": self.majority_accuracy})


@dataclass(frozen=True)
class Verdict:
    kind: ProbeVerdict
    text: str

    @property
    def positive(self) -> bool:
        return self.kind == "selective"


def probe_verdict(report: ProbeReport, label: str = "the label") -> Verdict:
    """What the sweep shows, in one sentence led by its verdict: the best layer must beat the majority class
    beyond its 95% interval, and the control task (the same probe on labels tied to the input token alone) by at
    least MIN_SELECTIVITY; otherwise the accuracy can come from which token is read, not from what the model
    computed."""
    best, acc = report.best()
    i = report.layers.index(best)
    ctrl, maj, n = report.control_accuracy[i], report.majority_accuracy, int(report.n_test)
    lo, hi = wilson_interval(float(acc), n) if n > 0 else (float("nan"), float("nan"))
    if not lo > maj:
        return Verdict("no_signal", f"No evidence that the model represents {label}: the best layer {best} reaches "
                                    f"{acc:.1%} (95% interval {lo:.1%} to {hi:.1%} on {n} test rows), not clearly "
                                    f"above the majority class's {maj:.1%}.")
    if ctrl != ctrl:  # NaN: no control task
        return Verdict("no_control", f"{best} reads {label} at {acc:.1%} (majority class {maj:.1%}), but no control "
                                     "task was run, so this may come from which token is read rather than from the "
                                     "model's processing. Run it with the control task.")
    sel = acc - ctrl
    if sel < MIN_SELECTIVITY:
        first = report.layers[0]
        return Verdict("not_selective", f"Not selective: at {best} the control task (random labels tied to the input "
                                        f"token alone) reaches {ctrl:.1%}, as good as the task's {acc:.1%} "
                                        f"(selectivity {sel:+.1%}), so a probe this flexible could read these labels "
                                        f"off the token identity; this does not show that {best} represents {label}. "
                                        f"For comparison the embedding layer {first} reaches "
                                        f"{report.accuracy[0]:.1%}. Use texts whose read tokens vary more.")
    return Verdict("selective", f"{best} represents {label} beyond the input token: {acc:.1%} test accuracy "
                                f"(95% interval {lo:.1%} to {hi:.1%}) against {ctrl:.1%} on the control task "
                                f"(selectivity {sel:+.1%}) and {maj:.1%} for the majority class.")


def probe_by_layer(features: Mapping[str, np.ndarray], y: np.ndarray, token_ids: np.ndarray, *, seed: int = 0,
                   groups: np.ndarray | None = None, n_classes: int | None = None, control: bool = True,
                   progress: Progress | None = None, **fit_kw: Any) -> ProbeReport:
    """Fit and test a logistic probe per layer on ``y`` ([n] or [n, tasks] class ids) and on its control task.

    ``features``: layer name -> [n, d]; ``token_ids`` [n]: each row's input token (control task); ``groups``
    [n] (e.g. game ids) keeps related rows in one split part. The split is seeded by ``seed``.
    """
    y = np.asarray(y)
    n = len(y)
    if not features:
        raise InvalidInput("No layers to probe.")
    if any(len(x) != n for x in features.values()) or len(token_ids) != n:
        raise InvalidInput(f"Features, labels and token ids disagree on the number of rows ({n} labels).")
    k = int(n_classes or y.max() + 1)
    if k < 2 or len(np.unique(y)) < 2:
        raise InvalidInput("Labels have a single class; a probe needs at least two.")
    split = split_indices(n, seed=seed, groups=groups)
    report = progress or (lambda f, m: None)
    n_layers = len(features)
    share = 0.5 if control else 1.0
    report(0.0, "fitting task probes")
    task = sweep_layers(features, y, split, n_classes=k, **fit_kw,
                        progress=lambda f, m: report(share * f, f"task probe: {m}"))
    ctrl_acc = [float("nan")] * n_layers
    if control:
        y_ctrl = control_labels(np.asarray(token_ids), y, seed=seed)
        ctrl = sweep_layers(features, y_ctrl, split, n_classes=k, **fit_kw,
                            progress=lambda f, m: report(0.5 + 0.5 * f, f"control probe: {m}"))
        ctrl_acc = ctrl.series()
    report(1.0, "done")
    return ProbeReport(task.layers, task.series(), task.series("balanced_accuracy"), ctrl_acc,
                       majority_baseline(y, split)["accuracy"], n, len(split.train), len(split.val),
                       len(split.test), k, {"seed": seed, "control": control})
