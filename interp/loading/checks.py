"""Checks on a model directory before anything is allocated: names, config.json, weight files (safetensors only,
headers, sizes against memory, NaN/inf) and the kind of model (causal LMs only)."""
from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

import psutil
import torch
from safetensors import SafetensorError, safe_open

from interp.errors import CheckpointRefused, InvalidInput, ModelUnavailable

#: Key in config.json that marks a directory saved by :func:`interp.native_models.save_native`.
NATIVE_KEY = "workbench_native_config"

PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "model.pth")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer.model", "vocab.txt")
#: Files beside the weights that transformers or the tokenizer may read.
READ_FILES = (*TOKENIZER_FILES, "merges.txt", "tokenizer_config.json", "special_tokens_map.json",
              "added_tokens.json", "generation_config.json", "chat_template.jinja")

#: Longest model name or path accepted (Linux PATH_MAX is 4096, one path component at most 255 bytes).
MAX_NAME_CHARS = 1024
MAX_CONFIG_BYTES = 4 << 20


def check_name(name: str, what_to_do: str = "") -> None:
    """Refuse names no filesystem or Hub could hold: NUL bytes, over-long paths or components."""
    if "\x00" in name:
        raise InvalidInput("The model name contains a NUL character.", what_to_do)
    if len(name) > MAX_NAME_CHARS:
        raise InvalidInput(f"The model name or path is {len(name)} characters long; at most {MAX_NAME_CHARS} "
                           "are accepted.", what_to_do)
    if any(len(part.encode("utf-8", "surrogatepass")) > 255 for part in name.split(os.sep)):
        raise InvalidInput("A part of the model path is longer than 255 bytes, which no filesystem allows.",
                           what_to_do)


def regular_file(path: Path, what: str) -> int:
    """The size of ``path`` if it is a regular file; ModelUnavailable for a FIFO, socket, device or directory
    (never opened, so reading can never block)."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise ModelUnavailable(f"The {what} {path} cannot be read ({e.strerror}).",
                               "Check the path and its permissions.") from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "a directory" if stat.S_ISDIR(st.st_mode)
                else "a socket" if stat.S_ISSOCK(st.st_mode) else "a device or special file")
        raise ModelUnavailable(f"The {what} {path} is {kind}, not a regular file; it was not opened.",
                               "Replace it with the real file.")
    return st.st_size


def read_config(config_file: Path) -> dict[str, Any]:
    """config.json as a dict: a regular UTF-8 JSON file holding an object, with sane numeric sizes."""
    size = regular_file(config_file, "config file")
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
        raise ModelUnavailable(f"{config_file} is not valid JSON ({first_line(e)}).",
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
#: Sizes a library derives when they are null (transformers' defaults: GPT-Neo and GPT-J save
#: ``intermediate_size: null`` meaning 4 x hidden, GPT-2 ``n_inner: null``, grouped-query models a null KV count).
NULLABLE_SIZES = ("n_inner", "intermediate_size", "d_mlp", "head_dim", "d_head", "num_key_value_heads",
                  "n_key_value_heads")


def check_config_numbers(config: dict[str, Any], config_file: Path | str) -> None:
    """ModelUnavailable naming the key when a size is not a whole number >= 1 or a real setting is not finite."""
    for key in SIZE_KEYS:
        if key not in config or config[key] is None and key in NULLABLE_SIZES:
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
    need = n_params * torch.tensor([], dtype=dtype).element_size()
    avail = psutil.virtual_memory().available
    if need * 1.5 > avail:
        raise ModelUnavailable(f"{what} describes ~{n_params / 1e9:.2f}B parameters ({need / 2**30:.1f} GiB in "
                               f"{str(dtype).replace('torch.', '')}); only {avail / 2**30:.1f} GiB of memory is "
                               "available, so it was not loaded.",
                               "Use a smaller model, free memory, or check that config.json belongs to the weights.")


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


def weight_files(path: Path) -> list[Path]:
    """Exactly the safetensors files a load reads: the shards of model.safetensors.index.json, else
    model.safetensors. Pickle checkpoints beside them are never read; pickle-only directories are refused."""
    index = path / "model.safetensors.index.json"
    if index.exists():
        regular_file(index, "weights index")
        try:
            weight_map = json.loads(index.read_text("utf-8")).get("weight_map")
            shards = sorted({str(v) for v in weight_map.values()})
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as e:
            raise ModelUnavailable(f"{index} is not a valid shard index ({first_line(e)}).",
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
    size = regular_file(file, "weights file")
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


def check_size_against_weights(config: dict[str, Any], headers: dict[Path, dict[str, Any]], path: Path,
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
            raise ModelUnavailable(f"The weights file {f} is corrupt or truncated ({first_line(e)}).",
                                   "Delete it and save or download the model again.") from None


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (library errors can be pages long)."""
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
