"""Features page: browse an SAE beside a model (latents, contexts, logit effects, search, prompt, steering), reject a
bad SAE folder with a message, and train an SAE from the page (complete and stopped)."""
from __future__ import annotations

import json
import shutil

import pytest

from tests.app.apptest import app_test


@pytest.fixture(scope="module")
def model_with_sae(tiny_gpt2_dir, tmp_path_factory):
    from learned.sae import SAEConfig, SparseAutoencoder
    from learned.sae_files import write_sae_dir

    model = tmp_path_factory.mktemp("features") / "tiny-with-sae"
    shutil.copytree(tiny_gpt2_dir, model)
    sae = SparseAutoencoder(SAEConfig(d_in=32, d_sae=64, architecture="topk", k=4, hook_name="blocks.1.hook_resid_pre",
                                      hook_layer=1, model_name="tiny"), seed=0)
    write_sae_dir(model / "saes" / "tiny-topk", *sae.to_saelens())
    return model


@pytest.fixture(autouse=True)
def _no_superposition_panel(monkeypatch):
    """The superposition panel (its own tests) trains toy models live; these tests are about the SAE parts."""
    from ui import superposition_panel

    monkeypatch.setattr(superposition_panel, "draw", lambda: None)


def _charts(at) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def test_browse_latents_search_prompt_and_steer(model_with_sae, monkeypatch):
    at = app_test(model_with_sae, monkeypatch, "Features").run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="features_sae").value == "tiny-topk"
    titles = _charts(at)
    latent = at.number_input(key="features_latent").value
    assert any(t.startswith(f"Latent {latent}: activations") for t in titles), titles
    assert any(t.startswith(f"Latent {latent}: logit effects") for t in titles), titles
    assert any(t.startswith("Steering with latent") for t in titles), titles  # the default prompt is steered
    latents = at.dataframe[0].value
    assert {"latent", "density", "max activation"} <= set(latents.columns)
    sparse = latents[~latents["dense"]]
    assert list(latents["dense"]) == sorted(latents["dense"])  # dense latents last by default
    assert list(sparse["max activation"]) == sorted(sparse["max activation"], reverse=True)
    assert not latents.set_index("latent").loc[latent, "dense"]  # the latent opened first is not a dense one
    at.checkbox(key="features_dense_last").uncheck().run()
    assert list(at.dataframe[0].value["max activation"]) == sorted(at.dataframe[0].value["max activation"],
                                                                   reverse=True)
    at.selectbox(key="features_sort").set_value("density").run()
    dens = at.dataframe[0].value["density"]
    assert list(dens) == sorted(dens, reverse=True)
    at.text_input(key="features_search").set_value(" the").run()
    assert not at.exception and not at.error
    assert any("Promote" in m.value for m in at.markdown)
    at.text_area(key="features_prompt").set_value("the cat sat on the mat").run()
    fire = [d.value for d in at.dataframe if "activation" in d.value.columns and "position" in d.value.columns][0]
    assert set(fire["position"]) <= set(range(7)) and len(fire) <= 7 * 5  # BOS + six tokens, top 5 latents each
    assert any(t.startswith(f"Latent {latent} on the prompt, token by token") for t in _charts(at))
    at.slider(key="features_steer_scale").set_value(-10.0).run()
    assert not at.exception and any("-10 x latent" in json.dumps(json.loads(c.proto.spec)["data"])
                                    for c in at.get("plotly_chart"))


def test_bad_sae_folder_is_a_message(model_with_sae, monkeypatch, tmp_path):
    at = app_test(model_with_sae, monkeypatch, "Features").run()
    at.selectbox(key="features_sae").set_value("(a folder on disk)").run()
    (tmp_path / "cfg.json").write_text("{not json")
    (tmp_path / "sae_weights.safetensors").write_bytes(b"junk")
    at.text_input(key="features_sae_dir").set_value(str(tmp_path)).run()
    assert not at.exception
    assert any("not valid JSON" in e.value for e in at.error), [e.value for e in at.error]


def test_train_panel_trains_and_stops(model_with_sae, monkeypatch):
    from ui import features_page

    at = app_test(model_with_sae, monkeypatch, "Features").run()
    at.number_input(key="features_train_steps").set_value(10).run()
    at.button(key="features_train").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(s.value.startswith("Trained after") for s in at.success), [s.value for s in at.success]
    at.run()  # the SAE list is drawn above the panel: the next run offers the new SAE
    at.selectbox(key="features_sae").set_value(features_page.SESSION_SAE).run()
    assert not at.exception and not at.error

    real = features_page.train_sae

    def stop_at_once(source, s, cfg, **kw):
        features_page._request_stop()  # what the Stop button's on_click does
        return real(source, s, cfg, **kw)

    monkeypatch.setattr(features_page, "train_sae", stop_at_once)
    at.button(key="features_train").click().run()
    assert not at.exception
    assert any(w.value.startswith("Stopped after 0 tokens") for w in at.warning), [w.value for w in at.warning]
