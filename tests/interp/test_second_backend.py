"""The model interface is a real seam (issue 21): a second backend, a plain-PyTorch GPT-2 written here from the
Hugging Face weights, gives every analysis family the same numbers as the TransformerBridge backend.

Why a hand-written GPT-2: it shares nothing with TransformerLens (no hooks, no bridge, no Hugging Face modules), so
an analysis that gets the same numbers through it reaches the model only through :class:`interp.model.Model`.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import AutoTokenizer

from interp import InvalidInput, Model, ModelInfo, Run, Site, Weights, load_model
from interp.model import local_gradients
from interp.sites import BLOCK_KINDS, MODEL_KINDS
from learned.sae import SAEConfig, SparseAutoencoder
from probes.features.splice import splice_metrics
from probes.fourier.modular import model_fourier
from probes.heads.detectors import SCORE_NAMES, detector_scores, k_composition_scores, scan_heads
from probes.lens.logit import logit_lens
from probes.patching.activation import SWEEP_KINDS, direct_effects, path_patch, run_sweeps
from probes.patching.attribution import attribute, edge_attribution
from probes.patching.dla import direct_logit_attribution
from probes.probing.layers import capture_texts
from probes.probing.linear import split_indices, sweep_layers
from tasks.labelled import bracket_example_csv, parse_labelled_csv
from tasks.pairs import PairBatch, repeated_sequence_pairs
from tests.builders import modular_gpt2_dir

#: The sites this backend exposes (GPT-2 has no rotary, gated-MLP or split q/k/v-input sites).
SITES = frozenset(MODEL_KINDS) | frozenset(BLOCK_KINDS) - {"attn_in", "q_input", "k_input", "v_input", "rot_q",
                                                           "rot_k", "mlp_pre_linear"}


class _Stop(Exception):
    """Raised at the ``stop_after`` site: nothing after it is computed."""


def gpt2_weights(sd: dict[str, torch.Tensor], n_layers: int, n_heads: int) -> Weights:
    """A Hugging Face GPT-2 state dict in the :class:`Weights` layout (Conv1D weights are ``x @ W``)."""
    def get(name: str) -> torch.Tensor:
        return sd[f"transformer.{name}"].float()

    def stack(name: str) -> torch.Tensor:  # [layer, ...]
        return torch.stack([get(f"h.{i}.{name}") for i in range(n_layers)])

    d_model = get("wte.weight").shape[1]
    d_head = d_model // n_heads
    qkv = stack("attn.c_attn.weight").reshape(n_layers, d_model, 3, n_heads, d_head)
    qkv = qkv.permute(2, 0, 3, 1, 4).contiguous()  # [3, layer, head, d_model, d_head]
    qkv_b = stack("attn.c_attn.bias").reshape(n_layers, 3, n_heads, d_head).transpose(0, 1)  # [3, layer, head, d_head]
    return Weights(
        W_E=get("wte.weight"), W_pos=get("wpe.weight"), b_U=None,  # GPT-2's unembedding has no bias
        W_U=sd.get("lm_head.weight", sd["transformer.wte.weight"]).float().T.contiguous(),  # tied: [d_model, d_vocab]
        W_Q=qkv[0], W_K=qkv[1], W_V=qkv[2], b_Q=qkv_b[0], b_K=qkv_b[1], b_V=qkv_b[2],
        W_O=stack("attn.c_proj.weight").reshape(n_layers, n_heads, d_head, d_model), b_O=stack("attn.c_proj.bias"),
        W_in=stack("mlp.c_fc.weight"), b_in=stack("mlp.c_fc.bias"),  # [layer, d_model, d_mlp], [layer, d_mlp]
        W_out=stack("mlp.c_proj.weight"), b_out=stack("mlp.c_proj.bias"),  # [layer, d_mlp, d_model], [layer, d_model]
        ln1_w=stack("ln_1.weight"), ln1_b=stack("ln_1.bias"), ln2_w=stack("ln_2.weight"), ln2_b=stack("ln_2.bias"),
        ln_final_w=get("ln_f.weight"), ln_final_b=get("ln_f.bias"))


class TorchGPT2(Model):
    """GPT-2 in plain PyTorch from a Hugging Face directory; every site is one call of ``at`` in forward order."""

    def __init__(self, path: Path) -> None:
        cfg = json.loads((path / "config.json").read_text())
        L, H, d = cfg["n_layer"], cfg["n_head"], cfg["n_embd"]
        sd = load_file(str(path / "model.safetensors"))
        self.w = gpt2_weights(sd, L, H)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.info = ModelInfo(
            name=f"{path} (plain torch)", source="local", path=str(path), architecture="GPT2LMHeadModel",
            n_layers=L, n_heads=H, d_model=d, d_head=d // H, d_vocab=cfg["vocab_size"], n_ctx=cfg["n_positions"],
            attn_only=False, n_params=sum(t.numel() for t in sd.values()), dtype="float32", device="cpu",
            sha256=hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest(), d_mlp=cfg.get("n_inner")
            or 4 * d, eps=cfg["layer_norm_epsilon"], act_fn="gelu_new", backend="torch")

    def has(self, site: Site) -> bool:
        return site.kind in SITES and (site.layer is None or site.layer < self.info.n_layers)

    def weights(self) -> Weights:
        return self.w

    def readout(self, resid: torch.Tensor) -> torch.Tensor:  # [..., d_model] -> [..., d_vocab]
        return self._ln(resid, self.w.ln_final_w, self.w.ln_final_b, lambda site, x: x, "final", None) @ self.w.W_U

    def _forward(self, tokens, *, attention_mask, read, edit, stop_after, grad, grad_of, logit_positions) -> Run:
        keep, reads, acts = grad or grad_of is not None, set(read), {}

        def at(site: Site, x: torch.Tensor) -> torch.Tensor:  # edit, then read, then maybe stop
            if site in edit:
                out = edit[site](x)
                x = x if out is None else out
            if site in reads:
                if keep and not x.requires_grad:  # nothing upstream needs a gradient: this read is the leaf
                    x = x.detach().requires_grad_(True)
                acts[site] = x if keep else x.detach()
            if site == stop_after:
                raise _Stop
            return x

        try:
            logits = self._gpt2(tokens, attention_mask, at, logit_positions)
        except _Stop:
            return Run(None, acts)
        if grad_of is not None:
            grads, acts, logits = local_gradients(grad_of, logits, acts, keep_graph=grad)
            return Run(logits, acts, grads)
        return Run(logits, acts)

    def _ln(self, x, w, b, at, name: str, layer: int | None) -> torch.Tensor:
        x = x - x.mean(-1, keepdim=True)  # [batch, pos, d_model]
        scale = at(Site(f"{name}_scale", layer), (x.pow(2).mean(-1, keepdim=True) + self.info.eps).sqrt())  # [.., 1]
        return at(Site(f"{name}_normalized", layer), x / scale) * w + b

    def _gpt2(self, tokens, mask, at, logit_positions) -> torch.Tensor:
        w, (batch, n) = self.w, tokens.shape
        pos = torch.arange(n, device=tokens.device)
        resid = at(Site("embed"), w.W_E[tokens]) + at(Site("pos_embed"), w.W_pos[pos.expand(batch, n)])  # [b, p, d]
        allowed = (pos[:, None] >= pos[None, :])[None, None]  # [1, 1, query_pos, key_pos] causal
        if mask is not None:
            allowed = allowed & mask.bool()[:, None, None, :]  # [batch, 1, query_pos, key_pos] no padded keys
        for i in range(self.info.n_layers):
            resid = at(Site("resid_pre", i), resid)
            x = self._ln(resid, w.ln1_w[i], w.ln1_b[i], at, "ln1", i)
            q, k, v = (at(Site(s, i), torch.einsum("bpd,hde->bphe", x, W[i]) + b[i])  # [batch, pos, head, d_head]
                       for s, W, b in (("q", w.W_Q, w.b_Q), ("k", w.W_K, w.b_K), ("v", w.W_V, w.b_V)))
            scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / self.info.d_head ** 0.5  # [batch, head, q_pos, k_pos]
            scores = at(Site("attn_scores", i), scores.masked_fill(~allowed, torch.finfo(scores.dtype).min))
            pattern = at(Site("pattern", i), scores.softmax(-1))  # [batch, head, query_pos, key_pos]
            z = at(Site("z", i), torch.einsum("bhqk,bkhe->bqhe", pattern, v))  # [batch, pos, head, d_head]
            attn_out = at(Site("attn_out", i), torch.einsum("bqhe,hed->bqd", z, w.W_O[i]) + w.b_O[i])  # [b, p, d]
            resid = at(Site("resid_mid", i), resid + attn_out)
            x = self._ln(at(Site("mlp_in", i), resid), w.ln2_w[i], w.ln2_b[i], at, "ln2", i)
            pre = at(Site("mlp_pre", i), x @ w.W_in[i] + w.b_in[i])  # [batch, pos, d_mlp]
            post = at(Site("mlp_post", i), F.gelu(pre, approximate="tanh"))  # gelu_new
            resid = at(Site("resid_post", i), resid + at(Site("mlp_out", i), post @ w.W_out[i] + w.b_out[i]))
        x = at(Site("unembed_in"), self._ln(resid, w.ln_final_w, w.ln_final_b, at, "final", None))  # [b, p, d]
        if logit_positions is not None:
            x = x[torch.arange(batch), logit_positions][:, None]  # [batch, 1, d_model]
        return at(Site("logits"), x @ w.W_U)  # [batch, pos, d_vocab]


# ----------------------------------------------------------------------------- the two backends

#: Largest absolute difference seen per analysis family (printed with ``pytest -s``; the report quotes them).
DIFFS: dict[str, float] = {}


def same(a, b, family: str, *, atol: float = 2e-5, rtol: float = 1e-4) -> None:
    """Assert two results agree to float tolerance (tensors, arrays, numbers; None only with None)."""
    if a is None or b is None:
        assert a is None and b is None, f"{family}: {a!r} vs {b!r}"
        return
    a, b = (x.detach().double() if isinstance(x, torch.Tensor) else torch.tensor(x, dtype=torch.float64)
            for x in (a, b))
    torch.testing.assert_close(a, b, atol=atol, rtol=rtol, equal_nan=True, msg=lambda m: f"{family}: {m}")
    diff = float((a - b).abs().nan_to_num(0.0).max()) if a.numel() else 0.0
    DIFFS[family] = max(DIFFS.get(family, 0.0), diff)


CODE_GPT2 = Path(__file__).parents[2] / "models" / "code-gpt2"


@pytest.fixture(scope="module")
def both(tiny_gpt2_dir, tiny_handle) -> tuple[Model, Model]:
    """(bridge, plain torch) on the random tiny GPT-2 (2 layers, 4 heads, d_model 32)."""
    return tiny_handle, TorchGPT2(tiny_gpt2_dir)


@pytest.fixture(scope="module", params=["tiny-gpt2", "code-gpt2"])
def models(request, both) -> tuple[Model, Model]:
    """The tiny pair, then the bundled, trained code-gpt2 (4 layers, 6 heads, d_model 192, 4096 tokens)."""
    return both if request.param == "tiny-gpt2" else (load_model(CODE_GPT2), TorchGPT2(CODE_GPT2))


@pytest.fixture(scope="module", autouse=True)
def _print_diffs():
    yield
    print("\nlargest bridge-vs-torch differences:", {k: f"{v:.2g}" for k, v in sorted(DIFFS.items())})


TEXTS = ["the cat sat on the mat.", "def add(a, b):", "hello world", "import os\nprint(os.getcwd())"]


def test_capture_reads_edits_stops_and_gradients_agree(models):
    bridge, plain = models
    batch = bridge.tokenize(TEXTS)
    assert batch.padded and torch.equal(batch.tokens, plain.tokenize(TEXTS).tokens)
    common = [s for s in (*(Site(k) for k in MODEL_KINDS), *(Site(k, i) for k in BLOCK_KINDS
                                                             for i in range(bridge.info.n_layers)))
              if bridge.has(s) and plain.has(s)]
    assert len(common) == 6 + 17 * bridge.info.n_layers  # all but attn_in, q/k/v_input, mlp_in (gated off in TL)
    runs = [m.run(batch, read=common) for m in models]  # padded: attention masks, every position compared
    for site in common:
        same(runs[0][site], runs[1][site], "capture")
    same(runs[0].logits, runs[1].logits, "capture")
    keep = torch.ones(bridge.info.n_heads, 1)  # [head, 1]
    keep[1] = 0.0
    edit = {Site("z", 0): lambda z: z * keep,  # head 0.1 ablated
            Site("resid_mid", 1): lambda x: x.mul_(0.5)}  # in place
    runs = [m.run(batch, read=[Site("pattern", 1), Site("resid_mid", 1)], edit=edit) for m in models]
    same(runs[0][Site("pattern", 1)], runs[1][Site("pattern", 1)], "capture")
    same(runs[0][Site("resid_mid", 1)], runs[1][Site("resid_mid", 1)], "capture")  # read after the edit
    same(runs[0].logits, runs[1].logits, "capture")
    runs = [m.run(batch, read=[Site("q", 1)], stop_after=Site("pattern", 1)) for m in models]
    assert runs[0].logits is None and runs[1].logits is None
    same(runs[0][Site("q", 1)], runs[1][Site("q", 1)], "capture")
    read = [Site("resid_pre", 0), Site("z", 1), Site("mlp_post", 0), Site("final_scale")]
    runs = [m.run(batch, read=read, grad_of=lambda lg: lg[:, 0, 7].sum(), logit_positions=batch.lengths - 1)
            for m in models]
    for site in read:
        same(runs[0].grads[site], runs[1].grads[site], "capture")
    assert runs[1].logits.shape == (4, 1, plain.info.d_vocab)
    run = plain.run(batch, read=[Site("resid_post", 1)], grad=True)  # the graph is kept through the reads
    resid = run[Site("resid_post", 1)]
    assert resid.requires_grad and run.logits.requires_grad


def test_weights_and_readout_agree(models):
    bridge, plain = models
    wb, wp = bridge.weights(), plain.weights()
    for name in Weights.__dataclass_fields__:
        a, b = getattr(wb, name), getattr(wp, name)
        if name == "b_U":  # the bridge hands out GPT-2's absent unembedding bias as zeros
            assert b is None and not bool(a.any())
            continue
        same(a, b, "weights")
    resid = torch.randn(3, 5, bridge.info.d_model)
    same(bridge.readout(resid), plain.readout(resid), "readout")
    last = Site("resid_post", plain.info.n_layers - 1)
    run = plain.run(TEXTS[0], read=[last])
    same(plain.readout(run[last]), run.logits, "readout")
    with pytest.raises(InvalidInput, match="cannot re-initialise"):
        plain.reinitialised()


# ----------------------------------------------------------------------------- every analysis family


def test_head_scan_agrees(models):
    scans = [scan_heads(m, seq_len=12, n_batch=4) for m in models]
    assert set(scans[0].scores) == set(SCORE_NAMES)
    for name in SCORE_NAMES:
        same(scans[0].scores[name], scans[1].scores[name], "head scan")
    det = [detector_scores(m, TEXTS, exclude_bos=True) for m in models]  # padded prompts
    for name in det[0]:
        same(det[0][name], det[1][name], "head scan")
    same(k_composition_scores(models[0]), k_composition_scores(models[1]), "head scan")


def test_logit_lens_agrees(models):
    lenses = [logit_lens(m, TEXTS[1], k=5) for m in models]
    for field in ("target_prob", "target_logit", "kl_to_final", "entropy", "topk_probs"):
        same(getattr(lenses[0], field), getattr(lenses[1], field), "lens", atol=1e-5)
    assert torch.equal(lenses[0].targets, lenses[1].targets) and torch.equal(lenses[0].topk_ids, lenses[1].topk_ids)
    assert lenses[0].tokens == lenses[1].tokens


def test_linear_probe_agrees(both):
    data = parse_labelled_csv(bracket_example_csv())
    feats = [capture_texts(m, data.texts[:60], batch_size=16) for m in both]  # padded batches, "last" token
    for name in feats[0].features:
        same(feats[0].features[name], feats[1].features[name], "probe")
    split = split_indices(60, seed=0)
    sweeps = [sweep_layers(f.features, data.labels[:60], split, l2_grid=(1e-2,)) for f in feats]
    assert sweeps[0].layers == sweeps[1].layers == [f"L{i}" for i in range(both[0].info.n_layers + 1)]
    same(sweeps[0].series("accuracy"), sweeps[1].series("accuracy"), "probe", atol=0)
    for name, pa, pb in zip(sweeps[0].layers, sweeps[0].probes, sweeps[1].probes):
        same(pa.scores(feats[0].features[name]).softmax(-1), pb.scores(feats[1].features[name]).softmax(-1), "probe",
             atol=1e-4)


@pytest.fixture(scope="module")
def pairs(models) -> list[PairBatch]:
    """The same induction pairs (tasks.pairs on tasks.repeats-style tokens) encoded by each backend."""
    out = [repeated_sequence_pairs(m, n_pairs=3, seq_len=6, seed=1) for m in models]
    assert torch.equal(out[0].clean, out[1].clean) and torch.equal(out[0].corrupted, out[1].corrupted)
    return out


def test_patching_sweeps_agree(models, pairs):
    kinds = SWEEP_KINDS if models[0].info.n_layers == 2 else ("head_out", "mlp_out")  # every kind on the tiny model
    sweeps = [run_sweeps(m, b, kinds) for m, b in zip(models, pairs)]
    for kind in kinds:
        same(sweeps[0][kind].values, sweeps[1][kind].values, "patching")
        same(sweeps[0][kind].clean, sweeps[1][kind].clean, "patching")
    paths = [path_patch(m, b, "0.1", "k") for m, b in zip(models, pairs)]  # q/k/v by hand from Weights + ln1
    same(paths[0].values, paths[1].values, "patching")
    direct = [direct_effects(m, b) for m, b in zip(models, pairs)]
    same(direct[0].values, direct[1].values, "patching")


def test_attribution_patching_agrees(models, pairs):
    attrs = [attribute(m, b, SWEEP_KINDS) for m, b in zip(models, pairs)]
    for kind in SWEEP_KINDS:
        same(attrs[0].estimates[kind], attrs[1].estimates[kind], "attribution")
    same(attrs[0].corrupted, attrs[1].corrupted, "attribution")
    with pytest.raises(InvalidInput, match="needs TransformerLens's bridge"):  # the one bridge-only analysis
        edge_attribution(models[1], pairs[1], max_pairs=1)


def test_direct_logit_attribution_agrees(models, pairs):
    dlas = [direct_logit_attribution(m, b) for m, b in zip(models, pairs)]
    assert list(dlas[0].layers["component"]) == list(dlas[1].layers["component"])
    same(dlas[0].layers["dla"].to_numpy(), dlas[1].layers["dla"].to_numpy(), "DLA")
    same(dlas[0].per_pair_heads, dlas[1].per_pair_heads, "DLA")
    same([dlas[0].constant, dlas[0].logit_diff], [dlas[1].constant, dlas[1].logit_diff], "DLA")


def test_sae_splice_agrees(models):
    d = models[0].info.d_model
    sae = SparseAutoencoder(SAEConfig(d_in=d, d_sae=2 * d, hook_name=str(Site("resid_pre", 1))), seed=3)
    tokens = models[0].tokenize(TEXTS[:1] * 3 + TEXTS[2:3] * 3, truncate=True).tokens[:, :5]  # [6, 5]
    out = [splice_metrics(m, sae, tokens, batch_size=4).to_dict() for m in models]
    assert out[0].keys() == out[1].keys() and out[0]["n_tokens"] == 24
    for key in out[0]:
        same(out[0][key], out[1][key], "SAE splice")


def test_grokking_fourier_agrees(tmp_path):
    p = 23
    path = modular_gpt2_dir(tmp_path / "mod", p, freq=5)  # 1 layer, vocabulary p + 1, embedding planted on 5
    out = [model_fourier(m, p) for m in (load_model(path), TorchGPT2(path))]
    assert out[0].key == out[1].key == [5] and out[0].top90 == out[1].top90 == [5]  # not degenerate
    for name in ("embed_norms", "unembed_norms", "neuron_table", "logits", "acts"):
        same(getattr(out[0], name), getattr(out[1], name), "grokking Fourier")
    assert torch.equal(out[0].clusters.freq, out[1].clusters.freq)
    for name in ("embed_key_share", "embed_gini", "logit_key_share", "logit_key_share_sin"):
        same(getattr(out[0], name), getattr(out[1], name), "grokking Fourier")
    a, b = out[0].losses["all"], out[1].losses["all"]
    same([a.loss, a.restricted, a.excluded], [b.loss, b.restricted, b.excluded], "grokking Fourier")


def test_a_backend_without_the_padding_mask_is_caught(both):
    """The comparison is sharp: a plain model that lets padded queries attend to padding differs at those positions
    (and only there: right padding never reaches a real token)."""
    bridge, plain = both

    class NoMask(TorchGPT2):
        def _gpt2(self, tokens, mask, at, logit_positions):
            return super()._gpt2(tokens, None, at, logit_positions)

    broken = NoMask(Path(plain.info.path))
    batch = bridge.tokenize(TEXTS)
    runs = [m.run(batch, read=[Site("pattern", 1)]) for m in (bridge, broken)]
    with pytest.raises(AssertionError):
        same(runs[0].logits, runs[1].logits, "negative control")
    real = batch.attention_mask.bool()  # [batch, pos]
    same(runs[0].logits[real], runs[1].logits[real], "negative control")
