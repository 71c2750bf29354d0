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
import stat
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from .errors import CheckpointRefused, InvalidInput, ModelUnavailable
from .handle import ModelHandle, ModelInfo

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_DIR = REPO_ROOT / "models"
#: The bundled language model the app opens when nothing else is asked for: code-gpt2 has induction heads and
#: copies arguments, so the Heads, Attention and Patching pages find something on it (stdlib-gpt2 has neither);
#: both ship a tuned lens and an SAE. See models/code-gpt2/README.md.
DEFAULT_MODEL = "code-gpt2"
#: Key in config.json that marks a directory saved by :func:`interp.native_models.save_native`.
NATIVE_KEY = "workbench_native_config"
SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "model.pth")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer.model", "vocab.txt")
#: Files beside the weights that transformers or the tokenizer may read.
READ_FILES = (*TOKENIZER_FILES, "merges.txt", "tokenizer_config.json", "special_tokens_map.json",
              "added_tokens.json", "generation_config.json", "chat_template.jinja")
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
    """'auto' / None (CUDA when present, else CPU), 'cpu', 'cuda' or 'cuda:N' that exists; else InvalidInput."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)):
        raise InvalidInput(f"Device must be text such as 'cpu' or 'cuda', got {type(device).__name__}.")
    try:
        dev = torch.device(device.strip().lower() if isinstance(device, str) else device)
    except (RuntimeError, ValueError, TypeError):
        raise InvalidInput(f"Unknown device {str(device)[:60]!r}; use 'cpu', 'cuda', 'cuda:N' or 'auto'.") from None
    if dev.type not in ("cpu", "cuda"):
        raise InvalidInput(f"Device {str(device)[:60]!r} is not supported here; use 'cpu', 'cuda' or 'auto'.")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidInput(f"Device {device!r} was asked for, but this machine has no CUDA GPU; use 'cpu'.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InvalidInput(f"Device {device!r} does not exist: this machine has {torch.cuda.device_count()} "
                               "CUDA device(s).")
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
    if not isinstance(name_or_dir, (str, os.PathLike)):
        raise InvalidInput(f"A model is named by text or a path, got {type(name_or_dir).__name__}.", _what_to_do())
    name = str(os.fspath(name_or_dir)).strip()
    if not name:
        raise InvalidInput("No model name given.", _what_to_do())
    _check_name(name)
    dev, dt = resolve_device(device), resolve_dtype(dtype)
    if name in bundled_models():
        return _load_dir(BUNDLED_DIR / name, name=name, source="bundled", device=dev, dtype=dt)
    path = Path(name).expanduser()
    try:
        exists = path.exists()
    except OSError as e:
        raise InvalidInput(f"{name[:80]!r} cannot be used as a path ({e.strerror}).") from None
    if exists or os.sep in name and not _looks_like_hub_id(name):
        if not path.is_dir():
            raise ModelUnavailable(f"{name!r} is not a model directory (it does not exist or is a file).",
                                   _what_to_do())
        return _load_dir(path, name=name, source="local", device=dev, dtype=dt)
    return _load_hub(name, device=dev, dtype=dt)


# ----------------------------------------------------------------------------- local directories

#: Longest model name or path accepted (Linux PATH_MAX is 4096, one path component at most 255 bytes).
MAX_NAME_CHARS = 1024
MAX_CONFIG_BYTES = 4 << 20


def _check_name(name: str) -> None:
    """Refuse names no filesystem or Hub could hold: NUL bytes, over-long paths or components."""
    if "\x00" in name:
        raise InvalidInput("The model name contains a NUL character.", _what_to_do())
    if len(name) > MAX_NAME_CHARS:
        raise InvalidInput(f"The model name or path is {len(name)} characters long; at most {MAX_NAME_CHARS} "
                           "are accepted.", _what_to_do())
    if any(len(part.encode("utf-8", "surrogatepass")) > 255 for part in name.split(os.sep)):
        raise InvalidInput("A part of the model path is longer than 255 bytes, which no filesystem allows.",
                           _what_to_do())


def _regular_file(path: Path, what: str) -> int:
    """The size of ``path`` if it is a regular file; ModelUnavailable for a FIFO, socket, device or directory
    (never opened, so reading can never block)."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise ModelUnavailable(f"The {what} {path} cannot be read ({e.strerror}).", _what_to_do()) from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "a directory" if stat.S_ISDIR(st.st_mode)
                else "a socket" if stat.S_ISSOCK(st.st_mode) else "a device or special file")
        raise ModelUnavailable(f"The {what} {path} is {kind}, not a regular file; it was not opened.",
                               "Replace it with the real file.")
    return st.st_size


def read_config(config_file: Path) -> dict[str, Any]:
    """config.json as a dict: a regular UTF-8 JSON file holding an object, with sane numeric sizes."""
    size = _regular_file(config_file, "config file")
    if size > MAX_CONFIG_BYTES:
        raise ModelUnavailable(f"{config_file} is {size} bytes; a model config is a few KB (at most "
                               f"{MAX_CONFIG_BYTES >> 20} MiB accepted).", "Re-save or re-download the model.")
    try:
        text = config_file.read_bytes().decode("utf-8")
        config = json.loads(text)
    except UnicodeDecodeError:
        raise ModelUnavailable(f"{config_file} is binary, not JSON text.",
                               "Re-save or re-download the model.") from None
    except (OSError, json.JSONDecodeError, RecursionError, ValueError) as e:
        raise ModelUnavailable(f"{config_file} is not valid JSON ({_first_line(e)}).",
                               "Re-save or re-download the model.") from None
    if not isinstance(config, dict):
        raise ModelUnavailable(f"{config_file} holds {type(config).__name__ if config is not None else 'null'}, "
                               "not a JSON object of settings.", "Re-save or re-download the model.")
    check_config_numbers(config, config_file)
    if NATIVE_KEY in config:
        if not isinstance(config[NATIVE_KEY], dict):
            raise ModelUnavailable(f"{config_file}: {NATIVE_KEY} must be an object of settings.",
                                   "Re-create the model with the experiment that made it.")
        check_config_numbers(config[NATIVE_KEY], config_file)
    return config


#: Sizes a config may give (Hugging Face and TransformerLens spellings): whole numbers >= 1 when present.
SIZE_KEYS = ("n_layer", "num_hidden_layers", "n_layers", "n_head", "num_attention_heads", "n_heads", "n_embd",
             "hidden_size", "d_model", "vocab_size", "d_vocab", "n_positions", "max_position_embeddings", "n_ctx",
             "intermediate_size", "n_inner", "d_mlp", "num_key_value_heads", "n_key_value_heads", "head_dim",
             "d_head")
#: Real-valued settings: finite numbers when present.
REAL_KEYS = ("layer_norm_epsilon", "layer_norm_eps", "rms_norm_eps", "eps", "initializer_range", "rope_theta",
             "attn_pdrop", "resid_pdrop", "embd_pdrop", "attention_dropout", "hidden_dropout")
MAX_SIZE = 1 << 31


def check_config_numbers(config: dict[str, Any], config_file: Path | str) -> None:
    """ModelUnavailable naming the key when a size is not a whole number >= 1 or a real setting is not finite."""
    import math

    for key in SIZE_KEYS:
        if key not in config or config[key] is None and key in ("n_inner", "d_mlp", "head_dim", "d_head",
                                                                 "num_key_value_heads", "n_key_value_heads"):
            continue
        v = config[key]
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v < MAX_SIZE:
            raise ModelUnavailable(f"{config_file}: {key} = {json.dumps(v)[:40]} is not a size (a whole number "
                                   f"from 1 to {MAX_SIZE - 1}).", "Fix the config or re-save the model.")
    for key in REAL_KEYS:
        v = config.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ModelUnavailable(f"{config_file}: {key} = {json.dumps(v)[:40]} is not a finite number.",
                                   "Fix the config or re-save the model.")


def _first_int(config: dict[str, Any], *keys: str, default: int | None = None) -> int | None:
    """The largest of the keys given (spellings of one size; which one a library reads depends on the model type,
    so the estimate takes the largest and errs towards refusing)."""
    found = [v for k in keys if isinstance(v := config.get(k), int) and not isinstance(v, bool)]
    return max(found) if found else default


def estimate_parameters(config: dict[str, Any]) -> int:
    """Parameter count a config describes (embeddings, attention with grouped KV heads, gated or plain MLP),
    from the config alone: checked against memory and the weight files BEFORE any tensor is allocated."""
    c = config.get(NATIVE_KEY) if isinstance(config.get(NATIVE_KEY), dict) else config
    n_layers = _first_int(c, "n_layer", "num_hidden_layers", "n_layers", default=0)
    d = _first_int(c, "n_embd", "hidden_size", "d_model", default=0)
    vocab = _first_int(c, "vocab_size", "d_vocab", default=0)
    heads = _first_int(c, "n_head", "num_attention_heads", "n_heads", default=1)
    kv = _first_int(c, "num_key_value_heads", "n_key_value_heads", default=heads)
    d_head = _first_int(c, "head_dim", "d_head", default=max(1, d // max(1, heads)))
    d_mlp = _first_int(c, "n_inner", "intermediate_size", "d_mlp", default=4 * d)
    ctx = _first_int(c, "n_positions", "n_ctx", default=0)  # learned position tables (rotary models have none)
    plain_mlp = ("gpt2", "gpt_neox", "gptj", "gpt_neo", "opt", "bloom", "falcon", "phi", "codegen",
                 "transformer_lens_native")
    gated = "intermediate_size" in c and c.get("model_type") not in plain_mlp  # Llama-style gate/up/down
    attn = d * heads * d_head * 2 + 2 * d * kv * d_head
    mlp = 0 if c.get("attn_only") else (3 if gated else 2) * d * d_mlp
    tied = c.get("tie_word_embeddings", True) and NATIVE_KEY not in config
    return vocab * d * (1 if tied else 2) + ctx * d + n_layers * (attn + mlp)


def check_fits_in_memory(n_params: int, dtype: torch.dtype, what: str) -> None:
    """ModelUnavailable when ``n_params`` of ``dtype`` would not fit in the memory available now."""
    import psutil

    need = n_params * torch.tensor([], dtype=dtype).element_size()
    avail = psutil.virtual_memory().available
    if need * 1.5 > avail:
        raise ModelUnavailable(f"{what} describes ~{n_params / 1e9:.2f}B parameters ({need / 2**30:.1f} GiB in "
                               f"{str(dtype).replace('torch.', '')}); only {avail / 2**30:.1f} GiB of memory is "
                               "available, so it was not loaded.",
                               "Use a smaller model, free memory, or check that config.json belongs to the weights.")


def _load_dir(path: Path, *, name: str, source: str, device: torch.device, dtype: torch.dtype) -> ModelHandle:
    path = path.resolve()
    config_file = path / "config.json"
    if not config_file.exists():
        raise ModelUnavailable(f"{path} has no config.json, so it is not a Hugging Face model directory.",
                               _what_to_do())
    config = read_config(config_file)
    native = NATIVE_KEY in config
    if not native:
        refuse_non_causal(config, config_file)
    weights = _weight_files(path)
    headers = {w: read_safetensors_header(w) for w in weights}
    _check_size_against_weights(config, headers, path, dtype)
    for f in READ_FILES:  # every small file a loader may open must be a regular file (a FIFO would block)
        if (path / f).exists() or (path / f).is_symlink():
            _regular_file(path / f, "model file")
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        raise ModelUnavailable(
            f"{path} has weights but no tokenizer files ({', '.join(TOKENIZER_FILES[:2])}...).",
            "Save the tokenizer beside the model: tokenizer.save_pretrained(<dir>).",
        )
    check_finite_weights(weights)
    if native:
        from .native_models import boot_native_dir

        bridge, tokenizer = boot_native_dir(path, config[NATIVE_KEY], device=device, dtype=dtype)
    else:
        bridge, tokenizer = _boot_hf_dir(path, weights, device=device, dtype=dtype)
    archs = config.get("architectures")
    arch = archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else "TransformerLensNative"
    return _make_handle(bridge, tokenizer, name=name, source=source, path=path, weights=weights,
                        architecture=arch, device=device, dtype=dtype)


#: Hugging Face model types that are encoders only (masked LMs) unless their config says ``is_decoder``.
ENCODER_ONLY = ("bert", "roberta", "distilbert", "albert", "electra", "deberta", "deberta-v2", "xlm-roberta",
                "camembert", "mpnet", "modernbert", "nomic_bert", "ernie", "megatron-bert", "xlm")
CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")


def refuse_non_causal(config: dict[str, Any], config_file: Path | str) -> None:
    """ModelUnavailable for encoder-decoders (T5, BART) and masked LMs (BERT): every analysis here reads a
    left-to-right language model's next-token predictions, which those models do not make."""
    model_type = str(config.get("model_type", "")).lower()
    archs = [a for a in (config.get("architectures") or []) if isinstance(a, str)] \
        if isinstance(config.get("architectures"), list) else []
    what = f"{config_file.parent if isinstance(config_file, Path) else config_file}"
    if config.get("is_encoder_decoder") is True or any("ConditionalGeneration" in a or "Seq2Seq" in a
                                                        for a in archs):
        raise ModelUnavailable(f"{what} is an encoder-decoder model ({model_type or archs[0]}), not a causal "
                               "(left-to-right) language model; the workbench analyses causal LMs only.",
                               "Use a decoder-only model such as GPT-2, Pythia or a Llama-family model.")
    causal_arch = any(a.endswith(CAUSAL_SUFFIXES) for a in archs)
    if (archs and not causal_arch) or (model_type in ENCODER_ONLY and not config.get("is_decoder")):
        kind = next((a for a in archs if not a.endswith(CAUSAL_SUFFIXES)), model_type)
        raise ModelUnavailable(f"{what} is not a causal language model ({kind}: e.g. a masked LM such as BERT "
                               "sees both sides of every token, so its scans and lenses would mean nothing).",
                               "Use a decoder-only model such as GPT-2, Pythia or a Llama-family model.")


def _weight_files(path: Path) -> list[Path]:
    """Exactly the safetensors files a load reads: the shards of model.safetensors.index.json, else
    model.safetensors. Pickle checkpoints beside them are never read; pickle-only directories are refused."""
    index = path / "model.safetensors.index.json"
    if index.exists():
        _regular_file(index, "weights index")
        try:
            weight_map = json.loads(index.read_text("utf-8")).get("weight_map")
            shards = sorted({str(v) for v in weight_map.values()})
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as e:
            raise ModelUnavailable(f"{index} is not a valid shard index ({_first_line(e)}).",
                                   "Save or download the model again.") from None
        files = [path / s for s in shards]
        bad = [s for s, f in zip(shards, files) if Path(s).name != s or not f.suffix == ".safetensors"]
        if bad or not files:
            raise ModelUnavailable(f"{index} names shards that are not safetensors files in {path}: "
                                   f"{', '.join(bad[:3]) or '(none)'}.", "Save or download the model again.")
        missing = [f.name for f in files if not f.exists()]
        if missing:
            raise ModelUnavailable(f"{path} lacks weight shards {', '.join(missing[:5])} named by its index.",
                                   "The download may be incomplete; download it again.")
        return files
    if (path / "model.safetensors").exists() or (path / "model.safetensors").is_symlink():
        return [path / "model.safetensors"]
    others = sorted(p.name for p in path.glob("*.safetensors"))
    pickles = [f for f in PICKLE_WEIGHTS if (path / f).exists()] + [p.name for p in path.glob("*.bin")]
    if pickles:
        raise CheckpointRefused(
            f"{path} holds only pickle checkpoints ({', '.join(sorted(set(pickles)))})"
            + (f" besides safetensors files that are not model weights ({', '.join(others[:3])})" if others else "")
            + "; loading them could run arbitrary code, so the workbench refuses them.",
            "Convert to safetensors where you trust the file: "
            "AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir, safe_serialization=True).",
        )
    if others:
        raise ModelUnavailable(f"{path} has safetensors files ({', '.join(others[:3])}) but no model.safetensors "
                               "(or model.safetensors.index.json), the names a model's weights are saved under.",
                               "Save the model with save_pretrained(dir, safe_serialization=True).")
    raise ModelUnavailable(f"{path} has a config.json but no weights (*.safetensors).",
                           "The download or save may be incomplete; save or download it again.")


SAFETENSORS_DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                      "BOOL": 1, "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}


def read_safetensors_header(file: Path) -> dict[str, Any]:
    """The tensor table of a safetensors file, checked without reading tensor data: a regular, non-empty file
    whose header is valid JSON and whose size is exactly header + data (so truncation is caught here)."""
    size = _regular_file(file, "weights file")
    fix = "Delete it and save or download the model again."
    if size < 8:
        raise ModelUnavailable(f"The weights file {file} is {'empty' if size == 0 else 'truncated'} ({size} bytes).",
                               fix)
    with open(file, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        if n <= 0 or n > min(size - 8, 100 << 20):
            raise ModelUnavailable(f"The weights file {file} is corrupt or truncated (header length {n}, file "
                                   f"{size} bytes).", fix)
        try:
            header = json.loads(fh.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ModelUnavailable(f"The weights file {file} has a corrupt header.", fix) from None
    if not isinstance(header, dict):
        raise ModelUnavailable(f"The weights file {file} has a corrupt header.", fix)
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    end = 0
    for key, t in tensors.items():
        try:
            lo, hi = (int(v) for v in t["data_offsets"])
            numel = 1
            for dim in t["shape"]:
                numel *= int(dim)
            width = SAFETENSORS_DTYPES[t["dtype"]]
        except (KeyError, TypeError, ValueError):
            raise ModelUnavailable(f"The weights file {file} has a corrupt entry for {key!r}.", fix) from None
        if hi - lo != numel * width or lo < 0:
            raise ModelUnavailable(f"The weights file {file} is corrupt: {key!r} does not match its shape.", fix)
        end = max(end, hi)
    if size != 8 + n + end:
        raise ModelUnavailable(f"The weights file {file} is {'truncated' if size < 8 + n + end else 'corrupt'} "
                               f"({size} bytes, its header describes {8 + n + end}).", fix)
    return tensors


def _check_size_against_weights(config: dict[str, Any], headers: dict[Path, dict[str, Any]], path: Path,
                                dtype: torch.dtype) -> None:
    """Before allocating: the config's size must fit in memory and roughly match the parameters on disk (a
    Llama-7B config over GPT-2 weights would otherwise allocate 7B random parameters)."""
    described = estimate_parameters(config)
    on_disk = 0
    for tensors in headers.values():
        for t in tensors.values():
            numel = 1
            for dim in t["shape"]:
                numel *= int(dim)
            on_disk += numel
    if described > 2 * on_disk + 1_000_000:
        raise ModelUnavailable(f"{path}/config.json describes ~{described:,} parameters but the weight files hold "
                               f"{on_disk:,}: the config does not belong to these weights.",
                               "Use the config.json saved with the weights.")
    check_fits_in_memory(max(described, on_disk), dtype, f"{path}/config.json")


def check_finite_weights(files: list[Path]) -> None:
    """ModelUnavailable naming the first tensor holding NaN or inf (read one tensor at a time)."""
    from safetensors import SafetensorError, safe_open

    for f in files:
        try:
            with safe_open(str(f), framework="pt", device="cpu") as st:
                for key in st.keys():
                    t = st.get_tensor(key)
                    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                        n_bad = int((~torch.isfinite(t)).sum())
                        raise ModelUnavailable(f"The weights file {f} holds {n_bad} NaN or infinite value(s) in "
                                               f"{key!r}: the model is broken (e.g. a diverged training run).",
                                               "Use an earlier checkpoint or retrain with a lower learning rate.")
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise ModelUnavailable(f"The weights file {f} is corrupt or truncated ({_first_line(e)}).",
                                   "Delete it and save or download the model again.") from None


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def _boot_hf_dir(path: Path, weights: list[Path], *, device: torch.device, dtype: torch.dtype):
    """Load with transformers from safetensors only (``use_safetensors=True``: a pytorch_model.bin beside them is
    never read), refuse any missing, unexpected or mis-shaped key (transformers only logs them, and fills the
    gaps with random init), then wrap the loaded model in a TransformerBridge."""
    _quiet_transformers()  # silences transformers' own missing-keys report: we check loading_info instead
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import AutoConfig, AutoModelForCausalLM

    hint = ("Check that it is a causal LM that TransformerLens supports (e.g. GPT-2, Pythia, Llama families).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hf_config = AutoConfig.from_pretrained(str(path))
            model, loading = AutoModelForCausalLM.from_pretrained(
                str(path), config=hf_config, use_safetensors=True, output_loading_info=True, dtype=dtype,
                attn_implementation="eager")
    except (OSError, ValueError, KeyError, RuntimeError, NotImplementedError, TypeError, AttributeError) as e:
        raise ModelUnavailable(f"Could not load {path} as a causal LM: {_first_line(e)}", hint) from None
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
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = model.to(device).eval()
            bridge = TransformerBridge.boot_transformers(str(path), device=str(device), dtype=dtype, hf_model=model)
    except (OSError, ValueError, KeyError, RuntimeError, NotImplementedError, TypeError, AttributeError) as e:
        raise ModelUnavailable(f"Could not load {path} as a hooked transformer: {_first_line(e)}", hint) from None
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


def parameter_count(module: torch.nn.Module) -> int:
    """Distinct parameters of ``module``, counted by the storage they live in. A ``TransformerBridge`` exposes
    GPT-2's fused ``c_attn`` weight and its q/k/v views as separate parameters, so summing ``parameters()`` counts
    the attention weights twice (code-gpt2: 3,060,096 instead of the 2,615,424 of its Hugging Face model)."""
    storages: dict[int, int] = {}
    for p in module.parameters():
        storage = p.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes() // p.element_size()
    return sum(storages.values())


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
        n_params=parameter_count(bridge), sha256=weights_sha256(weights) if weights else "",
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
