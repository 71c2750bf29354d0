"""Test builders shared by the pytest fixtures (tests/conftest.py) and the sweep's model directories
(tests/fuzz/model_dirs.py), so both build their tiny tokenizers from the same text."""

#: A small mixed corpus (prose, code, punctuation) for tiny BPE tokenizers.
TEXTS = [
    "the cat sat on the mat. the dog sat on the log.",
    "def add(a, b):\n    return a + b\n",
    "import os\nprint(os.getcwd())\n",
    "Hello, world! Hello again, world.",
] * 40


def modular_gpt2_dir(out_dir, p: int, *, freq: int, d_model: int = 32, n_heads: int = 4, seed: int = 0):
    """A 1-layer Hugging Face GPT-2 for ``a b =`` inputs mod ``p`` (vocabulary p + 1, '=' is token p, 3 positions)
    with random weights except the number embeddings, planted on one Fourier frequency ``freq``: rows
    cos / sin(2 pi freq a / p) along two random directions. Saved with the grokking number tokenizer."""
    import math  # local imports: transformers and the training package are heavy for conftest's import of TEXTS

    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from interp.toy_models import save_hf_dir
    from training.grokking import number_tokenizer

    cfg = GPT2Config(vocab_size=p + 1, n_positions=3, n_embd=d_model, n_layer=1, n_head=n_heads, bos_token_id=p,
                     eos_token_id=p)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(cfg).eval()
        a = torch.arange(p, dtype=torch.float32)[:, None]  # [p, 1]
        wave = torch.cat([torch.cos(2 * math.pi * freq * a / p), torch.sin(2 * math.pi * freq * a / p)], 1)  # [p, 2]
        with torch.no_grad():
            model.transformer.wte.weight[:p] = wave @ torch.randn(2, d_model)  # [p, d_model]
    return save_hf_dir(model, number_tokenizer(p), out_dir)


#: train-text-lm at toy size (1 layer x 32, 24 steps, checkpoints every 10): the determinism and resume tests
#: need a real training run, not the ci preset's size (each run of that costs about a minute of CPU).
TINY_TEXT_LM = {"max_chars": "60000", "vocab_size": "300", "n_layer": "1", "n_embd": "32", "n_head": "2",
                "n_ctx": "32", "batch_size": "4", "steps": "24", "warmup": "2", "eval_every": "12"}
