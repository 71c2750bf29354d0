"""The model interface: tokenisation guards, reads of only the named sites, edits, early stops, gradients,
answer-only logits and padding safety, all through ``Model.run``."""
from __future__ import annotations

import pytest
import torch

from interp import InvalidInput, Site, tokenize
from interp.backends.bridge import bridge_of


def test_empty_and_over_long_prompts(tiny_handle):
    for empty in ["", "   \n"]:
        with pytest.raises(InvalidInput, match="empty"):
            tokenize(tiny_handle, empty)
    with pytest.raises(InvalidInput, match="Prompt 1 is empty"):
        tokenize(tiny_handle, ["hello", ""])
    with pytest.raises(InvalidInput, match="No prompts"):
        tokenize(tiny_handle, [])
    long = "the cat sat on the mat. " * 40
    with pytest.raises(InvalidInput, match=r"reads at most 64 tokens"):
        tokenize(tiny_handle, long)
    batch = tokenize(tiny_handle, long, truncate=True)
    assert batch.tokens.shape == (1, 64) and batch.truncated


def test_bos_is_prepended_once(tiny_handle):
    batch = tokenize(tiny_handle, "hello world")
    bos = tiny_handle.tokenizer.bos_token_id
    assert batch.tokens[0, 0].item() == bos and batch.tokens[0, 1].item() != bos
    assert tokenize(tiny_handle, "hello world", prepend_bos=False).tokens.shape[1] == batch.tokens.shape[1] - 1


def test_token_tensor_validation(tiny_handle):
    with pytest.raises(InvalidInput, match="Token ids"):
        tokenize(tiny_handle, torch.tensor([[0, 10_000]]))
    with pytest.raises(InvalidInput, match=r"\[batch, pos\]"):
        tokenize(tiny_handle, torch.zeros(1, 0, dtype=torch.long))


def test_run_reads_only_requested_sites(tiny_handle):
    read = tiny_handle.sites("pattern", layers=[1]) + [Site("resid_post", 0)]
    run = tiny_handle.run("the cat sat", read=read)
    assert set(run.acts) == set(read)
    n = run.tokens.shape[1]
    assert run[Site("pattern", 1)].shape == (1, 4, n, n)
    assert run["blocks.0.hook_resid_post"].shape == (1, n, 32)  # hook names are read as sites
    torch.testing.assert_close(run[Site("pattern", 1)].sum(-1), torch.ones(1, 4, n))
    with pytest.raises(InvalidInput, match="was not read"):
        run[Site("z", 0)]


def test_sites_are_one_vocabulary():
    assert str(Site("resid_pre", 2)) == "blocks.2.hook_resid_pre" and str(Site("logits")) == "unembed.hook_out"
    for site in (Site("z", 3), Site("pattern", 0), Site("embed"), Site("mlp_post", 1)):
        assert Site.parse(str(site)) == site
    with pytest.raises(InvalidInput, match="Did you mean"):
        Site.parse("blocks.0.attn.hook_patern")
    with pytest.raises(InvalidInput, match="layer index"):
        Site("resid_pre")
    with pytest.raises(InvalidInput, match="whole model"):
        Site("embed", 0)
    with pytest.raises(InvalidInput, match="Unknown site kind"):
        Site("mlp_neurons", 0)  # type: ignore[arg-type]


def test_unknown_sites_and_bad_indices(tiny_handle):
    with pytest.raises(InvalidInput, match="Did you mean"):
        tiny_handle.run("hi", read=["blocks.0.attn.hook_patern"])
    with pytest.raises(InvalidInput, match="Layer 5 does not exist"):
        tiny_handle.sites("pattern", layers=[5])
    with pytest.raises(InvalidInput, match="does not exist"):
        tiny_handle.run("hi", read=[Site("z", 7)])
    with pytest.raises(InvalidInput, match="Head 1.4 does not exist"):
        tiny_handle.check_head(1, 4)
    with pytest.raises(InvalidInput):
        tiny_handle.check_head(-1, 0)
    with pytest.raises(InvalidInput, match="not a function"):
        tiny_handle.run("hi", edit={Site("resid_pre", 0): 3})


def test_padded_batch_matches_single_prompts(tiny_handle):
    prompts = ["the cat", "def add(a, b):\n    return a + b"]
    read = tiny_handle.sites("resid_post")
    both = tiny_handle.run(prompts, read=read)
    assert both.batch.padded
    for i, p in enumerate(prompts):
        one = tiny_handle.run(p, read=read)
        n = one.tokens.shape[1]
        torch.testing.assert_close(both[Site("resid_post", 1)][i, :n], one[Site("resid_post", 1)][0],
                                   atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(both.logits[i, :n], one.logits[0], atol=1e-5, rtol=1e-5)


def test_reads_do_not_change_logits_and_equal_transformer_lens_cache(tiny_handle):
    batch = tiny_handle.tokenize("Hello, world!")
    plain = tiny_handle.logits(batch)
    run = tiny_handle.run(batch, read=tiny_handle.sites("pattern") + tiny_handle.sites("z"))
    torch.testing.assert_close(run.logits, plain)
    _, cache = bridge_of(tiny_handle).run_with_cache(batch.tokens)
    for site in run.acts:
        torch.testing.assert_close(run[site], cache[site.hook_name])


def test_edit_changes_downstream_only_and_reads_see_the_edit(tiny_handle):
    batch = tiny_handle.tokenize("the cat sat on the mat")
    site = Site("resid_pre", 1)
    base = tiny_handle.run(batch, read=[Site("resid_pre", 0), site])
    edited = tiny_handle.run(batch, read=[Site("resid_pre", 0), site], edit={site: lambda x: x * 0})
    torch.testing.assert_close(edited[Site("resid_pre", 0)], base[Site("resid_pre", 0)])
    assert float(edited[site].abs().max()) == 0.0
    assert not torch.allclose(edited.logits, base.logits)


def test_stop_after_skips_the_rest(tiny_handle):
    site = Site("pattern", 0)
    run = tiny_handle.run("the cat sat", read=[site], stop_after=site)
    assert run.logits is None and run[site].shape[1] == 4
    with pytest.raises(InvalidInput, match="stops early"):
        tiny_handle.run("the cat", read=[site], stop_after=site, grad_of=lambda lg: lg.sum())
    full = tiny_handle.run("the cat sat", read=[site])
    torch.testing.assert_close(tiny_handle.activations("the cat sat", site), full[site])


def test_grad_of_equals_autograd_through_an_edit(tiny_handle):
    batch = tiny_handle.tokenize("def add(a, b):")
    site = Site("resid_pre", 1)
    metric = lambda lg: lg[0, -1, 5] - lg[0, -1, 7]  # noqa: E731
    run = tiny_handle.run(batch, read=[site], grad_of=metric)
    leaf = run[site].clone().requires_grad_(True)
    again = tiny_handle.run(batch, edit={site: lambda x: leaf}, grad=True)
    (g,) = torch.autograd.grad(metric(again.logits), [leaf])
    torch.testing.assert_close(run.grads[site], g)
    assert not run[site].requires_grad and not run.logits.requires_grad


def test_logit_positions_give_the_same_numbers(tiny_handle):
    batch = tiny_handle.tokenize(["the cat sat on", "def f(x):\n    return x"])
    pos = batch.lengths - 1
    full = tiny_handle.logits(batch)
    picked = tiny_handle.run(batch, logit_positions=pos).logits
    assert picked.shape == (2, 1, full.shape[-1])
    torch.testing.assert_close(picked[:, 0], full[torch.arange(2), pos], atol=1e-5, rtol=1e-5)
    with pytest.raises(InvalidInput, match="outside"):
        tiny_handle.run(batch, logit_positions=torch.tensor([0, 99]))


def test_weights_are_one_layout(tiny_handle):
    w = tiny_handle.weights()
    i = tiny_handle.info
    assert w.W_Q.shape == (i.n_layers, i.n_heads, i.d_model, i.d_head) and w.W_O.shape[-1] == i.d_model
    assert w.W_E.shape == (i.d_vocab, i.d_model) and w.W_U.shape == (i.d_model, i.d_vocab)
    assert w.W_in.shape == (i.n_layers, i.d_model, i.d_mlp) and w.ln1_w.shape == (i.n_layers, i.d_model)
    assert all(not t.requires_grad for t in (w.W_Q, w.W_U, w.W_in))


def test_readout_reproduces_the_logits(tiny_handle):
    last = Site("resid_post", tiny_handle.info.n_layers - 1)
    run = tiny_handle.run("the cat sat", read=[last])
    torch.testing.assert_close(tiny_handle.readout(run[last]), run.logits, atol=1e-5, rtol=1e-5)


def test_full_gpt2_shape_sites_and_tokenizer(gpt2_shape_handle):
    h = gpt2_shape_handle
    assert (h.info.n_layers, h.info.n_heads, h.info.d_model, h.info.n_ctx, h.info.d_vocab) == (12, 12, 768, 1024, 50257)
    assert h.tokenizer("Hello, world!", add_special_tokens=False)["input_ids"] == [15496, 11, 995, 0]
    batch = tokenize(h, "Hello, world!")
    assert batch.tokens.tolist() == [[50256, 15496, 11, 995, 0]]
    run = h.run(batch, read=h.sites("pattern") + h.sites("resid_pre") + h.sites("z"))
    for i in range(12):
        assert run[Site("pattern", i)].shape == (1, 12, 5, 5)
        assert run[Site("resid_pre", i)].shape == (1, 5, 768)
        assert run[Site("z", i)].shape == (1, 5, 12, 64)
    assert run.logits.shape == (1, 5, 50257)
    with pytest.raises(InvalidInput, match="1024"):
        tokenize(h, " hello" * 1100)


def test_an_edit_of_resid_mid_edits_the_stream_the_block_passes_on(tiny_handle):
    """The bridge's hook_resid_mid is the second norm's input; an edit there must still change the residual stream
    (zeroing it leaves only the MLP's output in resid_post) and leave upstream reads alone."""
    batch = tiny_handle.tokenize("the cat sat on the mat")
    base = tiny_handle.run(batch, read=[Site("attn_out", 0)])
    run = tiny_handle.run(batch, edit={Site("resid_mid", 0): lambda x: x * 0},
                          read=[Site("attn_out", 0), Site("resid_mid", 0), Site("mlp_out", 0), Site("resid_post", 0)])
    torch.testing.assert_close(run[Site("resid_post", 0)], run[Site("mlp_out", 0)])
    assert float(run[Site("resid_mid", 0)].abs().max()) == 0.0
    torch.testing.assert_close(run[Site("attn_out", 0)], base[Site("attn_out", 0)])
    same = tiny_handle.run(batch, edit={Site("resid_mid", 1): lambda x: x}).logits
    torch.testing.assert_close(same, tiny_handle.logits(batch))


def test_rotary_models_do_not_claim_a_position_embedding():
    from interp import load_model
    from tests.fuzz.model_dirs import gqa_dir

    llama = load_model(gqa_dir("llama"))
    assert llama.info.positional == "rotary" and not llama.has(Site("pos_embed"))
    with pytest.raises(InvalidInput):
        llama.run("the cat", read=[Site("pos_embed")])
