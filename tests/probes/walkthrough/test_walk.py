"""The walkthrough's hand recomputation equals the model's own activations at every step, for GPT-2 (LayerNorm,
GELU, learned positions), Llama (RMSNorm, SwiGLU, RoPE, grouped-query attention) and attention-only models; its
final probabilities equal softmax of the model's logits; missing pieces are marked absent; the checks can fail."""
from __future__ import annotations

import pytest
import torch

from interp import InvalidInput, Site, load_model
from probes.walkthrough import TOLERANCE, hand, walk

PROMPTS = {"gpt2": "def add(a, b):\n    return a + b", "llama": "the cat sat on the mat and the cat",
           "attn-only": "t5 t17 t3 t42 t8 t5 t17 t3"}


@pytest.fixture(scope="module")
def gpt2():
    from tests.fuzz.model_dirs import gpt2_dir

    return load_model(gpt2_dir())


@pytest.fixture(scope="module")
def llama():
    from tests.fuzz.model_dirs import gqa_dir

    return load_model(gqa_dir("llama"))


@pytest.fixture(scope="module")
def attn_only():
    from interp.loading import bundled_models

    if "attn-only-2l" not in bundled_models():
        pytest.skip("bundled attn-only-2l absent")
    return load_model("attn-only-2l")


@pytest.fixture(params=["gpt2", "llama", "attn-only"])
def arch(request, gpt2, llama, attn_only):
    return request.param, {"gpt2": gpt2, "llama": llama, "attn-only": attn_only}[request.param]


def test_every_step_recomputed_by_hand_equals_the_models_activation(arch):
    kind, model = arch
    wk = walk(model, PROMPTS[kind], position=4, head=1, temperature=0.8)
    present = [s for s in wk.steps if s.absent is None]
    assert all(s.checks for s in present), [s.key for s in present if not s.checks]  # every step is checked
    bad = [(s.key, s.block, c.label, c.max_abs_diff) for s in present for c in s.checks if not c.max_abs_diff < 1e-4]
    assert not bad, bad
    # the whole chain ran: every block, and the comparisons name real sites of this model
    assert {s.block for s in present if s.block is not None} == set(range(model.info.n_layers))
    sites = {c.site for c in wk.checks}
    assert str(Site("logits")) in sites and str(Site("pattern", model.info.n_layers - 1)) in sites
    assert wk.max_abs_diff < TOLERANCE


def test_final_probabilities_equal_softmax_of_the_models_logits(arch):
    kind, model = arch
    T = 0.7
    wk = walk(model, PROMPTS[kind], position=3, temperature=T, top_k=8)
    logits = model.logits(PROMPTS[kind])[0, 3].double()  # [vocab], the model's own forward pass
    probs = torch.softmax(logits / T, -1)
    top = torch.topk(probs, 8)
    assert [t.token_id for t in wk.top] == top.indices.tolist()
    assert max(abs(t.probability - float(p)) for t, p in zip(wk.top, top.values)) < 1e-6
    assert wk.step("probs").checks[0].max_abs_diff < 1e-6


def test_steps_the_architecture_lacks_are_absent_not_faked(gpt2, llama, attn_only):
    g = walk(gpt2, PROMPTS["gpt2"])
    assert g.step("rope", 0).absent and not g.step("pos_embed").absent and not g.step("mlp_act", 1).absent
    assert g.step("mlp_pre", 0).title.startswith("MLP in: up projection")
    ll = walk(llama, PROMPTS["llama"])
    assert ll.step("pos_embed").absent and "RoPE" in ll.step("pos_embed").absent
    rope = ll.step("rope", 1)
    assert not rope.absent and {c.site for c in rope.checks} == {"blocks.1.attn.hook_rot_q", "blocks.1.attn.hook_rot_k"}
    labels = {c.label for c in ll.step("mlp_pre", 0).checks}
    assert labels == {"gate pre-activation", "linear branch"}  # SwiGLU's gate and up projections, both checked
    assert "RMSNorm" in ll.step("ln1", 0).title and "mean" not in ll.step("ln1", 0).numbers
    assert "key/value heads" in ll.step("qkv", 0).checks[1].over  # GQA: k compared per KV head
    a = walk(attn_only, PROMPTS["attn-only"])
    for key in ("ln2", "mlp_pre", "mlp_act", "mlp_out", "resid_post"):
        assert "attention-only" in a.step(key, 0).absent
    # TL-native attention exposes no pre-softmax scores: compared with the model's own q·k, said so
    assert "exposes no pre-softmax scores" in a.step("scores", 0).checks[0].site


def test_shown_numbers_are_the_chosen_position_and_head(gpt2):
    p, h, layer = 5, 2, 1
    wk = walk(gpt2, PROMPTS["gpt2"], position=p, head=h)
    run = gpt2.run(PROMPTS["gpt2"], read=[Site("q", layer), Site("pattern", layer)])
    q_shown = wk.step("qkv", layer).shown[0].values
    assert torch.allclose(torch.as_tensor(q_shown), run[Site("q", layer)][0, p, h], atol=1e-5)
    row = wk.step("softmax", layer).shown[0].values
    assert torch.allclose(torch.as_tensor(row), run[Site("pattern", layer)][0, h, p], atol=1e-6)
    masked = wk.step("mask", layer).shown[0].values
    assert torch.isinf(torch.as_tensor(masked[p + 1:])).all() and torch.isfinite(torch.as_tensor(masked[:p + 1])).all()
    assert wk.step("mask", layer).numbers["masked keys"] == len(wk.tokens) - 1 - p


def test_a_wrong_formula_shows_up_as_a_large_difference(gpt2, monkeypatch):
    """The checks are measured, not asserted: swap GELU for ReLU and the MLP's check fails (and the chain after)."""
    monkeypatch.setitem(hand.ACTIVATIONS, "gelu_new", (lambda x: x.clamp_min(0) * 10, "wrong"))
    wk = walk(gpt2, PROMPTS["gpt2"])
    assert wk.step("mlp_act", 0).checks[0].max_abs_diff > 1e-3 and not wk.step("mlp_act", 0).checks[0].ok
    assert wk.step("qkv", 0).checks[0].ok  # before the MLP all is still right


def test_rope_uses_the_models_own_base(tmp_path):
    """A Llama saved with rope_theta 500000: the hand RoPE (base from the HF config) matches the model."""
    import transformers as tf

    from tests.fuzz.model_dirs import tokenizer

    tok = tokenizer()
    cfg = tf.LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, rope_theta=5e5,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    tf.LlamaForCausalLM(cfg).save_pretrained(str(tmp_path))
    tok.save_pretrained(str(tmp_path))
    model = load_model(tmp_path)
    assert model.info.rotary_base == 5e5 and model.info.rope_type == "default"
    wk = walk(model, PROMPTS["llama"])
    assert all(c.ok for c in wk.step("rope", 0).checks), [c.max_abs_diff for c in wk.step("rope", 0).checks]


@pytest.mark.parametrize("kw, words", [
    ({"position": 99}, "Position 99 does not exist"), ({"position": -1}, "Position -1 does not exist"),
    ({"position": 1.5}, "whole number"), ({"head": 4}, "Head 4 does not exist"), ({"temperature": 0}, "> 0.0"),
    ({"temperature": -1}, "> 0.0"), ({"temperature": float("nan")}, "finite"), ({"temperature": 1e9}, "<= 100"),
    ({"top_k": 0}, "must be in 1..320"), ({"prompt": "   "}, "empty"),
    ({"prompt": "the cat " * 200}, "reads at most 64"),
])
def test_bad_inputs_are_clear_errors(gpt2, kw, words):
    args = {"prompt": PROMPTS["gpt2"], **kw}
    with pytest.raises(InvalidInput, match=words):
        walk(gpt2, **args)
