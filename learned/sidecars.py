"""Files that live beside a model: a folder of ``config.json`` + one safetensors file (a tuned lens, an SAE).

This is the one place that reads and writes them, so ``probes/`` stays free of file I/O. A sidecar of a bundled or
local model lives in ``<model dir>/<kind>``; a Hub model's in ``.cache/<kind>/<name>`` (never the HF cache).
Writes are staged in a hidden sibling folder and renamed into place; reads take safetensors only (no pickles)
and refuse non-regular files, so a FIFO or a device node can never block the app.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from interp.errors import InvalidInput, WorkbenchError
from interp.loading import REPO_ROOT
from interp.model import ModelInfo

SIDECAR_CACHE = REPO_ROOT / ".cache"


class SidecarUnreadable(WorkbenchError):
    """A sidecar folder is missing a file, or a file is corrupt, truncated or not a regular file."""


def sidecar_dir(info: ModelInfo, kind: str) -> Path:
    """Default folder of a ``kind`` sidecar (e.g. ``tuned_lens``) for the model described by ``info``."""
    if info.source in ("bundled", "local") and info.path:
        return Path(info.path) / kind
    return SIDECAR_CACHE / kind.replace("_", "-") / info.name.replace("/", "__")


def _regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def has_sidecar(directory: str | Path, config_file: str = "config.json") -> bool:
    return _regular_file(Path(directory) / config_file)


def read_sidecar(directory: str | Path, weights_file: str, config_file: str = "config.json"
                 ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(config, tensors)`` of a sidecar folder; anything unreadable raises :class:`SidecarUnreadable`."""
    d = Path(directory)
    cfg_path, weights = d / config_file, d / weights_file
    if not _regular_file(cfg_path):
        raise SidecarUnreadable(f"{cfg_path} is missing or not a regular file.")
    try:
        config = json.loads(cfg_path.read_text())
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        raise SidecarUnreadable(f"{cfg_path} is not valid JSON ({e}).") from None
    if not _regular_file(weights):
        raise SidecarUnreadable(f"{d} has a config but no {weights_file}.")
    try:
        tensors = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise SidecarUnreadable(f"{weights} is corrupt or truncated ({e}).") from None
    return config, tensors


def _replaceable(out: Path, weights_file: str, config_file: str) -> bool:
    """``out`` is an empty folder or a sidecar of this kind (its config and weights are regular files)."""
    try:
        if not out.is_dir() or out.is_symlink():
            return False
        return not any(out.iterdir()) or (_regular_file(out / config_file) and _regular_file(out / weights_file))
    except OSError:
        return False


def write_sidecar(directory: str | Path, config: dict[str, Any], tensors: dict[str, torch.Tensor], weights_file: str,
                  *, config_file: str = "config.json", metadata: dict[str, str] | None = None) -> Path:
    """Write ``config_file`` + ``weights_file`` as the folder ``directory``, atomically (staged, then renamed):
    a reader sees the old folder or the new one, never a mix. The folder is replaced whole, so an existing one must
    be empty or a sidecar of the same kind (both files there): any other folder is refused and left untouched."""
    out = Path(directory)
    if out.exists() and not _replaceable(out, weights_file, config_file):
        raise InvalidInput(f"{str(out)[:100]} already exists and is not a {config_file} + {weights_file} folder; "
                           "writing there would replace everything in it, so nothing was written.",
                           "Choose a new or empty folder.")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    state = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    save_file(state, str(staging / weights_file), metadata=metadata)
    os.chmod(staging / weights_file, 0o644)  # safetensors writes 0600; sidecars ship with their model
    (staging / config_file).write_text(json.dumps(config, indent=2) + "\n")
    return swap_into(staging, out)


def swap_into(staging: Path, out: Path) -> Path:
    """Put the fully written folder ``staging`` at ``out`` (an earlier one there is replaced whole): a reader sees
    the old folder or the new one, never a half-written mix."""
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)
    return out
