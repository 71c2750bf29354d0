"""Tiny model directories for fault tests and the sweep: good ones (GPT-2, grouped-query Llama/Qwen2/Mistral,
non-causal BERT/T5, attention-free Mamba) and broken copies (truncated, empty, missing keys, NaN weights, FIFO,
pickle decoys, bad configs). Everything is built offline in seconds on CPU."""
from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from tests.builders import TEXTS


@functools.lru_cache(maxsize=1)
def tokenizer():
    from interp.toy_models import train_bpe_tokenizer

    return train_bpe_tokenizer(TEXTS, vocab_size=400)


@functools.lru_cache(maxsize=1)
def scratch() -> Path:
    """One temp folder per process for built directories."""
    return Path(tempfile.mkdtemp(prefix="workbench-fault-models-"))


def _save(model, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer().save_pretrained(str(out))
    return out


def gpt2_dir(out: Path | None = None) -> Path:
    """2 layers, 4 heads, d_model 32, n_ctx 64, random weights (seed 0)."""
    from interp.toy_models import tiny_gpt2

    out = out or scratch() / "gpt2"
    if (out / "model.safetensors").is_file():
        return out
    return _save(tiny_gpt2(tokenizer()), out)


GQA = ("llama", "qwen2", "mistral")


def gqa_dir(kind: str, out: Path | None = None) -> Path:
    """A 2-layer grouped-query model (4 query heads sharing 2 KV heads, d_model 32) of a Llama, Qwen2 or Mistral
    config, random weights, saved as safetensors."""
    import transformers as tf

    out = out or scratch() / kind
    if (out / "model.safetensors").is_file():
        return out
    config_cls, model_cls = {"llama": (tf.LlamaConfig, tf.LlamaForCausalLM),
                             "qwen2": (tf.Qwen2Config, tf.Qwen2ForCausalLM),
                             "mistral": (tf.MistralConfig, tf.MistralForCausalLM)}[kind]
    tok = tokenizer()
    cfg = config_cls(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = model_cls(cfg).eval()
    return _save(model, out)


def bert_dir(out: Path | None = None) -> Path:
    """A masked LM (BertForMaskedLM): must be refused at load."""
    from transformers import BertConfig, BertForMaskedLM

    out = out or scratch() / "bert"
    if not (out / "model.safetensors").is_file():
        cfg = BertConfig(vocab_size=len(tokenizer()), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)
        _save(BertForMaskedLM(cfg), out)
    return out


def t5_dir(out: Path | None = None) -> Path:
    """An encoder-decoder (T5ForConditionalGeneration): must be refused at load."""
    from transformers import T5Config, T5ForConditionalGeneration

    out = out or scratch() / "t5"
    if not (out / "model.safetensors").is_file():
        cfg = T5Config(vocab_size=len(tokenizer()), d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=2)
        _save(T5ForConditionalGeneration(cfg), out)
    return out


def mamba_dir(out: Path | None = None) -> Path:
    """A state-space LM (MambaForCausalLM): causal, but without attention patterns."""
    from transformers import MambaConfig, MambaForCausalLM

    out = out or scratch() / "mamba"
    if not (out / "model.safetensors").is_file():
        tok = tokenizer()
        cfg = MambaConfig(vocab_size=len(tok), hidden_size=32, state_size=4, num_hidden_layers=2,
                          bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        _save(MambaForCausalLM(cfg), out)
    return out


def bos_only_dir(out: Path | None = None) -> Path:
    """A GPT-2 whose word-level tokenizer knows no word: every word of any text becomes ``<|endoftext|>`` (its
    BOS/EOS/UNK), so a corpus tokenizes to BOS only (the degenerate data a verdict must never rest on)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from interp.toy_models import tiny_gpt2

    out = out or scratch() / "bos-only"
    if (out / "model.safetensors").is_file():
        return out
    eos = "<|endoftext|>"
    vocab = {eos: 0, **{f"zq{i}": i + 1 for i in range(63)}}  # words no text contains
    raw = Tokenizer(models.WordLevel(vocab, unk_token=eos))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token=eos, eos_token=eos, unk_token=eos, pad_token=eos)
    out.mkdir(parents=True, exist_ok=True)
    tiny_gpt2(tok).save_pretrained(str(out), safe_serialization=True)
    tok.save_pretrained(str(out))
    return out


def neo_dir(out: Path | None = None, **config) -> Path:
    """A 2-layer GPT-Neo as transformers saves it by default (``intermediate_size: null`` = 4 x hidden)."""
    from transformers import GPTNeoConfig, GPTNeoForCausalLM

    out = out or scratch() / "gpt-neo"
    if (out / "model.safetensors").is_file():
        return out
    tok = tokenizer()
    cfg = GPTNeoConfig(vocab_size=len(tok), hidden_size=32, num_layers=2, num_heads=4, attention_types=[[["global",
                       "local"], 1]], max_position_embeddings=64, window_size=16, bos_token_id=tok.bos_token_id,
                       eos_token_id=tok.eos_token_id, **config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GPTNeoForCausalLM(cfg).eval()
    return _save(model, out)


# ----------------------------------------------------------------------------- broken copies


def copy_of(src: Path, name: str) -> Path:
    """A fresh copy of a model directory (weights and config), to break."""
    out = scratch() / "broken" / name
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, out, symlinks=True, ignore=shutil.ignore_patterns("tuned_lens"))
    return out


def edit_config(d: Path, **changes) -> Path:
    """Set (or with value ``...`` delete) config.json keys."""
    cfg = json.loads((d / "config.json").read_text())
    for k, v in changes.items():
        if v is ...:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    (d / "config.json").write_text(json.dumps(cfg))
    return d


def write_config_bytes(d: Path, data: bytes) -> Path:
    (d / "config.json").write_bytes(data)
    return d


def rewrite_weights(d: Path, fn) -> Path:
    """Replace model.safetensors by ``fn(state dict) -> state dict``."""
    from safetensors.torch import load_file, save_file

    state = load_file(str(d / "model.safetensors"))
    save_file({k: v.contiguous() for k, v in fn(dict(state)).items()}, str(d / "model.safetensors"))
    return d


def drop_keys(d: Path, contains: str) -> Path:
    return rewrite_weights(d, lambda s: {k: v for k, v in s.items() if contains not in k})


def add_key(d: Path, key: str = "transformer.h.9.extra.weight") -> Path:
    return rewrite_weights(d, lambda s: {**s, key: torch.zeros(2, 2)})


def poison(d: Path, value: float = float("nan"), contains: str = "") -> Path:
    """Put ``value`` (NaN or inf) into the first floating tensor whose key contains ``contains``."""
    def fn(s):
        for k, v in s.items():
            if v.is_floating_point() and contains in k:
                v = v.clone()
                v.view(-1)[0] = value
                s[k] = v
                break
        return s
    return rewrite_weights(d, fn)


def truncate(d: Path, keep: float = 0.5, file: str = "model.safetensors") -> Path:
    p = d / file
    data = p.read_bytes()
    p.write_bytes(data[: int(len(data) * keep)])
    return d


def fifo_weights(d: Path) -> Path:
    """model.safetensors becomes a FIFO nobody writes to: opening it for reading would block forever."""
    p = d / "model.safetensors"
    p.unlink()
    os.mkfifo(p)
    return d


def pickle_decoy(d: Path, rename_safetensors: str | None = None) -> Path:
    """Add a pytorch_model.bin whose tensors differ; optionally rename model.safetensors (so only the decoy
    would be a checkpoint transformers recognises)."""
    from safetensors.torch import load_file

    state = load_file(str(d / "model.safetensors"))
    torch.save({k: torch.full_like(v, 0.5) for k, v in state.items()}, d / "pytorch_model.bin")
    if rename_safetensors:
        (d / "model.safetensors").rename(d / rename_safetensors)
    return d
