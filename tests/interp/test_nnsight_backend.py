"""The nnsight backend against the bridge backend: the same activations at every site both expose, the same edits,
early stops, answer-only logits and gradients, the same weights and readout, and the same analyses (head scores,
logit lens, activation / path / attribution patching, DLA, SAE splicing), in-process and through nnsight's
serialise-and-run simulation of an NDIF request (``remote="local"``). Models: code-gpt2, othello-gpt and a random
grouped-query Llama."""
from __future__ import annotations

import functools

import pytest
import torch

from interp import InvalidInput, ModelUnavailable, Site, load_model
from interp.sites import BLOCK_KINDS, HOOK_NAMES, MODEL_KINDS
from tests.fuzz import model_dirs

MODELS = ("code-gpt2", "othello-gpt", "llama-gqa")
REMOTES = ("none", "local")
TOL = dict(atol=1e-4, rtol=1e-4)


def _path(name: str) -> str:
    return str(model_dirs.gqa_dir("llama")) if name == "llama-gqa" else name


@functools.cache
def _pair(name: str):
    """(bridge model, nnsight model) of one model, each loaded on its own (the bridge rewires its HF modules)."""
    return load_model(_path(name)), load_model(_path(name), backend="nnsight")


@functools.cache
def _models(name: str, remote: str):
    bridge, nn = _pair(name)
    return bridge, nn.with_remote(remote)  # type: ignore[attr-defined]


def _tokens(model, rows: int = 2, length: int = 9, seed: int = 0) -> torch.Tensor:
    """Random in-vocabulary ids after BOS, the second row shorter (a padded batch)."""
    g = torch.Generator().manual_seed(seed)
    low = 1
    tokens = torch.randint(low, model.info.d_vocab, (rows, length), generator=g)
    tokens[:, 0] = model.bos_token_id if model.bos_token_id is not None else 0
    return tokens


def _batch(model):
    batch = model.tokenize(_tokens(model))
    batch.lengths[1] = 5  # the second row is 5 real tokens, then padding
    batch.tokens[1, 5:] = model.tokenizer.pad_token_id or 0
    return batch


def _all_sites(model) -> list[Site]:
    return [Site(k) if k in MODEL_KINDS else Site(k, layer) for k in HOOK_NAMES
            for layer in ([None] if k in MODEL_KINDS else range(model.info.n_layers))]


# TransformerLens copies of the residual stream that the bridge only fills after set_use_attn_in /
# set_use_hook_mlp_in (its run raises otherwise); the nnsight backend does not offer them.
BRIDGE_OPT_IN = ("attn_in", "q_input", "k_input", "v_input", "mlp_in")


@pytest.fixture(params=[(m, r) for m in MODELS for r in REMOTES], ids=lambda p: f"{p[0]}-{p[1]}")
def models(request):
    return _models(*request.param)


def test_same_activations_at_every_site_both_expose(models):
    bridge, nn = models
    batch = _batch(bridge)
    sites = [s for s in _all_sites(bridge) if bridge.has(s) and s.kind not in BRIDGE_OPT_IN]
    ref = bridge.run(batch, read=sites)
    filled = [s for s in sites if s in ref]  # the bridge lists pos_embed on rotary models but never fills it
    assert len(filled) >= 17 * bridge.info.n_layers  # every block site kind but the opt-in copies
    missing = [str(s) for s in filled if not nn.has(s)]
    assert not missing, f"nnsight lacks sites the bridge fills: {missing}"
    got = nn.run(batch, read=filled)
    for s in filled:
        assert got[s].shape == ref[s].shape, s
        real = ref[s] if s.kind not in ("attn_scores",) else ref[s].clamp_min(-1e4)
        torch.testing.assert_close(got[s] if s.kind != "attn_scores" else got[s].clamp_min(-1e4), real, **TOL,
                                   msg=lambda m, s=s: f"{s}: {m}")
    torch.testing.assert_close(got.logits, ref.logits, **TOL)
    assert nn.info.backend == "nnsight" and bridge.info.backend == "bridge"
    same = {k for k, v in bridge.info.to_dict().items() if v == getattr(nn.info, k)}
    assert {"n_layers", "n_heads", "n_kv_heads", "d_model", "d_head", "d_mlp", "d_vocab", "n_ctx", "norm", "eps",
            "positional", "act_fn", "gated_mlp", "prepend_bos", "n_params", "sha256", "architecture"} <= same


def _edits(model):
    """Edits at sites of every kind of cut (whole tensor, head view, fused q/k/v, source op, norm, resid_mid)."""
    last = model.info.n_layers - 1
    edits = {
        Site("resid_pre", 1): lambda x: x * 0.5,
        Site("v", 0): lambda v: v.flip(-1),
        Site("pattern", 0): lambda p: p.roll(1, dims=-1),
        Site("z", 1): lambda z: z * torch.tensor([0.0] + [1.0] * (z.shape[2] - 1)).view(1, 1, -1, 1),
        Site("attn_out", last): lambda x: x * 0.9,  # the same tap as resid_mid: attn_out is edited first
        Site("resid_mid", last): lambda x: x + 0.1,
        Site("ln2_normalized", 0): lambda x: x * 1.5,
        Site("mlp_post", last): torch.zeros_like,
    }
    if model.info.architecture != "GPT2LMHeadModel":  # the bridge's resid_mid edit misses the residual there
        del edits[Site("resid_mid", last)]  # (see test_resid_mid_edit_reaches_both_of_its_readers)
    return edits


def test_edits_stops_answer_logits_and_gradients_match(models):
    bridge, nn = models
    batch = _batch(bridge)
    last = bridge.info.n_layers - 1
    read = [Site("resid_pre", 1), Site("pattern", 0), Site("z", 1), Site("resid_mid", last), Site("attn_out", last),
            Site("v", 0), Site("ln2_normalized", 0)]
    ref = bridge.run(batch, read=read, edit=_edits(bridge))
    got = nn.run(batch, read=read, edit=_edits(nn))
    base = bridge.run(batch)
    assert not torch.allclose(ref.logits, base.logits, atol=1e-3)  # the edits do something
    torch.testing.assert_close(got.logits, ref.logits, **TOL)
    for s in read:
        torch.testing.assert_close(got[s], ref[s], **TOL, msg=lambda m, s=s: f"{s}: {m}")

    stop = Site("pattern", 1)
    ref_stop = bridge.run(batch, read=[Site("z", 0), stop], stop_after=stop)
    got_stop = nn.run(batch, read=[Site("z", 0), stop], stop_after=stop)
    assert got_stop.logits is None and ref_stop.logits is None
    torch.testing.assert_close(got_stop[stop], ref_stop[stop], **TOL)

    pos = batch.lengths - 1
    answer = nn.run(batch, logit_positions=pos).logits
    assert answer.shape == (2, 1, bridge.info.d_vocab)
    torch.testing.assert_close(answer, bridge.run(batch, logit_positions=pos).logits, **TOL)

    def metric(logits):
        return logits[torch.arange(2), pos, 3].sum() if logits.shape[1] > 1 else logits[:, 0, 3].sum()

    sites = [Site("resid_pre", 0), Site("z", 1), Site("q", 0), Site("attn_out", 0), Site("resid_mid", 0),
             Site("mlp_out", 0), Site("ln1_normalized", 1), Site("pattern", 1)]
    if bridge.info.norm == "RMS":  # the bridge's RMSNorm graph does not pass through its hook_normalized
        sites.remove(Site("ln1_normalized", 1))
    ref_g = bridge.run(batch, read=sites, grad_of=metric)
    got_g = nn.run(batch, read=sites, grad_of=metric)
    for s in sites:
        assert not got_g[s].requires_grad and not got_g.grads[s].requires_grad
        torch.testing.assert_close(got_g.grads[s], ref_g.grads[s], **TOL, msg=lambda m, s=s: f"grad {s}: {m}")


def test_resid_mid_edit_reaches_both_of_its_readers():
    """Editing resid_mid changes the second norm's input AND the residual the MLP output is added to: the same
    logits as adding the change to the attention output with a plain PyTorch hook on the Hugging Face model."""
    from interp.loading import load_hf_causal_lm

    _, nn = _pair("llama-gqa")
    batch = _batch(nn)
    hf = load_hf_causal_lm(model_dirs.gqa_dir("llama"), device=torch.device("cpu"), dtype=torch.float32)
    handle = hf.model.layers[1].self_attn.register_forward_hook(lambda m, a, o: (o[0] + 0.1, *o[1:]))
    with torch.no_grad():
        truth = hf(input_ids=batch.tokens, attention_mask=batch.attention_mask).logits
    handle.remove()
    got = nn.run(batch, edit={Site("resid_mid", 1): lambda x: x + 0.1}).logits
    torch.testing.assert_close(got, truth, **TOL)
    assert not torch.allclose(got, nn.run(batch).logits, atol=1e-3)


def test_weights_and_readout_match(models):
    bridge, nn = models
    wb, wn = bridge.weights(), nn.weights()
    for field in ("W_E", "W_pos", "W_U", "W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O", "W_in", "W_gate",
                  "W_out", "b_in", "b_out", "ln1_w", "ln1_b", "ln2_w", "ln2_b", "ln_final_w", "ln_final_b"):
        a, b = getattr(wb, field), getattr(wn, field)
        if b is None:
            assert a is None or not bool(a.abs().any()), field  # absent here, absent or all zero there
            continue
        assert a is not None, field
        torch.testing.assert_close(b, a, **TOL, msg=lambda m, f=field: f"{f}: {m}")
    resid = torch.randn(3, 4, bridge.info.d_model)
    torch.testing.assert_close(nn.readout(resid), bridge.readout(resid), **TOL)


def test_grad_true_is_local_only(models):
    _, nn = models
    if nn.remote == "none":
        run = nn.run("a", read=[Site("resid_pre", 0)], grad=True) if nn.info.name != "othello-gpt" else \
            nn.run(torch.tensor([[0, 5, 6]]), read=[Site("resid_pre", 0)], grad=True)
        assert run.logits.requires_grad
    else:
        with pytest.raises(InvalidInput, match="grad_of"):
            nn.run(torch.tensor([[0, 5, 6]]), read=[Site("resid_pre", 0)], grad=True)


def test_sites_nnsight_cannot_reach_are_refused_clearly():
    _, nn = _pair("llama-gqa")
    assert not nn.has(Site("pos_embed")) and not nn.has(Site("mlp_in", 0))
    with pytest.raises(InvalidInput, match="no site"):
        nn.run(torch.tensor([[0, 5]]), read=[Site("mlp_in", 0)])
    with pytest.raises(InvalidInput, match="no site"):
        nn.run(torch.tensor([[0, 5]]), read=["hook_pos_embed"])


def test_native_models_are_refused_by_nnsight():
    with pytest.raises(ModelUnavailable, match="TransformerLens-native"):
        load_model("attn-only-1l", backend="nnsight")


def test_unknown_backend_is_refused():
    for bad in ("nnsite", "", None, 3, "NDIF "):
        with pytest.raises(InvalidInput, match="Unknown backend"):
            load_model("code-gpt2", backend=bad)  # type: ignore[arg-type]
    assert set(BLOCK_KINDS) and set(MODEL_KINDS)


# ----------------------------------------------------------------------------- the analyses


def _close(a, b, what):
    torch.testing.assert_close(torch.as_tensor(a).float(), torch.as_tensor(b).float(), atol=2e-4, rtol=2e-4,
                               msg=lambda m: f"{what}: {m}")


@pytest.mark.slow
def test_analyses_give_the_same_results(models):
    """Head scores, logit lens, activation capture, activation / path / attribution patching and DLA: the same
    numbers on both backends (through ``remote="local"``, each sweep travels as ONE serialised session)."""
    from probes.heads.detectors import scan_heads
    from probes.lens.logit import batch_residual_stack, logit_lens
    from probes.patching.activation import direct_effects, run_sweeps
    from probes.patching.attribution import attribute
    from probes.patching.dla import direct_logit_attribution
    from tasks.pairs import repeated_sequence_pairs

    bridge, nn = models
    a, b = scan_heads(bridge, seq_len=6, n_batch=2), scan_heads(nn, seq_len=6, n_batch=2)
    assert set(a.scores) == set(b.scores)
    for k in a.scores:
        _close(b.scores[k], a.scores[k], f"head score {k}")

    prompt = _tokens(bridge, rows=1, length=8)[0]
    la, lb = logit_lens(bridge, prompt), logit_lens(nn, prompt)
    _close(lb.target_prob, la.target_prob, "lens target prob")
    _close(lb.target_logit, la.target_logit, "lens target logit")
    _close(batch_residual_stack(nn, _tokens(bridge)), batch_residual_stack(bridge, _tokens(bridge)), "capture")

    pairs = repeated_sequence_pairs(bridge, 2, 4, seed=1)
    kinds = ("head_out", "resid_pre", "head_q")
    sa, sb = run_sweeps(bridge, pairs, kinds), run_sweeps(nn, pairs, kinds)
    for k in kinds:
        _close(sb[k].values, sa[k].values, f"sweep {k}")
        assert sa[k].values.std() > 0
    at_a, at_b = attribute(bridge, pairs, kinds), attribute(nn, pairs, kinds)
    for k in kinds:
        _close(at_b.estimates[k], at_a.estimates[k], f"attribution {k}")
    da, db = direct_logit_attribution(bridge, pairs), direct_logit_attribution(nn, pairs)
    _close(db.heads, da.heads, "DLA heads")
    _close(db.logit_diff, da.logit_diff, "DLA logit diff")
    pa, pb = direct_effects(bridge, pairs), direct_effects(nn, pairs)
    _close(pb.values, pa.values, "path patching to the logits")


def test_sae_splicing_gives_the_same_metrics():
    from learned.sae import SparseAutoencoder
    from learned.sae_files import list_saes, read_sae_dir
    from probes.features.splice import splice_metrics

    bridge, nn = _pair("code-gpt2")
    sae = SparseAutoencoder.from_saelens(*read_sae_dir(list_saes("code-gpt2")[0]))
    tokens = _tokens(bridge, rows=3, length=12)
    ma, mb = splice_metrics(bridge, sae, tokens), splice_metrics(nn.with_remote("local"), sae, tokens)
    for field in ("ce_clean", "ce_sae", "ce_zero", "kl", "l0"):
        _close(getattr(mb, field), getattr(ma, field), field)


def test_nothing_is_written_to_the_home_directory(tmp_path):
    """Loading and running the nnsight backend (in-process and through remote='local') writes nothing under $HOME
    (nnsight's settings come from interp/backends/nnsight.yaml; its ~/.config file is neither read nor written)."""
    import os
    import subprocess
    import sys

    home = tmp_path / "home"
    home.mkdir()
    script = ("import torch; from interp import load_model, Site; m = load_model('code-gpt2', backend='nnsight');"
              "m.run(torch.tensor([[0, 5, 6]]), read=[Site('pattern', 0)]);"
              "m.with_remote('local').run(torch.tensor([[0, 5, 6]]), read=[Site('z', 1)]); print('ran')")
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CONFIG_HOME", "NNSIGHT_CONFIG", "HF_HOME")}
    env.update(HOME=str(home), HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), PYTHONWARNINGS="ignore")
    from tests.fuzz import ROOT

    env["PYTHONPATH"] = str(ROOT)
    run = subprocess.run([sys.executable, "-c", script], cwd=str(ROOT), env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0 and "ran" in run.stdout, run.stderr[-2000:]
    assert not any(home.rglob("*")), sorted(str(p) for p in home.rglob("*"))
