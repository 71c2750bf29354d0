"""One MLP neuron: its activation on a prompt is the model's mlp_post, top contexts are the sample's maxima, its
logit effect is W_out @ W_U (centred, final gain folded); attention-only models have none."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from interp import Site
from interp.errors import InvalidInput
from probes.neurons.neuron import (
    layer_activations,
    neuron_logits,
    neuron_on_prompt,
    prompt_neurons,
    top_contexts,
)


def test_activation_on_a_prompt_is_the_mlp_post_value(tiny_handle):
    res = neuron_on_prompt(tiny_handle, "the cat sat on the mat", 1, 7)
    acts = tiny_handle.activations("the cat sat on the mat", Site("mlp_post", 1))[0, :, 7]
    assert np.allclose(res.acts, acts.numpy(), atol=1e-6) and len(res.token_ids) == len(acts)
    assert res.peak == int(acts.argmax())


def test_top_contexts_are_the_samples_maxima(tiny_handle):
    tokens = torch.randint(1, tiny_handle.info.d_vocab, (6, 20), generator=torch.Generator().manual_seed(0))
    acts = layer_activations(tiny_handle, tokens, 0, batch_size=4)  # [6, 20, d_mlp]
    assert acts.shape == (6, 20, tiny_handle.info.d_mlp)
    ref = tiny_handle.activations(tokens, Site("mlp_post", 0))
    assert torch.allclose(acts.float(), ref, atol=2e-3)
    ctx = top_contexts(acts, tokens, 3, n=4)
    peaks = acts[..., 3].float().max(dim=1).values
    assert [c.activation for c in ctx] == pytest.approx(sorted(peaks.tolist(), reverse=True)[:4], abs=1e-6)
    c = ctx[0]
    assert c.acts[c.centre] == pytest.approx(c.activation) and c.token_ids[c.centre] == int(tokens[c.seq, c.pos])


def test_logit_effects_are_the_output_weights_through_the_unembedding(tiny_handle):
    w = tiny_handle.weights()
    res = neuron_logits(tiny_handle, 1, 4, k=5)
    expect = (w.W_out[1, 4] * w.ln_final_w) @ w.W_U
    expect = expect - expect.mean()
    assert np.allclose(res.values, expect.numpy(), atol=1e-5)
    assert res.promoted[0][0] == int(expect.argmax()) and res.suppressed[0][0] == int(expect.argmin())


def test_the_most_active_neurons_on_a_prompt(tiny_handle):
    rows = prompt_neurons(tiny_handle, "the cat sat", k=5)
    acts = torch.stack([tiny_handle.activations("the cat sat", Site("mlp_post", layer))[0] for layer in range(2)])
    assert rows[0]["max activation"] == pytest.approx(float(acts.max()), abs=1e-5)
    assert [r["max activation"] for r in rows] == sorted((r["max activation"] for r in rows), reverse=True)


def test_attention_only_models_and_bad_neurons_are_one_line_errors(tiny_handle):
    from interp.loading import bundled_models

    with pytest.raises(InvalidInput, match="does not exist"):
        neuron_on_prompt(tiny_handle, "x", 0, 10**6)
    if "attn-only-1l" not in bundled_models():
        pytest.skip("bundled attn-only-1l absent")
    from interp import load_model

    m = load_model("attn-only-1l")
    for fn in (lambda: neuron_on_prompt(m, "t1 t2", 0, 0), lambda: neuron_logits(m, 0, 0),
               lambda: prompt_neurons(m, "t1 t2")):
        with pytest.raises(InvalidInput, match="attention-only"):
            fn()
