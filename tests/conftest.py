"""Shared fixtures: tiny models built offline and saved as ordinary Hugging Face directories."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Results and experiment caches go to a temp dir, never the repo. Set before any test module imports
# experiments.core.runner, which reads these once at import time.
_SCRATCH = Path(tempfile.mkdtemp(prefix="workbench-tests-"))
os.environ.setdefault("WORKBENCH_RESULTS", str(_SCRATCH / "results"))
os.environ.setdefault("WORKBENCH_CACHE", str(_SCRATCH / "cache"))
os.environ["HF_HUB_OFFLINE"] = "1"
GPT2_TOKENIZER = ROOT.parent / "shared" / "fixtures" / "gpt2-tokenizer"
from tests.builders import TEXTS, TINY_TEXT_LM  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _isolated_dirs():
    """The Hub is never contacted; scratch results/caches are removed at the end of the session."""
    import shutil

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    yield
    shutil.rmtree(_SCRATCH, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from interp.toy_models import train_bpe_tokenizer

    return train_bpe_tokenizer(TEXTS, vocab_size=400)


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A 2-layer, 4-head, d_model 32 GPT-2 with random weights (seed 0), n_ctx 64."""
    from interp.toy_models import save_hf_dir, tiny_gpt2

    return save_hf_dir(tiny_gpt2(tiny_tokenizer), tiny_tokenizer, tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session")
def tiny_handle(tiny_gpt2_dir):
    from interp import load_model

    return load_model(tiny_gpt2_dir)


@pytest.fixture(scope="session")
def relu_gpt2_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """tiny_gpt2_dir's shape with ReLU MLPs (exact transcoders exist: the neurons), weights scaled up (seed 1) so
    attention patterns and MLP activations are far from uniform and zero."""
    from interp.toy_models import save_hf_dir, tiny_gpt2

    model = tiny_gpt2(tiny_tokenizer, seed=1)
    model.config.activation_function = "relu"
    for block in model.transformer.h:
        block.mlp.act = torch.nn.ReLU()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 2 and "wpe" not in name:
                p.mul_(8.0)
    return save_hf_dir(model, tiny_tokenizer, tmp_path_factory.mktemp("relu-gpt2"))


@pytest.fixture(scope="session")
def gpt2_tokenizer_dir() -> Path:
    if not (GPT2_TOKENIZER / "vocab.json").is_file():
        pytest.skip(f"real GPT-2 tokenizer fixture absent ({GPT2_TOKENIZER}); full-shape GPT-2 tests skipped")
    return GPT2_TOKENIZER


@pytest.fixture(scope="session")
def gpt2_shape_dir(tmp_path_factory, gpt2_tokenizer_dir) -> Path:
    """GPT2Config() defaults (12 layers, 12 heads, d_model 768, n_ctx 1024) with random weights + real tokenizer."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    out = tmp_path_factory.mktemp("gpt2-shape")
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config()).save_pretrained(str(out), safe_serialization=True)
    AutoTokenizer.from_pretrained(str(gpt2_tokenizer_dir)).save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def gpt2_shape_handle(gpt2_shape_dir):
    from interp import load_model

    return load_model(gpt2_shape_dir)


@pytest.fixture(scope="session")
def ci_text_lm(tmp_path_factory) -> tuple[object, Path, Path]:
    """The train-text-lm ci preset, run once per session: (RunOutcome, results folder, model directory)."""
    from experiments.core import runner

    root = tmp_path_factory.mktemp("ci-text-lm")
    out, model = root / "r", root / "m"
    outcome = runner.run_experiment("train-text-lm", out=out, preset="ci", overrides={"out_model": str(model)})
    return outcome, out, model


@pytest.fixture(scope="session")
def tiny_text_lm(tmp_path_factory) -> tuple[object, Path, Path]:
    """train-text-lm at :data:`TINY_TEXT_LM`, run once per session: (RunOutcome, results folder, model dir)."""
    from experiments.core import runner

    root = tmp_path_factory.mktemp("tiny-text-lm")
    out, model = root / "r", root / "m"
    outcome = runner.run_experiment("train-text-lm", out=out, preset="ci",
                                    overrides={**TINY_TEXT_LM, "out_model": str(model)})
    return outcome, out, model


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray cluster (2 CPUs) per test module that needs one: started at first use (~15 s, ~1 GiB), shut
    down after the module, so its idle workers do not slow the rest of the suite; token auth off, so nothing is
    left in the home directory."""
    from experiments.distributed.cluster import connected

    with connected(num_cpus=2) as info:
        yield info
