"""Tuned lens (Belrose et al. 2023): one affine translator per layer, trained so the lens matches the final output.

Each translator maps the residual stream ``h`` of one layer to ``h + A h + b`` before the model's own final
norm and unembedding; ``A`` and ``b`` start at zero, so an untrained tuned lens is the logit lens. Training
minimises KL(final || lens) over text (``training.tuned_lens``); decoding and evaluation are
``probes.lens``. Files: ``<dir>/config.json`` + ``<dir>/params.safetensors`` (never pickles), by default
``<model dir>/tuned_lens/``, read and written through ``learned.sidecars``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from interp.errors import LensUnavailable
from interp.model import Model
from interp.sites import Site
from learned.sidecars import SidecarUnreadable, has_sidecar, read_sidecar, sidecar_dir, write_sidecar

FORMAT = "workbench-tuned-lens"
VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "params.safetensors"
LENS_DIRNAME = "tuned_lens"


class TunedLens(torch.nn.Module):
    """Translators for resid_pre of every block; the final residual stream is read as is (identity)."""

    def __init__(self, n_layers: int, d_model: int, meta: dict[str, Any] | None = None):
        super().__init__()
        self.translators = torch.nn.ModuleList(torch.nn.Linear(d_model, d_model) for _ in range(n_layers))
        for t in self.translators:  # identity at start: h + 0 h + 0
            torch.nn.init.zeros_(t.weight)
            torch.nn.init.zeros_(t.bias)
        self.meta: dict[str, Any] = dict(meta or {})

    @classmethod
    def for_model(cls, handle: Model) -> TunedLens:
        """An identity (untrained) lens shaped for ``handle``, carrying the model's identity in ``meta``."""
        info = handle.info
        layers = [str(Site("resid_pre", i)) for i in range(info.n_layers)]
        layers.append(str(Site("resid_post", info.n_layers - 1)))
        return cls(info.n_layers, info.d_model, {"model": info.name, "model_sha256": info.sha256,
                                                  "layer_names": layers})

    @property
    def n_layers(self) -> int:
        return len(self.translators)

    @property
    def d_model(self) -> int:
        return self.translators[0].in_features

    def forward(self, h: torch.Tensor, index: int) -> torch.Tensor:  # [..., d_model] -> [..., d_model]
        """Translate the stream of lens layer ``index``; layers past the last translator are left as they are."""
        if index >= len(self.translators):
            return h
        return h + self.translators[index](h)


# ----------------------------------------------------------------------------- files (via learned.sidecars)


def default_lens_dir(handle: Model) -> Path:
    """``<model dir>/tuned_lens`` for bundled/local models; Hub models: ``.cache/tuned-lens/<name>``."""
    return sidecar_dir(handle.info, LENS_DIRNAME)


def find_tuned_lens(handle: Model, directory: str | Path | None = None) -> Path | None:
    """The directory holding this model's tuned lens (config.json present), or None when there is none."""
    d = Path(directory) if directory else default_lens_dir(handle)
    return d if has_sidecar(d, CONFIG_FILE) else None


def lens_files(lens: TunedLens, extra: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(config, tensors)`` to write with :func:`save_tuned_lens`: the format, shape, meta and float32 weights."""
    config = {"format": FORMAT, "version": VERSION, "n_layers": lens.n_layers, "d_model": lens.d_model,
              **lens.meta, **(extra or {})}
    return config, {k: v.detach().float() for k, v in lens.state_dict().items()}


def save_tuned_lens(lens: TunedLens, directory: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``config.json`` + ``params.safetensors`` as ``directory``, atomically (through learned.sidecars)."""
    config, tensors = lens_files(lens, extra)
    return write_sidecar(directory, config, tensors, WEIGHTS_FILE, config_file=CONFIG_FILE,
                         metadata={"format": FORMAT})


def _how_to_train(handle: Model) -> str:
    return f"Train one: python -m experiments run tuned-lens --model {handle.info.name}"


def load_tuned_lens(handle: Model, directory: str | Path | None = None, *,
                    check_weights: bool = True) -> TunedLens:
    """Load the tuned lens of ``handle`` (default location, or ``directory``), checked against the model.

    Raises :class:`LensUnavailable` when there is none, when a file is corrupt, or when the lens was trained
    for another model (shape, or weights sha256 with ``check_weights``). Reads safetensors only.
    """
    d = Path(directory) if directory else default_lens_dir(handle)
    if not has_sidecar(d, CONFIG_FILE):
        raise LensUnavailable(f"{handle.info.name} has no tuned lens (looked for {d / CONFIG_FILE}).",
                              _how_to_train(handle))
    try:
        config, state = read_sidecar(d, WEIGHTS_FILE, CONFIG_FILE)
    except SidecarUnreadable as e:
        raise LensUnavailable(f"The tuned lens in {d} cannot be read: {e}", _how_to_train(handle)) from None
    return lens_from_files(handle, config, state, where=str(d), check_weights=check_weights)


def lens_from_files(handle: Model, config: dict[str, Any], state: dict[str, torch.Tensor], *, where: str,
                    check_weights: bool = True) -> TunedLens:
    """Build a :class:`TunedLens` from a sidecar's config and tensors, refusing one made for another model."""
    name = handle.info.name
    if config.get("format") != FORMAT:
        raise LensUnavailable(f"{where} is not a workbench tuned lens (format {config.get('format')!r}).",
                              _how_to_train(handle))
    n, dm = handle.info.n_layers, handle.info.d_model
    if config.get("n_layers") != n or config.get("d_model") != dm:
        raise LensUnavailable(
            f"The tuned lens in {where} is for a model with {config.get('n_layers')} layers and d_model "
            f"{config.get('d_model')}, but {name} has {n} layers and d_model {dm}.", _how_to_train(handle))
    sha = config.get("model_sha256")
    if check_weights and sha and handle.info.sha256 and sha != handle.info.sha256:
        raise LensUnavailable(
            f"The tuned lens in {where} was trained for other weights (sha256 {sha[:12]}..., this model "
            f"{handle.info.sha256[:12]}...); its translators would not fit.", _how_to_train(handle))
    meta = {k: v for k, v in config.items() if k not in ("format", "version", "n_layers", "d_model")}
    lens = TunedLens(n, dm, meta)
    expected = {k: tuple(v.shape) for k, v in lens.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if got != expected:
        missing = sorted(set(expected) - set(got))
        wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
        raise LensUnavailable(f"The tuned lens weights in {where} do not fit {name}: missing {missing[:3]}, "
                              f"wrong shape {wrong[:3]}, unexpected {sorted(set(got) - set(expected))[:3]}.",
                              _how_to_train(handle))
    if not all(torch.isfinite(v).all() for v in state.values()):
        raise LensUnavailable(f"The tuned lens weights in {where} hold NaN or infinite values.", _how_to_train(handle))
    lens.load_state_dict(state)
    return lens.to(handle.device).eval()


def translator_norms(lens: TunedLens) -> list[float]:
    """Frobenius norm of each translator's A (0 = the logit lens at that layer): how much the lens changes."""
    return [math.sqrt(float(t.weight.detach().pow(2).sum())) for t in lens.translators]
