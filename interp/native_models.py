"""Save and load TransformerLens-native models (e.g. attention-only) as ordinary directories.

Layout: ``config.json`` (``{"architectures": ["TransformerLensNative"], "workbench_native_config": {...}}``),
``model.safetensors`` (the NativeModel's state dict) and Hugging Face tokenizer files, so a native
model is loaded by :func:`interp.loading.load_model` exactly like a Hugging Face directory.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformer_lens.config import TransformerBridgeConfig
from transformer_lens.model_bridge.sources._bridge_builder import build_bridge_from_module
from transformer_lens.model_bridge.sources.native import NativeModel, initialize_native_model  # registers boot_native
from transformers import AutoTokenizer

from interp.errors import ModelUnavailable

# Fields of TransformerBridgeConfig worth persisting (the rest are derived or runtime state).
_PERSISTED = ("n_layers", "d_model", "n_ctx", "d_head", "n_heads", "d_vocab", "d_mlp", "attn_only",
              "normalization_type", "act_fn", "positional_embedding_type", "eps", "final_rms", "seed",
              "default_prepend_bos")


def native_config(**fields: Any) -> Any:
    """A TransformerBridgeConfig for a TL-native model, e.g. ``native_config(n_layers=2, attn_only=True, ...)``."""
    return TransformerBridgeConfig.from_dict(dict(fields))


def build_native_model(cfg: Any, seed: int | None = None) -> torch.nn.Module:
    """A plain (un-hooked, fast to train) NativeModel with TransformerLens's initialisation."""

    if seed is not None:
        cfg.seed = seed
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        model = NativeModel(cfg)
        initialize_native_model(model, cfg)
    return model


def save_native(model: torch.nn.Module, cfg: Any, tokenizer: Any, out_dir: str | Path,
                extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (a plain NativeModel, not a bridge) + config + tokenizer to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fields = {k: getattr(cfg, k) for k in _PERSISTED if hasattr(cfg, k)}
    config = {"architectures": ["TransformerLensNative"], "model_type": "transformer_lens_native",
              "workbench_native_config": fields, **(extra or {})}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(out / "model.safetensors"))
    tokenizer.save_pretrained(str(out))
    return out


def load_native_model(path: str | Path, fields: dict[str, Any]) -> torch.nn.Module:
    """The plain NativeModel stored in ``path``; ModelUnavailable naming any missing, unexpected or mis-shaped
    tensor (never a partly random model)."""
    try:
        cfg = native_config(**fields, init_weights=False)
        model = NativeModel(cfg)
    except (TypeError, ValueError, KeyError, RuntimeError, AttributeError, ZeroDivisionError, AssertionError) as e:
        raise ModelUnavailable(f"The settings in {Path(path) / 'config.json'} do not describe a model ({e}).",
                               "Re-create the model with the experiment that made it.") from None
    weights = Path(path) / "model.safetensors"
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, RuntimeError) as e:
        raise ModelUnavailable(f"The weights in {weights} are corrupt ({e}).",
                               "Re-create the model with the experiment that made it.") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    problems = [f"{len(v)} {label} tensor(s): {', '.join(v[:6])}{' ...' if len(v) > 6 else ''}"
                for v, label in ((missing, "missing"), (unexpected, "unexpected"), (wrong, "of the wrong shape")) if v]
    if problems:
        raise ModelUnavailable(f"The weights in {weights} do not match its config.json ({'; '.join(problems)}).",
                               "Re-create the model with the experiment that made it.")
    model.load_state_dict(state, strict=True)
    return model


def boot_native_dir(path: Path, fields: dict[str, Any], *, device: torch.device,
                    dtype: torch.dtype) -> tuple[Any, Any]:
    """(bridge, tokenizer) for a directory written by :func:`save_native`."""
    model = load_native_model(path, fields).to(device=device, dtype=dtype)
    cfg = native_config(**fields, init_weights=False)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    bridge = build_bridge_from_module(model, architecture="TransformerLensNative", tl_config=cfg,
                                      tokenizer=tokenizer, dtype=dtype, device=device, model_name=path.name)
    return bridge, bridge.tokenizer or tokenizer
