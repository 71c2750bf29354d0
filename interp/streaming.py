"""Stream chosen activations of a dataset to disk batch by batch, resumably, in flat memory.

Each hook becomes one ``.npy`` file of shape [n_rows, (pos,) ...] that readers open with
``np.load(mmap_mode="r")``. Rows are written with ordinary file writes at their offset (not through a
writable memmap, whose dirty pages would count toward the process's memory), and ``manifest.json`` records
how many rows are complete after each batch: an interrupted run resumes there, a finished one is reused.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from interp import validate
from interp.errors import InvalidInput
from interp.model import Model
from interp.sites import Site, parse_sites, stop_point
from interp.tokens import TokenBatch
from interp.types import Progress

Positions = str | int | tuple[int, int]  # "all" | "last" | index | (start, end) mean over a span
NP_DTYPES = {"float32": np.float32, "float16": np.float16}


def select_positions(act: torch.Tensor, lengths: torch.Tensor, positions: Positions) -> torch.Tensor:
    """Reduce [batch, pos, ...] to the chosen positions: all, last real token, one index, or a span's mean."""
    if positions == "all":
        return act
    if positions == "last":
        return act[torch.arange(act.shape[0]), lengths - 1]
    if isinstance(positions, int):
        if not -act.shape[1] <= positions < act.shape[1]:
            raise InvalidInput(f"Position {positions} is outside the sequence (length {act.shape[1]}).")
        return act[:, positions]
    if isinstance(positions, (tuple, list)) and len(positions) == 2:
        start, end = positions
        if not 0 <= start < end <= act.shape[1]:
            raise InvalidInput(f"Span {positions} is not within 0..{act.shape[1]}.")
        return act[:, start:end].mean(dim=1)
    raise InvalidInput(f"Unknown position rule {positions!r}; use 'all', 'last', an index, or (start, end).")


@dataclass
class ActivationStore:
    """Read side of a streamed dataset: ``store[hook]`` is a read-only memmap [n_rows, ...]."""

    path: Path
    manifest: dict

    @property
    def n_rows(self) -> int:
        return int(self.manifest["n_rows"])

    @property
    def complete(self) -> bool:
        return self.manifest["done"] == self.manifest["n_rows"]

    @property
    def hooks(self) -> list[str]:
        return list(self.manifest["hooks"])

    def __getitem__(self, site: str | Site) -> np.ndarray:
        hook = str(Site.parse(site))
        if hook not in self.manifest["hooks"]:
            raise InvalidInput(f"{hook!r} was not captured here; captured: {', '.join(self.hooks)}.")
        return np.load(self.path / self.manifest["hooks"][hook]["file"], mmap_mode="r")


def fingerprint(handle: Model, tokens: torch.Tensor, hooks: Sequence[str], positions: Positions,
                dtype: str) -> str:
    """Identifies (model weights, tokens, hooks, position rule, dtype): a different one means a new capture."""
    h = hashlib.sha256()
    h.update(handle.info.sha256.encode() or handle.info.name.encode())
    h.update(tokens.cpu().numpy().astype(np.int64).tobytes())
    h.update(json.dumps([list(hooks), positions, dtype]).encode())
    return h.hexdigest()


def stream_activations(
    handle: Model,
    data: torch.Tensor | Sequence[str],
    hooks: Sequence[str | Site],
    out_dir: str | Path,
    *,
    positions: Positions = "all",
    batch_size: int = 32,
    dtype: str = "float32",
    show_bar: bool = False,
    progress: Progress | None = None,
) -> ActivationStore:
    """Capture ``hooks`` for every row of ``data`` (token tensor [n, pos] or texts) into ``out_dir``.

    Resumes from the manifest if a previous run of the same fingerprint was interrupted; returns at once
    if it completed. ``progress(fraction, message)`` is called after each batch is safely on disk; ``show_bar``
    draws a terminal progress bar (scripts).
    """
    sites = [handle.require(s) for s in parse_sites(hooks)]
    hooks = [str(s) for s in sites]
    if not isinstance(dtype, str) or dtype not in NP_DTYPES:
        raise InvalidInput(f"dtype must be one of {', '.join(NP_DTYPES)}, got {str(dtype)[:40]!r}.")
    batch_size = validate.count(batch_size, "batch_size", low=1, high=65_536)
    # token tensors are used as given; texts get BOS and right-padding (lengths kept for "last")
    full = handle.tokenize(data if isinstance(data, (TokenBatch, torch.Tensor)) else list(data))
    if positions == "all" and full.padded:
        raise InvalidInput("positions='all' needs rows of equal length; use 'last', an index or a span for text.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fp = fingerprint(handle, full.tokens, hooks, positions, dtype)
    manifest = _read_manifest(out)
    n = full.tokens.shape[0]
    if manifest is None or manifest.get("fingerprint") != fp:
        for f in out.glob("*.npy"):
            f.unlink()
        manifest = {"fingerprint": fp, "model": handle.info.name, "n_rows": n, "done": 0,
                    "positions": positions, "dtype": dtype, "hooks": {}}
        _write_manifest(out, manifest)
    if manifest["done"] == n:
        return ActivationStore(out, manifest)
    bar = None
    if show_bar:
        bar = tqdm(total=n, initial=manifest["done"], desc="capturing", unit="row")
    try:
        for start in range(manifest["done"], n, batch_size):
            end = min(n, start + batch_size)
            batch = TokenBatch(full.tokens[start:end], full.lengths[start:end])
            cap = handle.run(batch, read=sites, stop_after=stop_point(sites))
            for site, hook in zip(sites, hooks):
                rows = select_positions(cap[site], batch.lengths, positions).to(torch.float32).cpu().numpy()
                rows = rows.astype(NP_DTYPES[dtype])
                _write_rows(out, manifest, hook, rows, start, n)
            del cap
            manifest["done"] = end
            _write_manifest(out, manifest)
            if bar is not None:
                bar.update(end - start)
            if progress is not None:
                progress(end / n, f"captured {end}/{n} rows")
    finally:
        if bar is not None:
            bar.close()
    return ActivationStore(out, manifest)


def _write_rows(out: Path, manifest: dict, hook: str, rows: np.ndarray, start: int, n: int) -> None:
    """Write rows [start, start+len) of ``hook``'s .npy, creating the (sparse) file on first use."""
    entry = manifest["hooks"].get(hook)
    if entry is None:
        fname = hook.replace("/", "_") + ".npy"
        shape = (n, *rows.shape[1:])
        mm = np.lib.format.open_memmap(out / fname, mode="w+", dtype=rows.dtype, shape=shape)
        offset = int(mm.offset)
        del mm
        entry = manifest["hooks"][hook] = {"file": fname, "shape": list(shape), "offset": offset}
    row_bytes = rows[0].nbytes
    with open(out / entry["file"], "r+b") as f:
        f.seek(entry["offset"] + start * row_bytes)
        f.write(np.ascontiguousarray(rows).tobytes())
        f.flush()


def _read_manifest(out: Path) -> dict | None:
    try:
        return json.loads((out / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _write_manifest(out: Path, manifest: dict) -> None:
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, out / "manifest.json")

