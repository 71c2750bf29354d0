"""Attribution graphs: the frozen-attention gradient is the analytic one; on a model whose MLPs are exact
transcoders the edges are the hand-computed direct effects and the replacement score is 1; batching and the
feature cap do not change the edges they compute."""
from __future__ import annotations

import pytest
import torch

from interp import InvalidInput, Site, load_model
from learned.transcoder import Transcoder, TranscoderConfig, transcoder_from_mlp
from probes.graph.attribution import GraphSettings, attribute
from probes.graph.replacement import freeze_edits

PROMPT = "the cat sat on the mat"  # the graph fixture's prompt (conftest.py)


def _centre(x: torch.Tensor) -> torch.Tensor:
    return x - x.mean(-1, keepdim=True)


def _frozen(handle, prompt):
    L = handle.info.n_layers
    reads = [Site(k, la) for la in range(L) for k in ("pattern", "ln1_scale", "ln2_scale", "mlp_out")]
    r = handle.run(prompt, read=reads + [Site("final_scale"), Site("resid_pre", 0)])
    return r


def test_frozen_attention_gradient_equals_the_analytic_one_on_a_one_layer_model(tmp_path, tiny_tokenizer):
    from interp.toy_models import save_hf_dir, tiny_gpt2

    handle = load_model(save_hf_dir(tiny_gpt2(tiny_tokenizer, n_layer=1, seed=3), tiny_tokenizer, tmp_path / "m"))
    w = handle.weights()
    r = _frozen(handle, PROMPT)
    n, t = r[Site("resid_pre", 0)].shape[1], 17
    edits = freeze_edits(handle)
    const = r[Site("mlp_out", 0)]
    edits[Site("mlp_out", 0)] = lambda act: const.clone()  # the MLP is replaced (attribution's setting)
    metric = lambda logits: logits[0, -1, t]  # noqa: E731
    got = handle.run(PROMPT, read=[Site("resid_pre", 0)], edit=edits, grad_of=metric).grads[Site("resid_pre", 0)][0]
    # by hand: logit_t = W_U[:, t] . LNf(x_q + sum_h sum_k A[h,q,k] LN1(x_k) W_V W_O + ...), scales frozen
    q = n - 1
    sf = r[Site("final_scale")][0, q, 0]
    g_r = _centre(w.ln_final_w * w.W_U[:, t]) / sf  # d logit / d resid_post[q]   [d]
    s1 = r[Site("ln1_scale", 0)][0, :, 0]  # [pos]
    pattern = r[Site("pattern", 0)][0]  # [head, q, k]
    want = torch.zeros(n, handle.info.d_model)
    want[q] += g_r
    for h in range(handle.info.n_heads):
        back = w.W_V[0, h] @ (w.W_O[0, h] @ g_r)  # [d]
        want += pattern[h, q][:, None] * _centre(w.ln1_w[0] * back)[None] / s1[:, None]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    free = handle.run(PROMPT, read=[Site("resid_pre", 0)], edit={Site("mlp_out", 0): lambda act: const.clone()},
                      grad_of=metric).grads[Site("resid_pre", 0)][0]
    assert float((free - want).abs().max()) > 1e-3  # without freezing the gradient is another one: the test can fail


def _hand_direct(handle, tc, r, vec: torch.Tensor, pos: int, enters: int, after_attention: bool,
                 target: tuple[str, int, int, torch.Tensor]) -> float:
    """The direct effect of adding ``vec`` to the residual stream at ``pos`` (entering block ``enters``, before or
    after its attention) on a target (kind, layer, position, read-out vector), through frozen attention and norms
    with every MLP held fixed."""
    w = handle.weights()
    n = r[Site("resid_pre", 0)].shape[1]
    delta = torch.zeros(n, handle.info.d_model)
    delta[pos] = vec
    kind, t_layer, t_pos, readout = target
    for layer in range(enters, handle.info.n_layers):
        if not (layer == enters and after_attention):
            s1 = r[Site("ln1_scale", layer)][0, :, 0]
            normed = _centre(delta) / s1[:, None] * w.ln1_w[layer]  # [pos, d]
            pattern = r[Site("pattern", layer)][0]
            attn = sum(pattern[h] @ (normed @ w.W_V[layer, h] @ w.W_O[layer, h]) for h in range(handle.info.n_heads))
            delta = delta + attn
        if kind == "feature" and layer == t_layer:
            s2 = r[Site("ln2_scale", layer)][0, t_pos, 0]
            return float(readout @ (_centre(delta[t_pos]) / s2))
    sf = r[Site("final_scale")][0, t_pos, 0]
    return float(readout @ (_centre(delta[t_pos]) / sf * w.ln_final_w))


def test_edges_equal_hand_computed_direct_effects_on_an_exact_transcoder_model(relu_handle, exact, graph):
    g, tc = graph, exact
    r = _frozen(relu_handle, PROMPT)
    w = relu_handle.weights()
    feats = [i for i, k in enumerate(g.kind) if k == "feature"]
    by_layer = {la: [i for i in feats if g.layer[i] == la] for la in range(g.n_layers)}
    assert len(by_layer[0]) > 20 and len(by_layer[1]) > 20
    u = w.W_U - w.W_U.mean(1, keepdim=True)
    logit = g.slice_of("logit").start
    emb0 = g.slice_of("embedding").start
    gen = torch.Generator().manual_seed(0)
    checked = nonzero = 0
    for _ in range(40):
        s = by_layer[0][int(torch.randint(len(by_layer[0]), (1,), generator=gen))]
        t = by_layer[1][int(torch.randint(len(by_layer[1]), (1,), generator=gen))]
        p, f = int(g.pos[s]), int(g.index[s])
        vec = float(g.activation[s]) * tc.W_dec[0][f, 0].detach()
        targets = [(t, ("feature", 1, int(g.pos[t]), tc.W_enc[1][:, int(g.index[t])].detach())),
                   (logit, ("logit", g.n_layers, int(g.pos[logit]), u[:, g.logit_tokens[0]]))]
        for node, target in targets:
            want = _hand_direct(relu_handle, tc, r, vec, p, 0, True, target)
            assert abs(float(g.adjacency[node, s]) - want) <= 1e-4 * max(1.0, abs(want)), (g.label(s), g.label(node))
            checked += 1
            nonzero += abs(want) > 1e-3
        e = emb0 + int(torch.randint(len(g.tokens), (1,), generator=gen))
        vec = r[Site("resid_pre", 0)][0, int(g.pos[e])]
        target = ("feature", 0, int(g.pos[by_layer[0][0]]), tc.W_enc[0][:, int(g.index[by_layer[0][0]])].detach())
        want = _hand_direct(relu_handle, tc, r, vec, int(g.pos[e]), 0, False, target)
        assert abs(float(g.adjacency[by_layer[0][0], e]) - want) <= 1e-4 * max(1.0, abs(want))
    assert checked == 80 and nonzero > 20  # most sampled edges are real, not zeros on both sides


def test_replacement_score_is_one_when_the_mlps_are_exact_transcoders(graph):
    assert float(abs(graph.activation[graph.slice_of("error")]).max()) < 1e-4
    replacement, completeness = graph.scores()
    assert replacement == pytest.approx(1.0, abs=1e-4) and completeness == pytest.approx(1.0, abs=1e-4)
    pruned = graph.pruned()
    assert 0 < int(pruned.node_mask[graph.slice_of("feature")].sum()) < graph.count("feature")


def test_a_trained_like_transcoder_has_error_nodes_and_lower_scores(relu_handle, exact):
    noisy = Transcoder(TranscoderConfig("per_layer", 2, exact.cfg.d_model, exact.cfg.d_transcoder, activation="relu"))
    noisy.load_state_dict(exact.state_dict())
    with torch.no_grad():
        noisy.W_dec[0].mul_(0.5)
    g = attribute(relu_handle, noisy, PROMPT, GraphSettings(batch_size=64))
    replacement, completeness = g.scores()
    assert replacement < 0.999 and completeness < 0.999
    assert float(g.activation[g.slice_of("error")].max()) > 1e-2


def test_batches_and_feature_cap_do_not_change_the_edges(relu_handle, exact, graph):
    one = attribute(relu_handle, exact, PROMPT, GraphSettings(batch_size=7))
    torch.testing.assert_close(one.adjacency, graph.adjacency, atol=1e-5, rtol=1e-4)
    capped = attribute(relu_handle, exact, PROMPT, GraphSettings(batch_size=16, max_feature_nodes=50))
    assert capped.count("feature") == 50 and capped.notes
    full_ids = {graph.node_id(i): i for i in range(graph.n_nodes)}
    rows = [full_ids[capped.node_id(i)] for i in range(capped.n_nodes)]
    torch.testing.assert_close(capped.adjacency, graph.adjacency[rows][:, rows], atol=1e-5, rtol=1e-4)
    infl = graph.influence()[: graph.count("feature")]
    kept = torch.tensor(rows[:50])
    assert float(infl[kept].sum()) > 0.5 * float(infl.sort(descending=True).values[:50].sum())


def test_logit_nodes_cover_the_probability_asked(graph):
    assert 1 <= len(graph.logit_tokens) <= 10
    assert sum(graph.logit_probabilities) >= 0.95 or len(graph.logit_tokens) == 10
    assert graph.logit_probabilities == sorted(graph.logit_probabilities, reverse=True)


@pytest.mark.parametrize("bad", [{"batch_size": 0}, {"max_logits": 0}, {"logit_probability": 1.5},
                                 {"node_threshold": 0.0}, {"edge_threshold": float("nan")},
                                 {"max_feature_nodes": -1}, {"batch_size": 2.5}])
def test_bad_settings_are_clear_errors(relu_handle, exact, bad):
    with pytest.raises(InvalidInput):
        attribute(relu_handle, exact, PROMPT, GraphSettings(**bad))


def test_a_transcoder_of_another_shape_is_refused(relu_handle, tiny_handle):
    other = Transcoder(TranscoderConfig("per_layer", 3, relu_handle.info.d_model, 8, k=2))
    with pytest.raises(InvalidInput, match="layers"):
        attribute(relu_handle, other, PROMPT)
    with pytest.raises(InvalidInput):
        attribute(relu_handle, transcoder_from_mlp(relu_handle.weights(), relu_handle.info), "")


def test_dashboard_keeps_each_features_top_contexts(relu_handle, exact):
    from probes.graph.dashboard import build_dashboard, feature_logit_effects
    from probes.graph.replacement import mlp_io

    tokens = torch.randint(1, relu_handle.info.d_vocab, (10, 12), generator=torch.Generator().manual_seed(0))
    dash = build_dashboard(relu_handle, exact, tokens, n_top=4, batch_size=3)
    x, _ = mlp_io(relu_handle, tokens, exact)
    acts = exact.encode(x).detach()  # [n, pos, L, f]
    layer, feat = 1, int(acts[..., 1, :].amax(dim=(0, 1)).argmax())
    peaks = acts[..., layer, feat].amax(1).sort(descending=True).values[:4]
    torch.testing.assert_close(torch.tensor(dash.top_value[layer, feat]), peaks)
    s, p = int(dash.top_seq[layer, feat, 0]), int(dash.top_pos[layer, feat, 0])
    assert float(acts[s, p, layer, feat]) == pytest.approx(float(peaks[0]))
    ctx = dash.contexts(layer, feat, relu_handle.tokenizer)
    assert len(ctx) == 4 and ctx[0].activation == pytest.approx(float(peaks[0]))
    assert dash.density[layer, feat] == pytest.approx(float((acts[..., layer, feat] > 0).float().mean()))
    up, down = feature_logit_effects(relu_handle, exact, layer, feat, n=3)
    assert len(up) == 3 and up[0][1] >= up[-1][1] > down[-1][1]
    with pytest.raises(InvalidInput):
        dash.contexts(9, 0, relu_handle.tokenizer)


def test_a_second_backend_gives_the_same_graph(tiny_gpt2_dir, tiny_handle):
    """The graph reaches the model only through the interface: the plain-PyTorch GPT-2 of the seam test (no hooks,
    no TransformerLens) gives the bridge's edges, routes and intervention numbers."""
    from probes.graph.intervene import intervention_check
    from probes.graph.routes import contribution_graph
    from tests.interp.test_second_backend import TorchGPT2

    plain = TorchGPT2(tiny_gpt2_dir)
    tc = Transcoder(TranscoderConfig("cross_layer", 2, 32, 48, k=4), seed=3).eval()
    graphs = [attribute(m, tc, PROMPT, GraphSettings(batch_size=40)) for m in (tiny_handle, plain)]
    assert graphs[0].kind == graphs[1].kind and (graphs[0].index == graphs[1].index).all()
    torch.testing.assert_close(graphs[1].adjacency, graphs[0].adjacency, atol=2e-5, rtol=1e-4)
    assert graphs[0].scores() == pytest.approx(graphs[1].scores(), abs=1e-5)
    routes = [contribution_graph(m, PROMPT) for m in (tiny_handle, plain)]
    assert abs(routes[0].attn - routes[1].attn).max() < 1e-4 and abs(routes[0].mlp - routes[1].mlp).max() < 1e-4
    checks = [intervention_check(m, tc, g, n_nodes=5, modes=("frozen_total", "model")) for m, g in
              zip((tiny_handle, plain), graphs)]
    for mode in ("frozen_total", "model"):
        assert checks[0].logit_meas[mode] == pytest.approx(checks[1].logit_meas[mode], abs=1e-4)
