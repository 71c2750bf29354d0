"""Load any model the workbench knows behind the model interface, or say clearly why it can't.

Three sources, tried in this order:
1. a model bundled in the repo (``models/<name>/``),
2. a directory on disk (a Hugging Face causal-LM directory, or a TL-native directory we saved),
3. a Hugging Face Hub name (``gpt2``, ``EleutherAI/pythia-70m``...): from the local HF cache when
   it is there, else from the Hub when it can be reached. Offline, this fails in seconds with
   :class:`ModelUnavailable` instead of the libraries' half-minute retry loop.
Every directory passes the checks of :mod:`.checks` before a tensor is allocated; then a backend boots it.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any, get_args

import torch
from transformers import AutoConfig, AutoModelForCausalLM
from transformers.utils import logging as hf_logging

from interp.backends import bridge as bridge_backend
from interp.errors import InvalidInput, ModelUnavailable
from interp.loading.checks import (
    NATIVE_KEY,
    READ_FILES,
    TOKENIZER_FILES,
    check_finite_weights,
    check_name,
    check_size_against_weights,
    first_line,
    read_config,
    read_safetensors_header,
    refuse_non_causal,
    regular_file,
    weight_files,
)
from interp.loading.devices import resolve_device, resolve_dtype
from interp.loading.hub import cached_snapshot, download_snapshot, hub_reachable, looks_like_hub_id
from interp.model import LoadBackend, Model
from interp.native_models import boot_native_dir

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
BUNDLED_DIR = REPO_ROOT / "models"
#: The bundled language model the app opens when nothing else is asked for: code-gpt2 has induction heads and
#: copies arguments, so the Heads, Attention and Patching pages find something on it (stdlib-gpt2 has neither);
#: both ship a tuned lens and an SAE. See models/code-gpt2/README.md.
DEFAULT_MODEL = "code-gpt2"


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


BACKENDS: tuple[str, ...] = get_args(LoadBackend)


def check_backend(backend: object) -> LoadBackend:
    """``backend`` if it names a backend ``load_model`` knows, else InvalidInput listing them."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        shown = repr(backend)[:40]
        raise InvalidInput(f"Unknown backend {shown}; choose one of {', '.join(BACKENDS)}.",
                           "bridge: TransformerLens (default); nnsight: nnsight in this process; ndif: nnsight on "
                           "NDIF's servers (needs NDIF_API_KEY).")
    return backend  # type: ignore[return-value]


def load_model(
    name_or_dir: str | os.PathLike,
    *,
    device: str | torch.device | None = "cpu",
    dtype: str | torch.dtype | None = "float32",
    backend: LoadBackend = "bridge",
) -> Model:
    """Load a bundled name, a local directory or a Hub name behind the model interface (:class:`Model`).

    ``backend``: ``"bridge"`` (TransformerLens, the default), ``"nnsight"`` (any Hugging Face causal LM, in
    this process) or ``"ndif"`` (a Hub model that NDIF hosts, run on NDIF's servers; the key comes from
    ``NDIF_API_KEY``). Raises :class:`ModelUnavailable` (what was tried, why it failed, what to do) or
    :class:`CheckpointRefused` for pickle checkpoints; never retries.
    """
    backend = check_backend(backend)
    if not isinstance(name_or_dir, (str, os.PathLike)):
        raise InvalidInput(f"A model is named by text or a path, got {type(name_or_dir).__name__}.", _what_to_do())
    name = str(os.fspath(name_or_dir)).strip()
    if not name:
        raise InvalidInput("No model name given.", _what_to_do())
    check_name(name, _what_to_do())
    if backend == "ndif":
        from interp.backends import ndif

        return ndif.load_remote(name, local_names=bundled_models())
    dev, dt = resolve_device(device), resolve_dtype(dtype)
    if name in bundled_models():
        return _load_dir(BUNDLED_DIR / name, name=name, source="bundled", device=dev, dtype=dt, backend=backend)
    path = Path(name).expanduser()
    try:
        exists = path.exists()
    except OSError as e:
        raise InvalidInput(f"{name[:80]!r} cannot be used as a path ({e.strerror}).") from None
    if exists or os.sep in name and not looks_like_hub_id(name):
        if not path.is_dir():
            raise ModelUnavailable(f"{name!r} is not a model directory (it does not exist or is a file).",
                                   _what_to_do())
        return _load_dir(path, name=name, source="local", device=dev, dtype=dt, backend=backend)
    return _load_hub(name, device=dev, dtype=dt, backend=backend)


def _load_dir(path: Path, *, name: str, source: str, device: torch.device, dtype: torch.dtype,
              backend: LoadBackend = "bridge") -> Model:
    path = path.resolve()
    config_file = path / "config.json"
    if not config_file.exists():
        raise ModelUnavailable(f"{path} has no config.json, so it is not a Hugging Face model directory.",
                               _what_to_do())
    config = read_config(config_file)
    native = NATIVE_KEY in config
    if not native:
        refuse_non_causal(config, config_file)
    weights = weight_files(path)
    headers = {w: read_safetensors_header(w) for w in weights}
    check_size_against_weights(config, headers, path, dtype)
    for f in READ_FILES:  # every small file a loader may open must be a regular file (a FIFO would block)
        if (path / f).exists() or (path / f).is_symlink():
            regular_file(path / f, "model file")
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        raise ModelUnavailable(
            f"{path} has weights but no tokenizer files ({', '.join(TOKENIZER_FILES[:2])}...).",
            "Save the tokenizer beside the model: tokenizer.save_pretrained(<dir>).",
        )
    check_finite_weights(weights)
    keys = {k for h in headers.values() for k in h if k != "__metadata__"}
    archs = config.get("architectures")
    arch = archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else "TransformerLensNative"
    if backend == "nnsight":
        if native:
            raise ModelUnavailable(f"{name} is a TransformerLens-native model, not a Hugging Face one; the nnsight "
                                   "backend runs Hugging Face causal LMs.",
                                   "Run it on TransformerLens's bridge (the default backend).")
        from interp.backends import nnsight as nnsight_backend

        return nnsight_backend.boot_dir(path, load_hf_causal_lm(path, device=device, dtype=dtype, keys=keys), name=name,
                                        source=source, sha256=weights_sha256(weights), architecture=arch,
                                        device=device, dtype=dtype)
    if native:
        bridge, tokenizer = boot_native_dir(path, config[NATIVE_KEY], device=device, dtype=dtype)
    else:
        bridge, tokenizer = bridge_backend.boot_hf_model(
            path, load_hf_causal_lm(path, device=device, dtype=dtype, keys=keys), device=device, dtype=dtype,
            hint=HF_HINT)
    return bridge_backend.make_model(bridge, tokenizer, name=name, source=source, path=path,
                                     sha256=weights_sha256(weights), architecture=arch, device=device, dtype=dtype)


HF_HINT = "Check that it is a causal LM that TransformerLens supports (e.g. GPT-2, Pythia, Llama families)."


def quiet_transformers() -> None:
    """Silence transformers' progress bars and missing-keys report (the checks here report problems instead)."""
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def check_key_names(path: Path, hf_config: Any, keys: set[str]) -> None:
    """Before any weight is allocated: the tensor names in the weight files must be the ones the config's
    architecture has (its skeleton is built on the meta device, which costs no memory). A Llama config over GPT-2
    weights would otherwise build a full random Llama, load nothing into it and only then be refused."""
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            skeleton = AutoModelForCausalLM.from_config(hf_config)
    except Exception:  # noqa: BLE001 - a config transformers cannot build: from_pretrained says why
        return
    prefix = f"{getattr(skeleton, 'base_model_prefix', '')}."

    def bare(k: str) -> str:
        return k[len(prefix):] if prefix != "." and k.startswith(prefix) else k

    expected = {bare(k) for k in skeleton.state_dict()}
    found = {bare(k) for k in keys}
    if not found or len(found & expected) >= 0.5 * len(found):
        return
    odd = sorted(found - expected)[:3]
    want = sorted(expected - found)[:3]
    arch = type(skeleton).__name__
    raise ModelUnavailable(f"{path}: the weight files hold tensors that a {arch} (what config.json describes) does "
                           f"not have, e.g. {', '.join(odd)}; it expects e.g. {', '.join(want)}. The config does not "
                           "belong to these weights, so nothing was loaded.",
                           "Use the config.json saved with the weights.")


def load_hf_causal_lm(path: Path, *, device: torch.device, dtype: torch.dtype,
                      keys: set[str] | None = None) -> torch.nn.Module:
    """The Hugging Face causal LM in ``path``, from safetensors only (``use_safetensors=True``: a pytorch_model.bin
    beside them is never read), in eval mode. Any missing, unexpected or mis-shaped key is refused (transformers
    only logs them, and fills the gaps with random init); with ``keys`` (the weight files' tensor names) a config
    of another architecture is refused before anything is allocated."""
    quiet_transformers()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hf_config = AutoConfig.from_pretrained(str(path))
    except (OSError, ValueError, KeyError, RuntimeError, NotImplementedError, TypeError, AttributeError) as e:
        raise ModelUnavailable(f"Could not load {path} as a causal LM: {first_line(e)}", HF_HINT) from None
    if keys is not None:
        check_key_names(path, hf_config, keys)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, loading = AutoModelForCausalLM.from_pretrained(
                str(path), config=hf_config, use_safetensors=True, output_loading_info=True, dtype=dtype,
                attn_implementation="eager")
    except (OSError, ValueError, KeyError, RuntimeError, NotImplementedError, TypeError, AttributeError) as e:
        raise ModelUnavailable(f"Could not load {path} as a causal LM: {first_line(e)}", HF_HINT) from None
    problems = []
    for key, label in (("missing_keys", "missing"), ("unexpected_keys", "unexpected"),
                       ("mismatched_keys", "of the wrong shape")):
        found = sorted(str(k if isinstance(k, str) else k[0]) for k in (loading.get(key) or []))
        if found:
            shown = ", ".join(found[:6]) + (f" and {len(found) - 6} more" if len(found) > 6 else "")
            problems.append(f"{len(found)} {label} tensor(s): {shown}")
    if problems:
        raise ModelUnavailable(f"The weights in {path} do not match its config.json ({'; '.join(problems)}); "
                               "it was not loaded (the gaps would be filled with random numbers).",
                               "Save the model again with save_pretrained, or use the config saved with the weights.")
    return model.to(device).eval()


def _load_hub(name: str, *, device: torch.device, dtype: torch.dtype, backend: LoadBackend = "bridge") -> Model:
    snapshot = cached_snapshot(name)
    if snapshot is not None and any(snapshot.glob("*.safetensors")):
        return _load_dir(snapshot, name=name, source="hub", device=device, dtype=dtype, backend=backend)
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
    if backend == "nnsight":
        return _load_dir(download_snapshot(name, _what_to_do()), name=name, source="hub", device=device,
                         dtype=dtype, backend=backend)
    bridge, tokenizer, arch = bridge_backend.boot_hub(name, device=device, dtype=dtype, hint=_what_to_do())
    snapshot = cached_snapshot(name)
    weights = sorted(snapshot.glob("*.safetensors")) if snapshot else []
    return bridge_backend.make_model(bridge, tokenizer, name=name, source="hub", path=snapshot,
                                     sha256=weights_sha256(weights) if weights else "", architecture=arch,
                                     device=device, dtype=dtype)


# ----------------------------------------------------------------------------- shared


def weights_sha256(files: list[Path]) -> str:
    """sha256 over the weight files' bytes, in sorted name order (one digest for sharded models)."""
    h = hashlib.sha256()
    for f in sorted(files):
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


def _what_to_do() -> str:
    names = ", ".join(bundled_models()) or "(none yet: run `python -m experiments run train-text-lm`)"
    return (f"Bundled models available offline: {names}. Or give a directory holding a Hugging Face causal LM "
            "(config.json, *.safetensors, tokenizer files). Hub names such as 'gpt2' need a network connection "
            "or a prior download into the Hugging Face cache.")
