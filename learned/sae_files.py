"""Read and write sparse autoencoders in SAELens's on-disk format, so they travel to SAELens and Neuronpedia tools.

An SAE is a folder of two files (SAELens ``SAE.save_model`` / ``SAE.load_from_disk``):

- ``sae_weights.safetensors``: float32 tensors ``W_enc`` [d_in, d_sae], ``b_enc`` [d_sae],
  ``W_dec`` [d_sae, d_in], ``b_dec`` [d_in]. The encoder is ``act((x - b_dec) @ W_enc + b_enc)`` when
  ``apply_b_dec_to_input`` is true, the decoder ``f @ W_dec + b_dec``.
- ``cfg.json``: ``architecture`` (``"standard"`` = ReLU, ``"topk"``), ``d_in``, ``d_sae``, ``dtype``, ``device``,
  ``model_name``, ``hook_name`` (a TransformerLens hook name, e.g. ``blocks.2.hook_resid_pre``), ``hook_layer``,
  ``hook_head_index`` (null), ``activation_fn_str`` (``"relu"``/``"topk"``), ``activation_fn_kwargs``
  (``{"k": K}`` for TopK, as SAELens < 6 read it), ``k`` (TopK, SAELens 6's ``TopKSAEConfig``),
  ``apply_b_dec_to_input``, ``finetuning_scaling_factor`` (false), ``context_size``, ``prepend_bos``,
  ``normalize_activations`` (``"none"``: any input scaling used in training is folded into the weights),
  ``dataset_path``, ``dataset_trust_remote_code``, ``sae_lens_training_version`` (null), ``neuronpedia_id``,
  ``model_from_pretrained_kwargs``, ``reshape_activations`` (``"none"``), and SAELens 6's ``metadata``
  block repeating ``model_name``/``hook_name``/``hook_layer``/``context_size``/``prepend_bos``. SAELens ignores
  keys it does not know; ours is ``workbench`` (how it was trained and its measured metrics).

SAEs trained on a bundled model live in ``models/<model>/saes/<name>/`` (with a ``README.md`` card).
Only safetensors are read (never pickles); writes are atomic per file (temporary name + rename).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from interp.errors import InvalidInput
from interp.files import atomic_write_bytes
from interp.loading import BUNDLED_DIR
from learned.sae import SparseAutoencoder, check_tensors, config_from_saelens
from learned.sidecars import SidecarUnreadable, read_sidecar, write_sidecar

CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"
_HOW = "Train one with `python -m experiments run train-sae`."


def write_sae_dir(path: str | Path, cfg: dict[str, Any], weights: dict[str, torch.Tensor],
                  card: str | None = None) -> Path:
    """Write ``cfg.json`` + ``sae_weights.safetensors`` (+ ``README.md`` card) as the folder ``path``, checked first
    and written atomically through :mod:`learned.sidecars` (a reader sees the old folder or the new one)."""
    check_tensors(config_from_saelens(cfg), weights)
    tensors = {k: v.detach().to(torch.float32) for k, v in weights.items()}
    out = write_sidecar(path, cfg, tensors, WEIGHTS_FILE, config_file=CFG_FILE, metadata={"format": "pt"})
    if card is not None:
        atomic_write_bytes(out / "README.md", card.encode())
    return out


def checked_path(path: object) -> Path:
    """``path`` as a Path if it can name a folder: text or a Path, no NUL byte, at most 4096 characters (names 255);
    else InvalidInput (the OS would raise ValueError or 'file name too long')."""
    if not isinstance(path, (str, Path)):
        raise InvalidInput(f"An SAE folder is a path, got {type(path).__name__}.", _HOW)
    text = str(path)
    if not text.strip() or "\x00" in text or len(text) > 4096 or any(len(part) > 255 for part in Path(text).parts):
        raise InvalidInput(f"{text[:60]!r} is not a usable folder path (empty, too long or holding a NUL byte).", _HOW)
    return Path(text).expanduser()


def read_sae_dir(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(cfg, weights)`` of an SAE folder, checked; a missing, damaged or inconsistent one is InvalidInput. Reads
    regular files only (a FIFO or a device is never opened) and safetensors only (never pickles)."""
    p = checked_path(path)
    try:
        cfg, weights = read_sidecar(p, WEIGHTS_FILE, CFG_FILE)
    except SidecarUnreadable as e:
        missing = not (p / CFG_FILE).exists() or not (p / WEIGHTS_FILE).exists()
        if missing:
            raise InvalidInput(f"{p} is not an SAE folder: it needs {CFG_FILE} and {WEIGHTS_FILE} (SAELens format).",
                               _HOW) from None
        raise InvalidInput(f"The SAE in {p} is damaged: {e}", _HOW) from None
    try:
        check_tensors(config_from_saelens(cfg), weights)
    except InvalidInput as e:
        raise InvalidInput(f"{p}: {e.message}", e.hint) from None
    return cfg, weights


def load_sae(path: str | Path) -> SparseAutoencoder:
    """The SAE in folder ``path`` (SAELens format), in eval mode."""
    cfg, weights = read_sae_dir(path)
    return SparseAutoencoder.from_saelens(cfg, weights).eval()


def model_sae_dir(model: str | Path) -> Path:
    """Where a model's SAEs live: ``models/<name>/saes`` for a bundled name, ``<dir>/saes`` for a directory."""
    p = Path(model).expanduser()
    if p.is_dir():
        return p / "saes"
    return BUNDLED_DIR / str(model) / "saes"


def list_saes(model: str | Path) -> list[Path]:
    """SAE folders shipped beside a model (sorted by name); [] when it has none."""
    root = model_sae_dir(model)
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if (d / CFG_FILE).is_file() and (d / WEIGHTS_FILE).is_file())
