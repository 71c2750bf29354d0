"""What an experiment's ``run(config, ctx)`` may use: seed, device, progress/cancel, model loading, caches."""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interp.errors import WorkbenchError
from interp.loading import load_model
from interp.model import LoadBackend, Model
from interp.types import Progress


class Cancelled(WorkbenchError):
    """The user stopped the run; nothing was written."""


@dataclass
class RunContext:
    """Handed to ``Experiment.run``: where to write, how to report, how to load models (recorded in metadata)."""

    experiment: str
    seed: int
    device: str
    out_dir: Path  # the staging folder; extra artefacts go here (the runner renames it into place at the end)
    work_dir: Path  # persists across runs of the same config: checkpoints, resumable caches
    cache_root: Path  # parent of every experiment's work dirs; use shared_cache() for caches several runs share
    progress_fn: Progress | None = None
    cancel_event: threading.Event | None = None
    models: list[dict[str, Any]] = field(default_factory=list)
    backend: LoadBackend = "bridge"  # how load_model runs the models (recorded with each model in metadata.json)
    fraction: float = field(default=0.0, repr=False)  # the last progress reported
    force: bool = False  # --force: an output folder holding an earlier result of this experiment may be replaced

    def check_output(self, path: Path, what: str) -> None:
        """The one output rule (:func:`~experiments.core.outputs.check_output_dir`) for a folder only known once
        the run has started (e.g. beside the loaded model); call it before any training."""
        from experiments.core.outputs import check_output_dir

        check_output_dir(Path(path), self.experiment, what, force=self.force)

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress in [0, 1]; also the place where a cancel request takes effect."""
        self.check_cancelled()
        self.fraction = max(0.0, min(1.0, float(fraction)))
        if self.progress_fn is not None:
            self.progress_fn(self.fraction, message)

    def remote_status(self, _: float, message: str) -> None:
        """A remote model's request status (queued, running...) shown at the run's current progress."""
        if self.progress_fn is not None:
            self.progress_fn(self.fraction, message)

    def check_cancelled(self) -> None:
        if self.cancel_event is not None and self.cancel_event.is_set():
            raise Cancelled(f"{self.experiment} was cancelled; no result was written.")

    def should_stop(self) -> bool:
        """True once Stop was pressed (for training loops that end cleanly at a step boundary)."""
        return self.cancel_event is not None and self.cancel_event.is_set()

    def shared_cache(self, name: str) -> Path:
        """A cache folder shared by runs and experiments (e.g. a tokenised corpus, a trained model reused by
        another experiment), ``<cache root>/shared/<name>``; created on first use."""
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,120}(/[A-Za-z0-9][A-Za-z0-9._-]{0,120}){0,3}", name):
            raise ValueError(f"shared cache names are short slash-separated words, got {name!r}")
        path = self.cache_root / "shared" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def load_model(self, name: str, **kw: Any) -> Model:
        """Load a model (on this run's backend) and record its name, source, backend and weights sha256 in
        metadata.json."""
        handle = load_model(name, device=kw.pop("device", self.device), backend=kw.pop("backend", self.backend), **kw)
        watch = getattr(handle, "watch", None)  # a remote model reports its requests here; Stop stops waiting
        if callable(watch):
            watch(progress=self.remote_status, should_stop=self.should_stop)
        self.models.append(handle.info.to_dict())
        return handle
