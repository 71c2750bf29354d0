"""Load any model the workbench knows as a hooked TransformerBridge, or say clearly why it can't.

Three sources, tried in this order:
1. a model bundled in the repo (``models/<name>/``),
2. a directory on disk (a Hugging Face causal-LM directory, or a TL-native directory we saved),
3. a Hugging Face Hub name (``gpt2``, ``EleutherAI/pythia-70m``...): from the local HF cache when
   it is there, else from the Hub when it can be reached. Offline, this fails in seconds with
   :class:`ModelUnavailable` instead of the libraries' half-minute retry loop.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from .errors import CheckpointRefused, InvalidInput, ModelUnavailable
from .handle import ModelHandle, ModelInfo

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_DIR = REPO_ROOT / "models"
#: The bundled language model the app opens when nothing else is asked for (see models/README.md).
DEFAULT_MODEL = "stdlib-gpt2"
#: Key in config.json that marks a directory saved by :func:`interp.native_models.save_native`.
NATIVE_KEY = "workbench_native_config"
SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "model.pth")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer.model", "vocab.txt")
DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
          "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def bundled_models() -> list[str]:
    """Names of the models shipped in ``models/`` (directories with a config.json)."""
    if not BUNDLED_DIR.is_dir():
        return []
    return sorted(p.name for p in BUNDLED_DIR.iterdir() if (p / "config.json").is_file())


def default_model() -> str:
    """The model the app and experiments use when none is named: the bundled LM if shipped."""
    names = bundled_models()
    if DEFAULT_MODEL in names:
        return DEFAULT_MODEL
    if names:
        return names[0]
    raise ModelUnavailable(
        "No bundled model is present in models/.",
        "Train one with `python -m experiments run train-text-lm`, or pass --model <hub name or directory>.",
    )


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[str(dtype).lower()]
    except KeyError:
        raise InvalidInput(f"Unknown dtype {dtype!r}; use one of float32, float16, bfloat16.") from None


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInput(f"Device {device!r} was asked for, but this machine has no CUDA GPU; use 'cpu'.")
    return dev


def load_model(
    name_or_dir: str | os.PathLike,
    *,
    device: str | torch.device | None = "cpu",
    dtype: str | torch.dtype | None = "float32",
) -> ModelHandle:
    """Load a bundled name, a local directory or a Hub name into a :class:`ModelHandle`.

    Raises :class:`ModelUnavailable` (what was tried, why it failed, what to do) or
    :class:`CheckpointRefused` for pickle checkpoints; never retries.
    """
    name = str(name_or_dir).strip()
    if not name:
        raise InvalidInput("No model name given.", _what_to_do())
    dev, dt = resolve_device(device), resolve_dtype(dtype)
    if name in bundled_models():
        return _load_dir(BUNDLED_DIR / name, name=name, source="bundled", device=dev, dtype=dt)
    path = Path(name).expanduser()
    if path.exists() or os.sep in name and not _looks_like_hub_id(name):
        if not path.is_dir():
            raise ModelUnavailable(f"{name!r} is not a model directory (it does not exist or is a file).",
                                   _what_to_do())
        return _load_dir(path, name=name, source="local", device=dev, dtype=dt)
    return _load_hub(name, device=dev, dtype=dt)


# ----------------------------------------------------------------------------- local directories


def _load_dir(path: Path, *, name: str, source: str, device: torch.device, dtype: torch.dtype) -> ModelHandle:
    path = path.resolve()
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelUnavailable(f"{path} has no config.json, so it is not a Hugging Face model directory.",
                               _what_to_do())
    try:
        config = json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ModelUnavailable(f"{config_file} is not valid JSON ({e}).", "Re-save or re-download the model.") from None
    weights = _weight_files(path)
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        raise ModelUnavailable(
            f"{path} has weights but no tokenizer files ({', '.join(TOKENIZER_FILES[:2])}...).",
            "Save the tokenizer beside the model: tokenizer.save_pretrained(<dir>).",
        )
    if NATIVE_KEY in config:
        from .native_models import boot_native_dir

        bridge, tokenizer = boot_native_dir(path, config[NATIVE_KEY], device=device, dtype=dtype)
    else:
        bridge, tokenizer = _boot_hf_dir(path, weights, device=device, dtype=dtype)
    return _make_handle(bridge, tokenizer, name=name, source=source, path=path, weights=weights,
                        architecture=(config.get("architectures") or ["TransformerLensNative"])[0],
                        device=device, dtype=dtype)


def _weight_files(path: Path) -> list[Path]:
    """The safetensors files of ``path``; refuses pickle-only checkpoints and empty directories."""
    safes = sorted(path.glob("*.safetensors"))
    if safes:
        return safes
    pickles = [f for f in PICKLE_WEIGHTS if (path / f).exists()] + [p.name for p in path.glob("*.bin")]
    if pickles:
        raise CheckpointRefused(
            f"{path} holds only pickle checkpoints ({', '.join(sorted(set(pickles)))}); loading them could run "
            "arbitrary code, so the workbench refuses them.",
            "Convert to safetensors where you trust the file: "
            "AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir, safe_serialization=True).",
        )
    raise ModelUnavailable(f"{path} has a config.json but no weights (*.safetensors).",
                           "The download or save may be incomplete; save or download it again.")


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def _boot_hf_dir(path: Path, weights: list[Path], *, device: torch.device, dtype: torch.dtype):
    _quiet_transformers()
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    for w in weights:  # validate every shard's header and tensors before handing to transformers
        try:
            load_file(str(w), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise ModelUnavailable(f"The weights file {w} is corrupt or truncated ({e}).",
                                   "Delete it and save or download the model again.") from None
    from transformer_lens.model_bridge import TransformerBridge

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bridge = TransformerBridge.boot_transformers(str(path), device=str(device), dtype=dtype)
    except (OSError, ValueError, KeyError, RuntimeError, NotImplementedError) as e:
        raise ModelUnavailable(f"Could not load {path} as a hooked transformer: {_first_line(e)}",
                               "Check that it is a causal LM that TransformerLens supports (e.g. GPT-2, "
                               "Pythia, Llama families).") from None
    return bridge, bridge.tokenizer


# ----------------------------------------------------------------------------- the Hub


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def hub_reachable(timeout: float = 2.0) -> bool:
    """One TCP connect to the Hub endpoint (no retries); False when HF_HUB_OFFLINE is set."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout).close()
        return True
    except OSError:
        return False


def cached_snapshot(repo_id: str) -> Path | None:
    """The local HF-cache snapshot directory of ``repo_id`` if its config.json is cached."""
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # malformed repo ids raise validation errors: treat as not cached
        return None
    return Path(hit).parent if isinstance(hit, str) else None


def _load_hub(name: str, *, device: torch.device, dtype: torch.dtype) -> ModelHandle:
    snapshot = cached_snapshot(name)
    if snapshot is not None and any(snapshot.glob("*.safetensors")):
        return _load_dir(snapshot, name=name, source="hub", device=device, dtype=dtype)
    if snapshot is not None:
        half = "has only part of it (config but no safetensors weights)"
    else:
        half = "does not have it"
    if not hub_reachable():
        raise ModelUnavailable(
            f"Model {name!r} is not bundled, is not a directory, and the Hugging Face Hub cannot be reached "
            f"(offline); the local Hugging Face cache {half}.",
            _what_to_do(),
        )
    from transformer_lens.model_bridge import TransformerBridge

    _quiet_transformers()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bridge = TransformerBridge.boot_transformers(name, device=str(device), dtype=dtype)
    except Exception as e:  # the Hub answers unknown names with assorted exception types
        raise ModelUnavailable(f"Could not load {name!r} from the Hugging Face Hub: {_first_line(e)}",
                               _what_to_do()) from None
    snapshot = cached_snapshot(name)
    weights = sorted(snapshot.glob("*.safetensors")) if snapshot else []
    arch = (getattr(bridge.original_model.config, "architectures", None) or ["?"])[0]
    return _make_handle(bridge, bridge.tokenizer, name=name, source="hub", path=snapshot, weights=weights,
                        architecture=arch, device=device, dtype=dtype)


# ----------------------------------------------------------------------------- shared


def weights_sha256(files: list[Path]) -> str:
    """sha256 over the weight files' bytes, in sorted name order (one digest for sharded models)."""
    h = hashlib.sha256()
    for f in sorted(files):
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


def _make_handle(bridge: Any, tokenizer: Any, *, name: str, source: str, path: Path | None, weights: list[Path],
                 architecture: str, device: torch.device, dtype: torch.dtype) -> ModelHandle:
    if tokenizer is None:
        raise ModelUnavailable(f"{name!r} loaded without a tokenizer.", "Save tokenizer files beside the weights.")
    bridge.eval()
    cfg = bridge.cfg
    info = ModelInfo(
        name=name, source=source, path=str(path) if path else None, architecture=architecture,
        n_layers=int(cfg.n_layers), n_heads=int(cfg.n_heads), d_model=int(cfg.d_model), d_head=int(cfg.d_head),
        d_vocab=int(cfg.d_vocab), n_ctx=int(cfg.n_ctx), attn_only=bool(getattr(cfg, "attn_only", False)),
        n_params=sum(p.numel() for p in bridge.parameters()), sha256=weights_sha256(weights) if weights else "",
        dtype=str(dtype).replace("torch.", ""), device=str(device),
    )
    return ModelHandle(bridge=bridge, tokenizer=tokenizer, info=info)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _what_to_do() -> str:
    names = ", ".join(bundled_models()) or "(none yet: run `python -m experiments run train-text-lm`)"
    return (f"Bundled models available offline: {names}. Or give a directory holding a Hugging Face causal LM "
            "(config.json, *.safetensors, tokenizer files). Hub names such as 'gpt2' need a network connection "
            "or a prior download into the Hugging Face cache.")
