"""One checkpoint mechanism for every training loop: atomic files, RNG state saved, corrupt files detected.

A checkpoint is a single file holding the step, the model's and optimiser's state, the RNG states of torch,
numpy and Python (so dropout and any sampling continue exactly where they left off: a resumed run equals an
uninterrupted one), and a JSON ``extra`` payload (training history, evaluation records). Everything a run
needs to resume is in that one file, written to a temporary name and renamed, so a kill at any instant
leaves either the previous checkpoint or the new one. Files hold only tensors, numbers and strings and are
read back with ``torch.load(weights_only=True)``: never an arbitrary pickle.
"""
from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from interp.errors import WorkbenchError
from interp.files import atomic_write_bytes

FORMAT = "workbench-checkpoint-v1"


class CheckpointCorrupt(WorkbenchError):
    """A checkpoint or cache file exists but cannot be read back; delete it (or let the caller) and rerun."""


# ----------------------------------------------------------------------------- atomic writes


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=1) + "\n")


def atomic_save_npy(path: str | Path, array: np.ndarray) -> Path:
    """``np.save`` atomically (the file name is kept as given; ``.npy`` is not appended)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return atomic_write_bytes(path, buf.getvalue())


def load_npy(path: str | Path) -> np.ndarray:
    """``np.load`` without pickles; a truncated or foreign file raises :class:`CheckpointCorrupt`."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise CheckpointCorrupt(f"The cached array {path} is damaged ({e}).") from None


def read_json(path: str | Path) -> Any:
    """Read a JSON cache file; damaged -> :class:`CheckpointCorrupt`."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise CheckpointCorrupt(f"The cached file {path} is damaged ({e}).") from None


# ----------------------------------------------------------------------------- RNG state


def rng_state() -> dict[str, Any]:
    """torch, numpy and Python RNG states as tensors and numbers (weights_only-loadable)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    return {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(keys.astype(np.int64)),
            "numpy_pos": int(pos), "numpy_has_gauss": int(has_gauss), "numpy_gauss": float(gauss),
            "python": torch.tensor(py_state, dtype=torch.int64), "python_version": int(version),
            "python_gauss": py_gauss if py_gauss is None else float(py_gauss)}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"],
                         state["numpy_has_gauss"], state["numpy_gauss"]))
    random.setstate((state["python_version"], tuple(int(v) for v in state["python"].tolist()),
                     state["python_gauss"]))


# ----------------------------------------------------------------------------- checkpoints


@dataclass
class Resumed:
    """What :func:`load_checkpoint` restored: the step to continue from and the saved ``extra`` payload."""
    step: int
    extra: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(path: str | Path, *, step: int, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None = None, extra: dict[str, Any] | None = None,
                    tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """Write one resumable checkpoint atomically: step, model, optimiser, RNG states, ``extra`` (JSON-able),
    and optional named ``tensors`` (e.g. a running buffer) that are not part of the model."""
    payload = {"format": FORMAT, "step": int(step), "model": model.state_dict(),
               "optim": optimizer.state_dict() if optimizer is not None else {}, "rng": rng_state(),
               "extra_json": json.dumps(extra or {}), "tensors": dict(tensors or {})}
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    restore_rng: bool = True, map_location: str | torch.device = "cpu") -> Resumed:
    """Restore model, optimiser and RNG states from ``path``; raise :class:`CheckpointCorrupt` if it is damaged
    or was written for another model (the caller decides whether to delete it and start afresh)."""
    payload = read_checkpoint(path, map_location=map_location)
    try:
        model.load_state_dict(payload["model"])
        if optimizer is not None and payload["optim"]:
            optimizer.load_state_dict(payload["optim"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise CheckpointCorrupt(f"The checkpoint {path} does not fit this run's model "
                                f"({str(e).splitlines()[0]}).") from None
    if restore_rng:
        set_rng_state(payload["rng"])
    return Resumed(int(payload["step"]), json.loads(payload["extra_json"]))


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The raw payload (weights_only); damaged, truncated or foreign files raise :class:`CheckpointCorrupt`."""
    try:
        payload = torch.load(path, weights_only=True, map_location=map_location)
    except Exception as e:  # truncated zip, foreign pickle refused by weights_only, I/O error
        raise CheckpointCorrupt(f"The checkpoint {path} is damaged ({type(e).__name__}: "
                                f"{str(e).splitlines()[0][:200] if str(e) else ''}).") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointCorrupt(f"{path} is not a workbench checkpoint.")
    return payload


def resume_or_start(path: str | Path | None, *, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None = None, log: Any = print) -> Resumed:
    """Resume from ``path`` when it holds a good checkpoint; a damaged one is reported, removed, and the run
    starts at step 0 (a cache must never block every later run)."""
    if path is None or not Path(path).is_file():
        return Resumed(0)
    try:
        return load_checkpoint(path, model=model, optimizer=optimizer)
    except CheckpointCorrupt as e:
        if log is not None:
            log(f"{e} Starting this run from step 0.")
        Path(path).unlink(missing_ok=True)
        return Resumed(0)
