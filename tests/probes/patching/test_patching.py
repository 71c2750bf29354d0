"""Activation patching, path patching, attribution patching and DLA against hand computations and TransformerLens."""
from __future__ import annotations

import pytest
import torch

from interp.backends.bridge import bridge_of
from interp.errors import InvalidInput
from probes.patching.activation import metric_fn, path_patch, prepare, run_sweeps, sweep
from probes.patching.attribution import attribute, compare, edge_attribution
from probes.patching.dla import direct_logit_attribution
from probes.patching.stats import dataset_effects
from tasks.pairs import (
    PromptPair,
    encode_pairs,
    pairs_from_csv,
    pairs_from_text,
    pairs_from_tokens,
    repeated_sequence_pairs,
)


def _pairs(handle, n=3, seq=6, seed=0, corruption="fresh"):
    return repeated_sequence_pairs(handle, n, seq, seed=seed, corruption=corruption)


def _native_dir(tmp_path, tokenizer, *, n_layers=2, hand_built=False):
    """A 2-layer, 2-head attention-only model without LayerNorm (metric linear in the last layer's outputs).

    ``hand_built``: dims 12..15 are written only by head 0.0 (embeddings and head 0.1 write nothing there) and
    head 1.0's keys read only dims 12..15, so 1.0's keys depend on one sender head, 0.0.
    """
    from interp.native_models import build_native_model, native_config, save_native

    cfg = native_config(n_layers=n_layers, d_model=16, n_ctx=16, d_head=4, n_heads=2, d_vocab=len(tokenizer),
                        attn_only=True, normalization_type=None, act_fn="gelu", positional_embedding_type="standard",
                        d_mlp=64)
    model = build_native_model(cfg, seed=0)
    if hand_built:
        with torch.no_grad():
            model.tok_embed.weight[:, 12:] = 0
            model.pos.weight[:, 12:] = 0
            o = model.layers[0].attn.o
            o.weight[:12, 0:4] = 0  # head 0.0 writes only dims 12..15
            o.weight[12:, 4:8] = 0  # head 0.1 writes nothing there
            o.bias[12:] = 0
            model.layers[1].attn.k.weight[0:4, :12] = 0  # head 1.0's keys read only dims 12..15
            o.weight[12:, 0:4].mul_(20)  # a strong sender ...
            model.layers[1].attn.k.weight[0:4].mul_(20)  # ... read by sharp keys: a large effect
            model.layers[1].attn.o.weight[:, 0:4].mul_(20)
    return save_native(model, cfg, tokenizer, tmp_path / ("hand" if hand_built else "linear"))


# ----------------------------------------------------------------------------- data and validation


def test_text_and_csv_pairs_keep_quoted_leading_spaces():
    text = 'a b c | a b d | " c" | " d"\n# comment\n\nx y | x z | y\n'
    pairs = pairs_from_text(text)
    assert pairs[0] == PromptPair("a b c", "a b d", " c", " d") and pairs[1].wrong is None
    csv = 'clean,corrupted,answer,wrong\n"a b c","a b d"," c"," d"\n'
    assert pairs_from_csv(csv) == [PromptPair("a b c", "a b d", " c", " d")]
    with pytest.raises(InvalidInput, match="lacks the column"):
        pairs_from_csv("clean,answer\na,b\n")
    with pytest.raises(InvalidInput, match="3 or 4"):
        pairs_from_text("only | two")


def test_length_mismatch_shows_both_tokenizations(tiny_handle):
    with pytest.raises(InvalidInput) as e:
        encode_pairs(tiny_handle, [PromptPair("the cat sat on the mat", "the dog", " the", " a")])
    msg = str(e.value)
    assert "position by position" in msg and "clean:" in msg and "corrupted:" in msg and "'<|endoftext|>'" in msg


def test_multi_token_answer_says_how_it_tokenizes(tiny_handle):
    with pytest.raises(InvalidInput, match=r"is \d tokens \[") as e:
        encode_pairs(tiny_handle, [PromptPair("the cat", "the dog", " zzqqxx", " the")])
    assert "exactly one token" in str(e.value)
    with pytest.raises(InvalidInput, match="wrong answer"):
        encode_pairs(tiny_handle, [PromptPair("the cat", "the dog", " the")])


def test_repeated_pairs_corrupt_as_documented(tiny_handle):
    b = _pairs(tiny_handle, n=2, seq=6, corruption="prev_token")
    assert b.clean.shape == (2, 12) and b.diff_positions(0) == [5]  # A[-2] of the first copy
    assert int(b.answer[0]) == int(b.clean[0, 6])  # the answer's first occurrence follows the replaced token
    f = _pairs(tiny_handle, n=2, seq=6, corruption="fresh")
    assert f.diff_positions(0) == list(range(1, 7)) and torch.equal(f.clean[:, 7:], f.corrupted[:, 7:])


# ----------------------------------------------------------------------------- exact patching


def test_head_out_sweep_equals_hand_computed_patch(tiny_handle):
    b = _pairs(tiny_handle)
    res = run_sweeps(tiny_handle, b, ("head_out", "resid_pre"), max_rows=5)  # several chunks
    fn = metric_fn(b)
    bridge = bridge_of(tiny_handle)
    with torch.no_grad():
        _, cache = bridge.run_with_cache(b.clean, names_filter=lambda n: n in ("blocks.1.attn.hook_z",
                                                                              "blocks.1.hook_resid_pre"))

        def patch_head(z, hook):
            z = z.clone()
            z[:, :, 2] = cache["blocks.1.attn.hook_z"][:, :, 2]
            return z

        def patch_resid(x, hook):
            x = x.clone()
            x[:, 3] = cache["blocks.1.hook_resid_pre"][:, 3]
            return x

        head = fn(bridge.run_with_hooks(b.corrupted, fwd_hooks=[("blocks.1.attn.hook_z", patch_head)]))
        resid = fn(bridge.run_with_hooks(b.corrupted, fwd_hooks=[("blocks.1.hook_resid_pre", patch_resid)]))
    torch.testing.assert_close(res["head_out"].values[1, 2], head, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(res["resid_pre"].values[1, 3], resid, atol=1e-5, rtol=1e-5)


def test_sweeps_equal_transformer_lens(tiny_handle):
    from transformer_lens.patching import get_act_patch_attn_head_out_all_pos, get_act_patch_resid_pre

    b = _pairs(tiny_handle)
    fn = metric_fn(b)
    res = run_sweeps(tiny_handle, b, ("head_out", "resid_pre"))
    _, cache = bridge_of(tiny_handle).run_with_cache(b.clean)
    tl_heads = get_act_patch_attn_head_out_all_pos(bridge_of(tiny_handle), b.corrupted, cache, lambda lg: fn(lg).mean())
    tl_resid = get_act_patch_resid_pre(bridge_of(tiny_handle), b.corrupted, cache, lambda lg: fn(lg).mean())
    torch.testing.assert_close(res["head_out"].values.mean(-1), tl_heads.cpu(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(res["resid_pre"].values.mean(-1), tl_resid.cpu(), atol=1e-5, rtol=1e-5)


def test_normalised_effect_is_one_at_the_only_differing_token(tiny_handle):
    b = _pairs(tiny_handle, corruption="prev_token")
    res = run_sweeps(tiny_handle, b, ("resid_pre",))["resid_pre"]
    norm = res.normalised()
    assert norm[0, 5] == pytest.approx(1.0, abs=1e-4)  # the whole difference lives at position 5 in layer 0
    assert norm[0, :5].abs().max() < 1e-4  # earlier positions are identical in both runs
    assert res.table().shape[0] == norm.numel()


def test_stop_and_bad_kinds(tiny_handle):
    from probes.patching.activation import SweepStopped

    b = _pairs(tiny_handle)
    runs = prepare(tiny_handle, b, kinds=("head_out",))
    with pytest.raises(SweepStopped):
        sweep(runs, "head_out", should_stop=lambda: True)
    with pytest.raises(InvalidInput, match="did not capture"):
        sweep(runs, "resid_pre")
    with pytest.raises(InvalidInput, match="metric must be"):
        metric_fn(b, "accuracy")


# ----------------------------------------------------------------------------- path patching


def test_path_patch_matches_hand_built_two_head_model(tmp_path, tiny_tokenizer):
    from interp import load_model

    h = load_model(_native_dir(tmp_path, tiny_tokenizer, hand_built=True))
    assert bridge_of(h).W_K[1, 0][:12].abs().max() == 0 and bridge_of(h).W_O[0, 1][:, 12:].abs().max() == 0
    b = _pairs(h, n=4, seq=6, corruption="fresh")
    k_patch = run_sweeps(h, b, ("head_k",))["head_k"]  # 1.0's keys patched from the clean run
    via_00 = path_patch(h, b, "0.0", "k")
    via_01 = path_patch(h, b, "0.1", "k")
    # 1.0's keys depend only on 0.0: the path 0.0 -> 1.0 k restores exactly the clean keys of 1.0 ...
    torch.testing.assert_close(via_00.values[1, 0], k_patch.values[1, 0], atol=1e-5, rtol=1e-4)
    assert abs(float(k_patch.values[1, 0].mean() - k_patch.corrupted.mean())) > 0.05  # ... which matters
    # ... and 0.1 never reaches 1.0's keys
    torch.testing.assert_close(via_01.values[1, 0], via_01.corrupted, atol=1e-5, rtol=1e-4)
    assert torch.isnan(via_00.values[0]).all()


def test_path_patch_equals_transformer_lens_direct_path(tiny_handle):
    from transformer_lens.patching import get_act_patch_direct_path

    b = _pairs(tiny_handle)
    fn = metric_fn(b)
    _, clean = bridge_of(tiny_handle).run_with_cache(b.clean)
    _, corr = bridge_of(tiny_handle).run_with_cache(b.corrupted)
    for comp in ("q", "k", "v"):
        ours = path_patch(tiny_handle, b, "0.1", comp)
        tl = get_act_patch_direct_path(bridge_of(tiny_handle), b.corrupted, clean, corr, lambda lg: fn(lg).mean(), 0, 1,
                                       component=comp, verbose=False)
        torch.testing.assert_close(ours.values[1].mean(-1), tl[1].cpu(), atol=1e-4, rtol=1e-4)
    with pytest.raises(InvalidInput, match="not after"):
        path_patch(tiny_handle, b, "0.1", "k", receivers=["0.2"])


# ----------------------------------------------------------------------------- attribution


def test_attribution_equals_exact_when_metric_is_linear(tmp_path, tiny_tokenizer):
    """No LayerNorm, last layer: the logit difference is linear in its head outputs and attention output."""
    from interp import load_model

    h = load_model(_native_dir(tmp_path, tiny_tokenizer))
    b = _pairs(h, n=4, seq=6)
    kinds = ("head_out", "head_out_by_pos", "attn_out")
    exact = run_sweeps(h, b, kinds)
    attr = attribute(h, b, kinds)
    torch.testing.assert_close(attr.clean, exact["head_out"].clean, atol=1e-5, rtol=1e-5)
    for kind in kinds:
        last = exact[kind].values[1] - exact[kind].corrupted  # [..., batch] exact change of the last layer's cells
        torch.testing.assert_close(attr.estimates[kind][1], last, atol=1e-4, rtol=1e-4)
    assert attr.passes == {"forward": 2, "backward": 1}


def test_attribution_equals_transformer_lens_attribution_patch(tiny_handle):
    from transformer_lens.tools.analysis import attribution_patch

    b = _pairs(tiny_handle)
    fn = metric_fn(b.select([0]))
    ours = attribute(tiny_handle, b.select([0]), ("head_out_by_pos", "mlp_out"))
    tl = attribution_patch(bridge_of(tiny_handle), b.clean[:1], b.corrupted[:1], lambda lg: fn(lg).sum())
    for node, score in tl.node_scores.items():
        if node.kind == "attn_head_out":
            assert float(ours.estimates["head_out_by_pos"][node.layer, node.position, node.head, 0]) == \
                pytest.approx(score, abs=1e-5, rel=1e-4)
        elif node.kind == "mlp_out":
            assert float(ours.estimates["mlp_out"][node.layer, node.position, 0]) == pytest.approx(score, abs=1e-5,
                                                                                                rel=1e-4)


def test_compare_reports_correlation_and_attn_only_refusals(tmp_path, tiny_tokenizer):
    from interp import load_model

    h = load_model(_native_dir(tmp_path, tiny_tokenizer))
    b = _pairs(h, n=3, seq=6)
    c = compare(run_sweeps(h, b, ("attn_out",))["attn_out"], attribute(h, b, ("attn_out",)), k=3)
    assert -1 <= c.pearson <= 1 and 0 <= c.top_overlap <= 1 and len(c.labels) == c.exact.size
    with pytest.raises(InvalidInput, match="attention-only"):
        run_sweeps(h, b, ("mlp_out",))
    with pytest.raises(InvalidInput, match="attention-only"):
        edge_attribution(h, b)


def test_edge_attribution_faithfulness_keys(tiny_handle):
    b = _pairs(tiny_handle, n=2, seq=4)
    rep = edge_attribution(tiny_handle, b, ks=(5, 10_000), max_pairs=1, top=5)
    assert len(rep.edges) == 5 and rep.pairs_evaluated == 1 and rep.total_edges > 5
    assert rep.faithfulness[10_000] == pytest.approx(1.0, abs=1e-4)  # keeping every edge recovers the clean run


# ----------------------------------------------------------------------------- DLA and dataset statistics


def test_dla_terms_sum_to_the_logit_difference(tiny_handle):
    b = _pairs(tiny_handle)
    d = direct_logit_attribution(tiny_handle, b)
    assert float(d.layers["dla"].sum()) + d.constant == pytest.approx(d.logit_diff, abs=1e-4)
    assert d.heads.shape == (2, 4) and d.head_table().iloc[0]["head"].count(".") == 1


def test_dla_heads_equal_transformer_lens_on_a_compatibility_copy(tiny_gpt2_dir, tiny_handle):
    from transformer_lens.model_bridge import TransformerBridge
    from transformer_lens.tools.analysis import direct_logit_attribution as tl_dla

    b = _pairs(tiny_handle, n=1)
    ours = direct_logit_attribution(tiny_handle, b)
    bridge = TransformerBridge.boot_transformers(str(tiny_gpt2_dir), device="cpu")
    bridge.enable_compatibility_mode()
    res = tl_dla(bridge, b.clean, int(b.answer[0]), int(b.wrong[0]), unit="head")
    tl_heads = res.attribution.reshape(res.attribution.shape[0], -1)[:8, 0].reshape(2, 4)  # L0H0..L1H3 first
    torch.testing.assert_close(ours.heads, tl_heads.float(), atol=1e-4, rtol=1e-3)


def test_dataset_effects_interval_and_pvalue(tiny_handle):
    from probes.patching.activation import SweepResult

    b = _pairs(tiny_handle, n=6, corruption="prev_token")
    res = run_sweeps(tiny_handle, b, ("resid_pre",))["resid_pre"]
    df = dataset_effects(res, n_resamples=200)
    assert df.set_index("component").loc["resid_pre 0@5", "mean"] == pytest.approx(1.0, abs=1e-4)
    assert (df["ci_low"] <= df["mean"] + 1e-9).all() and (df["mean"] <= df["ci_high"] + 1e-9).all()
    # known per-pair effects: cell 0 all positive (exact sign-flip p = 2 / 2^6), cell 1 symmetric (p = 1)
    clean, corrupted = torch.ones(6), torch.zeros(6)
    values = torch.tensor([[0.5, 0.6, 0.7, 0.8, 0.9, 1.0], [1.0, -1.0, 0.5, -0.5, 0.2, -0.2]])
    syn = dataset_effects(SweepResult("head_out", ("layer", "head"), values[None], clean, corrupted), n_resamples=500)
    syn = syn.set_index("component")
    assert syn.loc["0.0", "p_value"] == pytest.approx(2 / 64) and syn.loc["0.1", "p_value"] == pytest.approx(1.0)
    assert 0.5 <= syn.loc["0.0", "ci_low"] < 0.75 < syn.loc["0.0", "ci_high"] <= 1.0
    with pytest.raises(InvalidInput, match="at least 2"):
        dataset_effects(run_sweeps(tiny_handle, b.select([0]), ("head_out",))["head_out"])


def test_pairs_from_tokens_checks_shapes(tiny_handle):
    t = torch.ones(2, 4, dtype=torch.long)
    with pytest.raises(InvalidInput, match="one shape"):
        pairs_from_tokens(tiny_handle, t, t[:, :3], torch.ones(2, dtype=torch.long))


def test_direct_effects_equal_dla_difference_without_layernorm(tmp_path, tiny_tokenizer):
    from interp import load_model
    from probes.patching.activation import direct_effects

    h = load_model(_native_dir(tmp_path, tiny_tokenizer))
    b = _pairs(h, n=3, seq=6)
    eff = direct_effects(h, b)
    dla_clean, dla_corr = direct_logit_attribution(h, b), direct_logit_attribution(h, b, on="corrupted")
    expected = dla_clean.per_pair_heads - dla_corr.per_pair_heads  # no final norm: the direct path is linear
    torch.testing.assert_close(eff.values - eff.corrupted, expected, atol=1e-4, rtol=1e-4)


def test_senders_into_a_receiver_set_equal_single_paths(tiny_handle):
    from probes.patching.activation import path_patch_senders

    b = _pairs(tiny_handle)
    many = path_patch_senders(tiny_handle, b, ["1.2"], "q")
    one = path_patch(tiny_handle, b, "0.3", "q", receivers=["1.2"])
    torch.testing.assert_close(many.values[0, 3], one.values[1, 2], atol=1e-5, rtol=1e-5)
    assert torch.isnan(many.values[1]).all()


def test_example_pair_fits_the_model(tiny_handle, tmp_path, tiny_tokenizer):
    from tasks.pairs import example_pair

    b = encode_pairs(tiny_handle, [example_pair(tiny_handle)])  # a text model: aligned, single-token answers
    assert b.clean.shape == b.corrupted.shape and b.has_wrong
    from interp import load_model

    attn = load_model("attn-only-2l")  # numbered tokens t1..t999: a repeated sequence, fresh first copy
    pair = example_pair(attn)
    assert pair.clean.split()[0].startswith("t") and pair.answer == pair.clean.split()[6]
    assert encode_pairs(attn, [pair]).diff_positions(0) == list(range(1, 8))


def test_example_pair_avoids_the_name_pairs_it_is_given():
    from interp import load_model
    from tasks.copy import names_for
    from tasks.pairs import example_pair

    handle = load_model("stdlib-gpt2")
    first = example_pair(handle)
    clean_names = {w for w in names_for(handle.tokenizer, "heldout") if f"({w}," in first.clean or f" {w})" in
                   first.clean}
    assert len(clean_names) == 2
    other = example_pair(handle, avoid={frozenset(clean_names)})
    assert other.clean != first.clean
    assert not all(f"{w}" in other.clean.split("):")[0] for w in clean_names)
