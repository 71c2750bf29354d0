"""Head detectors on patterns and models whose attention is known: hand-set weights, the trained 2-layer model,
and TransformerLens's own head_detector on the same prompts."""
from __future__ import annotations

import math

import pytest
import torch

import interp
from interp.backends.bridge import bridge_of
from probes.heads.detectors import (
    HeadScores,
    detection_patterns,
    detector_scores,
    k_composition_scores,
    mul_scores,
    prefix_matching_scores,
    repeated_sequence_scores,
    scan_heads,
)
from tasks.repeats import random_tokens_with_repeats, repeated_random_tokens, tiled_random_segments

# ----------------------------------------------------------------------------- pure scoring on built patterns


def _ideal_patterns(tokens: torch.Tensor) -> torch.Tensor:
    """[1, batch, 4, q, k]: head 0 previous token, 1 induction, 2 duplicate, 3 everything on BOS."""
    b, pos = tokens.shape
    det = detection_patterns(tokens)
    pats = torch.zeros(1, b, 4, pos, pos)
    for h, name in enumerate(("prev_token", "induction", "duplicate")):
        d = det[name].clone()
        empty = d.sum(-1) == 0  # queries with no target attend to BOS
        d[..., 0] = d[..., 0] + empty.float()
        pats[0, :, h] = d / d.sum(-1, keepdim=True)
    pats[0, :, 3, :, 0] = 1.0
    return pats


def test_repeated_sequence_scores_on_ideal_patterns():
    L = 7
    toks = repeated_random_tokens(3, L, 50, seed=1)  # [3, 1 + 2L], BOS = 0, tokens 1..49
    s = repeated_sequence_scores(_ideal_patterns(toks), L)
    assert s["prev_token"][0].tolist() == pytest.approx([1, 0, 0, 0], abs=1e-6)
    assert s["induction"][0].tolist() == pytest.approx([0, 1, 0, 0], abs=1e-6)
    assert s["duplicate"][0].tolist() == pytest.approx([0, 0, 1, 0], abs=1e-6)
    with pytest.raises(interp.InvalidInput):
        repeated_sequence_scores(_ideal_patterns(toks), L + 1)


def test_prefix_matching_on_ideal_patterns():
    toks = random_tokens_with_repeats(4, 30, 6, 100, seed=0)  # tokens recur at random gaps
    pm = prefix_matching_scores(_ideal_patterns(toks), toks)[0]
    assert pm[1] == pytest.approx(1.0, abs=1e-6)  # the induction head attends only to prefix-match targets
    assert pm[3] == 0.0 and pm[0] < 0.5


def test_detection_patterns_match_transformer_lens():
    from transformer_lens import head_detector as hd

    toks = torch.tensor([[0, 5, 6, 7, 5, 6, 9, 5, 6]])
    ours = detection_patterns(toks)
    assert torch.equal(ours["prev_token"][0], hd.get_previous_token_head_detection_pattern(toks))
    assert torch.equal(ours["duplicate"][0], hd.get_duplicate_token_head_detection_pattern(toks))
    assert torch.equal(ours["induction"][0], hd.get_induction_head_detection_pattern(toks))


def test_mul_scores_hand_computed():
    p = torch.tensor([[1.0, 0, 0], [0.25, 0.75, 0], [0.5, 0.25, 0.25]])  # [q, k]
    d = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])  # previous-token pattern
    got = mul_scores(p[None, None, None], d[None])  # [1, 1]
    assert float(got) == pytest.approx((0.25 + 0.25) / 3)
    got_nobos = mul_scores(p[None, None, None], d[None], exclude_bos=True)
    assert float(got_nobos) == pytest.approx(0.25 / (0.75 + 0.25 + 0.25))


# ----------------------------------------------------------------------------- against TL's head_detector


PROMPTS = ["the cat sat on the mat. the cat sat on the mat.", "def add(a, b): return a + b def add(a, b)",
           "Hello, world! Hello again, world."]


@pytest.mark.parametrize("exclude_bos", [False, True])
def test_detector_scores_equal_head_detector(tiny_handle, exclude_bos):
    """One padded batched capture gives TransformerLens's detect_head numbers (which run one pass per prompt)."""
    from transformer_lens.head_detector import detect_head

    ours = detector_scores(tiny_handle, PROMPTS, exclude_bos=exclude_bos)
    for ours_name, tl_name in (("prev_token", "previous_token_head"), ("duplicate", "duplicate_token_head"),
                               ("induction", "induction_head")):
        theirs = detect_head(bridge_of(tiny_handle), PROMPTS, tl_name, exclude_bos=exclude_bos)
        torch.testing.assert_close(ours[ours_name], theirs.float(), atol=1e-5, rtol=1e-4)


# ----------------------------------------------------------------------------- a model whose attention is set by hand


@pytest.fixture(scope="module")
def hand_handle(tmp_path_factory):
    """1-layer attention-only TL-native model, no norms: head 0.0 attends to the previous token (Q/K read one-hot
    positions), its OV copies the token (copying score +1); head 0.1 attends uniformly with a negated OV (-1)."""
    from interp.native_models import build_native_model, native_config, save_native
    from training.induction import token_tokenizer

    n_ctx, d_tok, vocab = 16, 16, 40
    d_model = n_ctx + d_tok
    cfg = native_config(n_layers=1, d_model=d_model, n_heads=2, d_head=d_model // 2, d_vocab=vocab, n_ctx=n_ctx,
                        attn_only=True, normalization_type=None, positional_embedding_type="standard",
                        act_fn="gelu")
    model = build_native_model(cfg, seed=0)
    dh = d_model // 2
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        gen = torch.Generator().manual_seed(0)
        model.tok_embed.weight[:, n_ctx:] = torch.randn(vocab, d_tok, generator=gen)
        model.pos.weight[:, :n_ctx] = torch.eye(n_ctx)
        attn = model.layers[0].attn
        c = 30.0 * math.sqrt(dh)
        for i in range(1, n_ctx):  # query at position i looks for key position i - 1
            attn.q.weight[i - 1, i] = c  # nn.Linear weight: [out = head dims, in = d_model]
            attn.k.weight[i - 1, i - 1] = 1.0
        attn.v.weight[:d_tok, n_ctx:] = torch.eye(d_tok)  # head 0 reads the token part
        attn.o.weight[n_ctx:, :d_tok] = torch.eye(d_tok)  # ... and writes it back: OV = identity on tokens
        attn.v.weight[dh : dh + d_tok, n_ctx:] = torch.eye(d_tok)
        attn.o.weight[n_ctx:, dh : dh + d_tok] = -torch.eye(d_tok)  # head 1: OV = -identity
        model.head.weight.copy_(model.tok_embed.weight)  # unembed = embed^T: the OV circuit E E^T (+/-)
    out = save_native(model, cfg, token_tokenizer(vocab), tmp_path_factory.mktemp("hand") / "hand")
    return interp.load_model(out)


def test_hand_set_previous_token_head(hand_handle):
    s = scan_heads(hand_handle, seq_len=7, n_batch=4)
    assert float(s.scores["prev_token"][0, 0]) > 0.99
    assert float(s.scores["prev_token"][0, 1]) < 0.3  # uniform head: mean of 1/(q+1) over queries
    assert float(s.scores["induction"][0, 0]) < 0.01 and float(s.scores["duplicate"][0, 0]) < 0.01
    assert float(s.scores["copying"][0, 0]) == pytest.approx(1.0, abs=1e-4)
    assert float(s.scores["copying"][0, 1]) == pytest.approx(-1.0, abs=1e-4)
    assert s.top("prev_token", 1) == ["0.0"]


def test_scan_rejects_bad_lengths(hand_handle):
    with pytest.raises(interp.InvalidInput):
        scan_heads(hand_handle, seq_len=20)  # 1 + 2*20 > n_ctx 16
    with pytest.raises(interp.InvalidInput):
        scan_heads(hand_handle, seq_len=5, n_batch=0)


def test_table_columns_and_ranking():
    s = HeadScores("m", {"induction": torch.tensor([[0.1, 0.9], [0.5, 0.2]]),
                         "prev_token": torch.tensor([[0.8, 0.0], [0.1, 0.1]])})
    s = s.with_scores(ablation_effect=torch.tensor([[0.0, 1.5], [0.2, 0.0]]))
    t = s.table()
    assert list(t.columns[:4]) == ["head", "induction", "prev_token", "ablation_effect"]
    assert t["head"].tolist() == ["0.1", "1.0", "1.1", "0.0"]
    assert s.top("prev_token", 1) == ["0.0"]


def test_tiled_segments_repeat():
    toks = tiled_random_segments(3, 40, 100, seg_min=5, seg_max=9, gen=torch.Generator().manual_seed(0))
    assert toks.shape == (3, 40) and (toks[:, 0] == 0).all() and (toks[:, 1:] > 0).all()
    for row in toks:
        period = next(p for p in range(5, 10) if torch.equal(row[1 : 1 + p], row[1 + p : 1 + 2 * p]))
        assert torch.equal(row[1:-period], row[1 + period :])


# ----------------------------------------------------------------------------- the trained 2-layer model


@pytest.fixture(scope="module")
def trained_2l():
    if "attn-only-2l" not in interp.bundled_models():
        pytest.skip("bundled attn-only-2l absent (train it: python -m experiments run induction-phase-change)")
    return interp.load_model("attn-only-2l")


def test_trained_model_has_induction_and_previous_token_heads(trained_2l):
    s = scan_heads(trained_2l, seq_len=50, n_batch=10)
    ind, prev = s.scores["induction"], s.scores["prev_token"]
    assert float(ind[1].max()) > 0.7 and float(ind[0].max()) < 0.2  # induction lives in layer 1 only
    assert float(prev[0].max()) > 0.5  # the bar the induction-phase-change verdict uses
    top_ind = s.top("induction", 1)[0]
    assert float(s.scores["prefix_matching"][1, int(top_ind.split(".")[1])]) > 0.5
    # the previous-token head is the layer-0 head that K-composes most with the top induction head
    comp = k_composition_scores(trained_2l)[0, :, 1, int(top_ind.split(".")[1])]  # [head_a]
    assert int(comp.argmax()) == int(prev[0].argmax())


@pytest.mark.parametrize("kind", ["llama", "qwen2", "mistral"])
def test_grouped_query_kv_heads_expand_as_hugging_face_repeats_them(kind):
    """Query head h reads KV head h // (n_heads / n_kv_heads) (HF repeat_kv); every score has one entry per
    query head and is finite."""
    from probes.heads.detectors import _weights, copying_scores
    from tests.fuzz.model_dirs import gqa_dir

    handle = interp.load_model(gqa_dir(kind))
    w = _weights(handle)
    hf_v = bridge_of(handle).original_model.model.layers[0].self_attn.v_proj.weight  # [n_kv * d_head, d_model]
    d_head = 8
    for h in range(4):
        kv = h // 2
        torch.testing.assert_close(w["W_V"][0, h], hf_v[kv * d_head:(kv + 1) * d_head].T.float())
    assert copying_scores(handle).shape == (2, 4)
    scores = scan_heads(handle, seq_len=6, n_batch=2)
    assert all(v.shape == (2, 4) and bool(torch.isfinite(v).all()) for v in scores.scores.values())
    assert k_composition_scores(handle).shape == (2, 4, 2, 4)


def test_k_composition_is_zero_not_nan_for_all_zero_circuits(tiny_gpt2_dir, tiny_handle):
    h = interp.load_model(tiny_gpt2_dir)  # a fresh copy to break
    with torch.no_grad():
        bridge_of(h).blocks[0].attn.v.weight.zero_()  # every layer-0 OV circuit is zero
        bridge_of(h).blocks[0].attn.v.bias.zero_()
    kc = k_composition_scores(h)
    assert bool(torch.isfinite(kc).all()) and float(kc[0].abs().max()) == 0.0
    assert float(k_composition_scores(tiny_handle)[0].abs().max()) > 0  # the untouched model composes


def test_nan_weights_give_a_clear_error_not_a_segfault(tiny_gpt2_dir):
    from interp.errors import InvalidInput
    from probes.heads.detectors import copying_scores

    h = interp.load_model(tiny_gpt2_dir)  # a fresh copy to break
    with torch.no_grad():
        bridge_of(h).blocks[1].attn.v.weight.fill_(float("nan"))
    with pytest.raises(InvalidInput, match="NaN"):
        copying_scores(h)
