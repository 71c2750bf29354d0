"""The Circuits (QK/OV), Neurons, Activations (hook browser) and Ablate & steer pages render on a GPT-2, a
grouped-query Llama and an attention-only model; a view the architecture lacks says so in one line."""
from __future__ import annotations

import json

import pytest

from tests.app.apptest import app_test


def _titles(at) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"].replace("<br>", " ") for c in at.get("plotly_chart")]


def _ok(at) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


@pytest.fixture(scope="module")
def arch_dirs(tiny_gpt2_dir):
    from interp.loading import bundled_models
    from tests.fuzz.model_dirs import gqa_dir

    dirs = {"gpt2": str(tiny_gpt2_dir), "llama": str(gqa_dir("llama"))}
    if "attn-only-1l" in bundled_models():
        dirs["attn-only"] = "attn-only-1l"
    return dirs


ARCHS = ("gpt2", "llama", "attn-only")


def _model(arch_dirs, arch: str) -> str:
    if arch not in arch_dirs:
        pytest.skip("bundled attn-only-1l absent")
    return arch_dirs[arch]


@pytest.mark.parametrize("arch", ARCHS)
def test_circuits_page_renders_and_a_head_click_opens_that_head(arch_dirs, arch, monkeypatch):
    from ui import state

    at = app_test(_model(arch_dirs, arch), monkeypatch, "Circuits", timeout=180).run()
    _ok(at)
    titles = _titles(at)
    assert any(t.startswith("OV eigenvalue positivity of every head") for t in titles), titles
    assert any(t.startswith("QK eigenvalue positivity of every head") for t in titles)
    assert any("OV eigenvalues (positivity" in t for t in titles) and any("QK eigenvalues" in t for t in titles)
    assert any("where each token ranks in its own row" in t for t in titles)
    assert any("OV circuit between your tokens" in t for t in titles)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert any(t.get("name") == "head-picker" for t in spec["data"])  # every head is clickable
    assert at.get("plotly_chart")[0].proto.selection_mode
    last = at.selectbox(key="circuits_layer").options[-1]
    at.session_state[state.LAYER], at.session_state[state.HEAD] = int(last), 1  # what a click on a cell sets
    at.run()
    _ok(at)
    assert any(t.startswith(f"Head {last}.1 OV eigenvalues") for t in _titles(at))
    assert at.query_params["layer"] == str(last) and at.query_params["head"] == "1"


@pytest.mark.parametrize("arch", ARCHS)
def test_neurons_page_renders_or_says_the_model_has_none(arch_dirs, arch, monkeypatch):
    at = app_test(_model(arch_dirs, arch), monkeypatch, "Neurons", timeout=180).run()
    _ok(at)
    if arch == "attn-only":
        assert any("attention-only: it has no MLP neurons" in i.value for i in at.info)
        assert not at.get("plotly_chart")
        return
    layer, neuron = at.number_input(key="neuron_layer").value, at.number_input(key="neuron_index").value
    titles = _titles(at)
    assert f"Neuron {layer}.{neuron} on your prompt, token by token" in titles, titles
    assert any(t.startswith(f"Neuron {layer}.{neuron}: logits its output raises") for t in titles)
    assert any("Top-activating contexts" in m.value for m in at.markdown)
    top = at.dataframe[0].value
    assert {"layer", "neuron", "max activation", "position", "token"} <= set(top.columns)
    assert (int(top["layer"][0]), int(top["neuron"][0])) == (layer, neuron)  # the most active neuron opens first
    at.number_input(key="neuron_index").set_value(5).run()
    _ok(at)
    assert f"Neuron {layer}.5 on your prompt, token by token" in _titles(at)
    assert at.query_params["neuron"] == "5"


@pytest.mark.parametrize("arch", ARCHS)
def test_activations_page_browses_every_kind_of_site(arch_dirs, arch, monkeypatch):
    at = app_test(_model(arch_dirs, arch), monkeypatch, "Activations", timeout=180).run()
    _ok(at)
    sites = at.selectbox(key="act_site").options
    assert "hook_embed" in sites and "blocks.0.attn.hook_pattern" in sites and "blocks.0.attn.hook_z" in sites
    assert ("blocks.0.mlp.hook_post" in sites) == (arch != "attn-only")
    assert ("hook_pos_embed" in sites) == (arch != "llama")  # rotary positions: no position vectors
    for site in ("hook_embed", "blocks.0.attn.hook_z", "blocks.0.attn.hook_pattern", "blocks.0.attn.hook_k",
                 "ln_final.hook_scale", "hook_logits" if "hook_logits" in sites else "hook_embed"):
        at.selectbox(key="act_site").set_value(site).run()
        _ok(at)
        if site == "hook_logits":
            assert at.dataframe[0].value.columns.tolist()[:3] == ["position", "rank", "token"]
            continue
        assert any(t.startswith(site) for t in _titles(at)), (site, _titles(at))
    at.selectbox(key="act_site").set_value("blocks.0.attn.hook_k").run()
    assert at.selectbox(key="act_head").options == [str(h) for h in range(2 if arch == "llama" else
                                                                          len(at.selectbox(key="act_head").options))]
    if arch == "llama":
        assert "key/value heads (grouped-query)" in at.selectbox(key="act_head").label
    at.selectbox(key="act_site").set_value("blocks.0.attn.hook_z").run()
    at.selectbox(key="act_head").set_value(1).run()
    _ok(at)
    assert "blocks.0.attn.hook_z, head 1 on your prompt" in _titles(at)
    assert at.query_params["site"] == "blocks.0.attn.hook_z" and at.query_params["head_index"] == "1"


@pytest.mark.parametrize("arch", ARCHS)
def test_ablate_page_edits_heads_neurons_and_directions(arch_dirs, arch, monkeypatch):
    at = app_test(_model(arch_dirs, arch), monkeypatch, "Ablate & steer", timeout=180).run()
    _ok(at)
    for mode in ("zero", "mean", "resample", "steer"):
        at.radio(key="ablate_mode").set_value(mode).run()
        _ok(at)
        assert any(t.startswith("Next token at position") and "head 0.0" in t for t in _titles(at)), _titles(at)
        assert any("KL(before ‖ after)" in m.value for m in at.markdown)
        df = at.dataframe[0].value
        assert {"p before", "p after", "rank before", "rank after"} <= set(df.columns)
        assert df["p before"].between(0, 1).all() and df["p after"].between(0, 1).all()
    assert at.query_params["mode"] == "steer"
    at.radio(key="ablate_target").set_value("neuron").run()
    _ok(at)
    if arch == "attn-only":
        assert any("attention-only: it has no MLP neurons" in i.value for i in at.info)
    else:
        assert any("neuron 0 of layer 0" in t for t in _titles(at))
    at.radio(key="ablate_target").set_value("direction").run()
    _ok(at)
    assert any("direction W_U[" in t for t in _titles(at)), _titles(at)
    at.text_input(key="ablate_plus").set_value("definitely several tokens here").run()
    assert not at.exception and any("needs exactly one token" in e.value for e in at.error)
