"""Build small Hugging Face models and tokenizers offline (tests, fallbacks, experiments' baselines)."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

BYTE_SPECIALS = ("<|endoftext|>",)


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int, *, min_frequency: int = 2):
    """A GPT-2-style byte-level BPE trained with `tokenizers`, wrapped as a HF fast tokenizer.

    ``<|endoftext|>`` is id 0 and serves as BOS/EOS/pad, as in GPT-2.
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=list(BYTE_SPECIALS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    eos = BYTE_SPECIALS[0]
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=eos, eos_token=eos, unk_token=eos, pad_token=eos)


def tiny_gpt2(tokenizer, *, n_layer: int = 2, n_head: int = 4, n_embd: int = 32, n_positions: int = 64,
              seed: int = 0):
    """A randomly initialised GPT2LMHeadModel sized to ``tokenizer`` (bos/eos ids taken from it)."""
    cfg = GPT2Config(vocab_size=len(tokenizer), n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
                     n_head=n_head, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(cfg)
    return model.eval()


def save_hf_dir(model, tokenizer, out_dir: str | Path) -> Path:
    """Save model (safetensors) + tokenizer as an ordinary Hugging Face directory."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    return out
