"""The hook browser's analysis: every site the model exposes reads back its activation with the right layout."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from interp import Site
from interp.errors import InvalidInput
from probes.activations.browse import available_sites, site_activation


def test_every_site_reads_back_with_its_layout(tiny_handle):
    sites = available_sites(tiny_handle)
    assert Site("embed") in sites and Site("mlp_post", 1) in sites and Site("pattern", 0) in sites
    n = len(tiny_handle.tokenize("the cat sat").tokens[0])
    for site in sites:
        a = site_activation(tiny_handle, "the cat sat", site)
        assert a.values.shape[0] == (4 if a.layout == "attention" else n), site
        if a.layout != "logits":
            assert a.matrix(0).ndim == 2 and a.position_norms().shape == (n,)
    z = site_activation(tiny_handle, "the cat sat", Site("z", 1))
    ref = tiny_handle.activations("the cat sat", Site("z", 1))[0]
    assert z.layout == "heads" and z.n_heads == 4 and np.allclose(z.matrix(2), ref[:, 2].numpy())
    pat = site_activation(tiny_handle, "the cat sat", "blocks.0.attn.hook_pattern")
    assert np.allclose(pat.matrix(1).sum(-1), 1.0, atol=1e-5)  # one head's [query, key] rows sum to 1
    logits = site_activation(tiny_handle, "the cat sat", Site("logits"))
    top = logits.top_tokens(tiny_handle, k=3)
    assert len(top) == 3 * n and top["probability"].between(0, 1).all() and list(top["rank"][:3]) == [1, 2, 3]


def test_grouped_query_keys_have_the_kv_heads_and_rotary_models_no_positions():
    from interp import load_model
    from tests.fuzz.model_dirs import gqa_dir

    m = load_model(gqa_dir("llama"))
    assert Site("pos_embed") not in available_sites(m)
    k = site_activation(m, "the cat", Site("k", 0))
    assert k.n_heads == 2 and site_activation(m, "the cat", Site("q", 0)).n_heads == 4


def test_bad_sites_and_heads_are_one_line_errors(tiny_handle):
    with pytest.raises(InvalidInput):
        site_activation(tiny_handle, "x", "blocks.9.hook_resid_pre")
    with pytest.raises(InvalidInput, match="does not exist"):
        site_activation(tiny_handle, "x", Site("z", 0)).matrix(7)
    assert torch.is_tensor(site_activation(tiny_handle, "x", Site("final_scale")).values)
