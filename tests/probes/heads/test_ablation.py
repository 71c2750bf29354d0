"""Per-head ablation of the in-context-learning effect: batched replicas equal a plain per-head loop, losses
match a hand computation, and on the trained 2-layer model the detectors' heads are the ones that matter."""
from __future__ import annotations

import math

import pytest
import torch

import interp
from interp.backends.bridge import bridge_of
from probes.heads.ablation import ablate_heads, copy_losses, icl_score, per_copy_icl
from tasks.repeats import repeated_random_tokens


def test_copy_losses_hand_computed():
    L, vocab = 3, 5
    tokens = torch.tensor([[0, 1, 2, 3, 1, 2, 3]])  # BOS + A + A
    logits = torch.zeros(1, 7, vocab)  # uniform: every loss is log(5) ...
    logits[0, 4, 2] = 100.0  # ... except position 4 predicting token 5 (= 2): loss ~0
    first, second = copy_losses(logits, tokens, L)
    assert float(first) == pytest.approx(math.log(vocab), abs=1e-5)  # predictions of tokens 2..3
    assert float(second) == pytest.approx(2 * math.log(vocab) / 3, abs=1e-4)  # tokens 4..6, one of them exact
    assert icl_score(logits, tokens, L) == pytest.approx(-math.log(vocab) / 3, abs=1e-4)
    assert per_copy_icl(logits, tokens, L).tolist() == pytest.approx([-math.log(vocab) / 3], abs=1e-4)


def _loop_reference(handle, tokens, L, mode):
    """One forward pass per head with a plain hook: what the batched version must equal."""
    out = torch.zeros(handle.info.n_layers, handle.info.n_heads)
    with torch.no_grad():
        _, cache = bridge_of(handle).run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_z"))
        for lay in range(handle.info.n_layers):
            mean = cache[f"blocks.{lay}.attn.hook_z"].mean(dim=(0, 1))  # [head, d_head]
            for h in range(handle.info.n_heads):
                def hook(z, hook=None, h=h, mean=mean):
                    z = z.clone()
                    z[:, :, h] = 0.0 if mode == "zero" else mean[h]
                    return z
                logits = bridge_of(handle).run_with_hooks(tokens, fwd_hooks=[(f"blocks.{lay}.attn.hook_z", hook)])
                out[lay, h] = icl_score(logits, tokens, L)
    return out


@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_batched_ablation_equals_per_head_loop(tiny_handle, mode):
    L = 10
    toks = repeated_random_tokens(3, L, tiny_handle.info.d_vocab, seed=0, bos=tiny_handle.bos_token_id or 0)
    res = ablate_heads(tiny_handle, toks, L, mode=mode, max_rows=7)  # forces chunks of 2 heads
    torch.testing.assert_close(res.ablated_icl, _loop_reference(tiny_handle, toks, L, mode), atol=1e-4, rtol=1e-4)
    assert res.effect.shape == (2, 4) and not torch.isnan(res.effect).any()


def test_ablation_subset_and_bad_mode(tiny_handle):
    toks = repeated_random_tokens(2, 5, tiny_handle.info.d_vocab, seed=0)
    res = ablate_heads(tiny_handle, toks, 5, heads=[(1, 2)])
    assert torch.isnan(res.ablated_icl).sum() == 7 and not math.isnan(float(res.ablated_icl[1, 2]))
    with pytest.raises(interp.InvalidInput):
        ablate_heads(tiny_handle, toks, 5, mode="resample")
    with pytest.raises(interp.InvalidInput):
        ablate_heads(tiny_handle, toks, 5, heads=[(2, 0)])


def test_trained_model_ablation_confirms_detectors():
    if "attn-only-2l" not in interp.bundled_models():
        pytest.skip("bundled attn-only-2l absent")
    from probes.heads.detectors import scan_heads

    handle = interp.load_model("attn-only-2l")
    L = 30
    toks = repeated_random_tokens(8, L, handle.info.d_vocab, seed=3)
    res = ablate_heads(handle, toks, L, mode="mean")
    assert res.baseline_icl < -3.0  # the second copy is far easier than the first
    s = scan_heads(handle, seq_len=L, n_batch=8)
    top_ind = tuple(map(int, s.top("induction", 1)[0].split(".")))
    top_prev = tuple(map(int, s.top("prev_token", 1)[0].split(".")))
    # the two heads the detectors name are the two whose ablation hurts in-context learning most
    top2 = {divmod(int(i), handle.info.n_heads) for i in res.effect.flatten().topk(2).indices}
    assert top2 == {top_ind, top_prev}
    assert float(res.effect[top_ind]) > 1.0 and float(res.effect[top_prev]) > 1.0


def test_second_copy_loss_leaves_out_the_copy_s_first_token():
    from probes.heads.ablation import second_copy_loss

    L, vocab = 3, 5
    tokens = torch.tensor([[0, 1, 2, 3, 1, 2, 3]])  # BOS + A + A; the copy starts at position L+1 = 4
    logits = torch.zeros(1, 7, vocab)
    logits[0, 3, 1] = 100.0  # position 3 predicts token 4 (the copy's first token, L+1): must not count
    logits[0, 4, 2] = 100.0  # position 4 predicts token 5: counts
    # tokens L+2..2L = positions 5, 6 -> predictions at 4 (exact) and 5 (uniform)
    assert second_copy_loss(logits, tokens, L).tolist() == pytest.approx([math.log(vocab) / 2], abs=1e-4)


def test_ablation_effect_is_the_second_copy_loss_rise_and_icl_is_kept(tiny_handle):
    from probes.heads.ablation import second_copy_loss
    from probes.heads.detectors import repeated_batch

    L = 5
    toks = repeated_batch(tiny_handle, 3, L)
    res = ablate_heads(tiny_handle, toks, L, mode="zero", heads=[(1, 2)])
    with torch.no_grad():
        base = float(second_copy_loss(tiny_handle.logits(toks), toks, L).mean())

        def zero(z, hook):
            z = z.clone()
            z[:, :, 2] = 0.0
            return z

        out = bridge_of(tiny_handle).run_with_hooks(toks, fwd_hooks=[("blocks.1.attn.hook_z", zero)])
    assert res.baseline_second == pytest.approx(base, abs=1e-5)
    assert float(res.effect[1, 2]) == pytest.approx(float(second_copy_loss(out, toks, L).mean()) - base, abs=1e-4)
    assert float(res.icl_effect[1, 2]) == pytest.approx(float(res.ablated_icl[1, 2]) - res.baseline_icl)
    assert res.ranking() == [(1, 2)]


@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_main_induction_head_ranks_first_under_both_ablations(mode):
    """attn-only-2l: every layer-1 head is an induction head, 1.2 the strongest; previous-token head 0.3 feeds them
    all. By the second-copy loss 1.2 ranks first of the induction heads under zero AND mean ablation (by the ICL
    difference, zero-ablating 1.2 even scores negative: its first-copy loss rises more), and 0.3 first overall."""
    if "attn-only-2l" not in interp.bundled_models():
        pytest.skip("bundled attn-only-2l absent")
    from probes.heads.detectors import repeated_batch

    handle = interp.load_model("attn-only-2l")
    toks = repeated_batch(handle, 10, 50, seed=0)  # the Heads page's rows
    res = ablate_heads(handle, toks, 50, mode=mode)
    ranking = res.ranking()
    assert ranking[0] == (0, 3)
    assert [h for h in ranking if h.layer == 1][0] == (1, 2)
    assert float(res.effect[1, 2]) > 0
    if mode == "zero":
        assert float(res.icl_effect[1, 2]) < 0  # why the ICL difference is not the ranking measure


def test_ablation_effects_carry_their_standard_errors(tiny_handle):
    """The noise floor of the Heads page: each head's effect has a standard error over the rows, from the
    spread of the rows' paired changes."""
    from probes.heads.ablation import ablate_heads
    from probes.heads.detectors import repeated_batch

    rep = repeated_batch(tiny_handle, 6, 8, seed=0)
    res = ablate_heads(tiny_handle, rep, 8, mode="zero")
    assert res.effect_se.shape == res.effect.shape and (res.effect_se >= 0).all()
    one = ablate_heads(tiny_handle, rep[:1], 8, mode="zero")
    assert (one.effect_se == 0).all()  # one row: no spread to measure


def test_head_report_states_its_noise_floor(tiny_handle):
    from probes.heads.report import ABLATION_SCORE, NOISE_SE, head_report

    rep = head_report(tiny_handle, seq_len=8, n_batch=6, ablation="zero")
    from probes.heads.ablation import ablate_heads
    from probes.heads.detectors import repeated_batch

    se = ablate_heads(tiny_handle, repeated_batch(tiny_handle, 6, 8, seed=0), 8, mode="zero").effect_se
    assert rep.noise[ABLATION_SCORE] == pytest.approx(NOISE_SE * float(se.max()), rel=1e-5)
