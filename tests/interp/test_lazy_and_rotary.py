"""The core imports lazily (the app's first page draws before torch loads), ModelInfo carries RoPE's settings from
the Hugging Face config, a model whose attention hook holds the pattern does not claim pre-softmax scores, and
concurrent runs of one model do not mix their activations."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from interp import Site, load_model

ROOT = Path(__file__).resolve().parents[2]


def test_the_first_page_and_the_core_errors_import_without_torch():
    code = ("import sys, interp, ui.start_page, ui.glossary_page; from interp import WorkbenchError, InvalidInput; "
            "heavy = [m for m in ('torch', 'transformers', 'transformer_lens') if m in sys.modules]; "
            "assert not heavy, heavy; from interp import load_model, Site; assert callable(load_model); "
            "assert str(Site('embed')) == 'hook_embed'")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]


def test_unknown_names_are_attribute_errors():
    import interp

    with pytest.raises(AttributeError):
        interp.no_such_name  # noqa: B018


def test_rotary_fields_and_attention_scores_sites(tiny_handle):
    from interp.loading import bundled_models
    from tests.fuzz.model_dirs import gqa_dir

    llama = load_model(gqa_dir("llama"))
    assert llama.info.positional == "rotary" and llama.info.rotary_base == 10000.0 and llama.info.rotary_dim == 0
    assert llama.has(Site("attn_scores", 0)) and tiny_handle.has(Site("attn_scores", 0))
    if "attn-only-1l" in bundled_models():
        native = load_model("attn-only-1l")
        assert not native.has(Site("attn_scores", 0))  # its hook_attn_scores fires with the softmaxed pattern
        assert native.has(Site("pattern", 0))


def test_concurrent_runs_do_not_mix_activations(tiny_handle):
    """Two threads running one model (two app sessions, the background warm-up) each read their own pass: the
    bridge attaches hooks to shared modules, so passes take turns."""
    import threading

    prompts = ["the cat", "the cat sat on the mat and the dog"]
    want = {p: tiny_handle.run(p, read=[Site("resid_post", 1)])[Site("resid_post", 1)] for p in prompts}
    bad = []

    def work(p):
        for _ in range(15):
            got = tiny_handle.run(p, read=[Site("resid_post", 1)])[Site("resid_post", 1)]
            if got.shape != want[p].shape or not (got == want[p]).all():
                bad.append(p)

    threads = [threading.Thread(target=work, args=(p,)) for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad
