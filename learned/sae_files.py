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

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from interp.errors import InvalidInput
from interp.files import atomic_write_bytes
from interp.loading import BUNDLED_DIR

CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"
REQUIRED_CFG = ("d_in", "d_sae", "hook_name")
WEIGHT_SHAPES = {"W_enc": ("d_in", "d_sae"), "b_enc": ("d_sae",), "W_dec": ("d_sae", "d_in"), "b_dec": ("d_in",)}


def write_sae_dir(path: str | Path, cfg: dict[str, Any], weights: dict[str, torch.Tensor],
                  card: str | None = None) -> Path:
    """Write ``cfg.json`` + ``sae_weights.safetensors`` (+ ``README.md`` card) into ``path``; validated first."""
    _validate(cfg, weights, str(path))
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to(torch.float32).contiguous().cpu() for k, v in weights.items()}
    atomic_write_bytes(out / WEIGHTS_FILE, save(tensors, metadata={"format": "pt"}))
    atomic_write_bytes(out / CFG_FILE, (json.dumps(cfg, indent=1) + "\n").encode())
    if card is not None:
        atomic_write_bytes(out / "README.md", card.encode())
    return out


def read_sae_dir(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(cfg, weights)`` of an SAE folder; a missing, damaged or inconsistent one is :class:`InvalidInput`."""
    p = Path(path).expanduser()
    if not (p / CFG_FILE).is_file() or not (p / WEIGHTS_FILE).is_file():
        raise InvalidInput(f"{p} is not an SAE folder: it needs {CFG_FILE} and {WEIGHTS_FILE} (SAELens format).",
                           "Train one with `python -m experiments run train-sae`.")
    try:
        cfg = json.loads((p / CFG_FILE).read_text())
    except (OSError, ValueError) as e:
        raise InvalidInput(f"{p / CFG_FILE} is not readable JSON ({e}).") from None
    try:
        weights = load_file(str(p / WEIGHTS_FILE))
    except (SafetensorError, OSError, ValueError) as e:
        raise InvalidInput(f"{p / WEIGHTS_FILE} is damaged ({e}).") from None
    _validate(cfg, weights, str(p))
    return cfg, weights


def _validate(cfg: Any, weights: dict[str, torch.Tensor], where: str) -> None:
    if not isinstance(cfg, dict):
        raise InvalidInput(f"The SAE config of {where} is not a JSON object.")
    missing = [k for k in REQUIRED_CFG if k not in cfg and k not in (cfg.get("metadata") or {})]
    if missing:
        raise InvalidInput(f"The SAE config of {where} lacks {', '.join(missing)}.")
    dims = {"d_in": int(cfg["d_in"]), "d_sae": int(cfg["d_sae"])}
    for name, shape in WEIGHT_SHAPES.items():
        if name not in weights:
            raise InvalidInput(f"The SAE weights of {where} lack {name!r}.")
        want = tuple(dims[d] for d in shape)
        if tuple(weights[name].shape) != want:
            raise InvalidInput(f"SAE weight {name} of {where} has shape {tuple(weights[name].shape)}, expected {want}.")
        if not torch.isfinite(weights[name]).all():
            raise InvalidInput(f"SAE weight {name} of {where} holds NaN or infinite values.")


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
