"""Issue 27's app fixes, each run through Streamlit's AppTest: links restore a page's own state (Patching's pair,
Features' latent), a page's choices survive a visit to another page, colour scales are honest about noise
(Patching's gap floor, Heads' ablation noise floor), and the Model, Heads, Probes, Logit lens, Train and
Reproductions items."""
from __future__ import annotations

import json
import shutil

import pytest

from tests.app.apptest import app_test

PAIR = {"clean": "the cat sat on the mat", "corrupted": "the dog sat on the mat", "answer": " the", "wrong": " a"}


def _titles(at) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"].replace("<br>", " ") for c in at.get("plotly_chart")]


def _array(v):
    """A plotly JSON array, plain or typed (``{"dtype", "bdata", "shape"}``), as numpy."""
    import base64

    import numpy as np

    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
        shape = v.get("shape")
        return a.reshape([int(x) for x in str(shape).split(",")]) if shape else a
    return np.asarray(v)


def _ok(at) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def _bundled(name: str) -> str:
    from interp.loading import bundled_models

    if name not in bundled_models():
        pytest.skip(f"bundled {name} absent")
    return name


def test_a_patching_link_restores_its_pair_metric_and_run(tiny_gpt2_dir, monkeypatch):
    at = app_test(tiny_gpt2_dir, monkeypatch, "Patching", timeout=180)
    for k, v in {**PAIR, "metric": "logprob", "run": "attr"}.items():
        at.query_params[k] = v
    at.run()
    _ok(at)
    assert at.text_area(key="patch_clean").value == PAIR["clean"]
    assert at.text_area(key="patch_corrupted").value == PAIR["corrupted"]
    assert (at.text_input(key="patch_answer").value, at.text_input(key="patch_wrong").value) == (" the", " a")
    assert at.selectbox(key="patch_metric").value == "logprob"
    assert any(t.startswith("Attribution: head outputs") for t in _titles(at))  # the link's analysis re-ran
    # the link of this view holds the pair, not the Attention page's prompt
    assert at.query_params["clean"] == PAIR["clean"] and at.query_params["run"] == "attr"
    assert "prompt" not in at.query_params
    # the typed pair survives a visit to another page (Streamlit drops a widget's value when it is not drawn)
    at.sidebar.radio(key="page").set_value("Model").run()
    at.sidebar.radio(key="page").set_value("Patching").run()
    assert at.text_area(key="patch_clean").value == PAIR["clean"]


def test_a_bad_page_parameter_is_warned_once_and_ignored(tiny_gpt2_dir, monkeypatch):
    at = app_test(tiny_gpt2_dir, monkeypatch, "Patching", timeout=180)
    at.query_params["metric"] = "bogus"
    at.run()
    assert not at.exception
    assert any("metric='bogus' is not valid here" in w.value for w in at.warning)
    assert at.selectbox(key="patch_metric").value == "logit_diff"
    at.run()
    assert not any("bogus" in w.value for w in at.warning)


def test_a_near_zero_gap_shows_raw_effects_and_the_notice(tiny_gpt2_dir, monkeypatch):
    """On a random model the clean - corrupted gap is noise: no normalised effects, a note saying why."""
    at = app_test(tiny_gpt2_dir, monkeypatch, "Patching", timeout=180)
    for k, v in {**PAIR, "run": "attr+exact"}.items():
        at.query_params[k] = v
    at.run()
    _ok(at)
    notes = " ".join(w.value for w in at.warning)
    assert "below the floor" in notes and "raw effects" in notes
    assert "Differences here are within noise" in notes or "raw effect" in notes
    heads = [json.loads(c.proto.spec) for c in at.get("plotly_chart")
             if json.loads(c.proto.spec)["layout"]["title"]["text"].startswith("Exact: head outputs")][0]
    assert heads["data"][0]["colorbar"]["title"]["text"] == "raw effect (logit_diff)"
    assert any("Clean metric" in m.value for m in at.markdown)  # the exact sweep shows its baseline too


def test_a_clear_gap_normalises_on_a_fixed_scale(monkeypatch):
    at = app_test(_bundled("attn-only-2l"), monkeypatch, "Patching", timeout=300)
    at.query_params["run"] = "exact"  # the exact sweep alone, on the model's own example pair
    at.run()
    _ok(at)
    assert any(m.value.startswith("Clean metric") for m in at.markdown)  # baseline without attribution
    assert any("clears the floor" in c.value for c in at.caption)
    spec = [json.loads(c.proto.spec) for c in at.get("plotly_chart")
            if json.loads(c.proto.spec)["layout"]["title"]["text"].startswith("Exact: head outputs")][0]
    heat = spec["data"][0]
    assert (heat["zmin"], heat["zmax"]) == (-1.0, 1.0) and heat["colorbar"]["title"]["text"] == "normalised effect"


def test_the_alignment_table_shows_whitespace_and_holds_one_type(tiny_gpt2_dir, monkeypatch):
    at = app_test(tiny_gpt2_dir, monkeypatch, "Patching", timeout=180)
    for k, v in {"clean": "def f():\n    return a", "corrupted": "def g():\n    return a", "answer": " b",
                 "wrong": " a"}.items():
        at.query_params[k] = v
    at.run()
    _ok(at)
    table = at.dataframe[0].value
    cells = table.loc["clean"].tolist()
    assert all(isinstance(c, str) for c in table.to_numpy().ravel())  # pyarrow never sees mixed types
    assert any("↵" in c for c in cells) and all(c.strip() for c in cells)  # newline + indent visible


@pytest.fixture(scope="module")
def model_with_sae(tiny_gpt2_dir, tmp_path_factory):
    from learned.sae import SAEConfig, SparseAutoencoder
    from learned.sae_files import write_sae_dir

    model = tmp_path_factory.mktemp("links") / "tiny-with-sae"
    shutil.copytree(tiny_gpt2_dir, model)
    sae = SparseAutoencoder(SAEConfig(d_in=32, d_sae=64, architecture="topk", k=4,
                                      hook_name="blocks.1.hook_resid_pre", hook_layer=1, model_name="tiny"), seed=0)
    write_sae_dir(model / "saes" / "tiny-topk", *sae.to_saelens())
    return model


def test_a_features_link_restores_its_latent_and_choices(model_with_sae, monkeypatch):
    from ui import superposition_panel

    monkeypatch.setattr(superposition_panel, "draw", lambda: None)
    at = app_test(model_with_sae, monkeypatch, "Features", timeout=180)
    for k, v in {"latent": "37", "sort": "density", "dense_last": "0", "search": " the"}.items():
        at.query_params[k] = v
    at.run()
    _ok(at)
    assert at.number_input(key="features_latent").value == 37
    assert any(t.startswith("Latent 37: activations") or t.startswith("Latent 37: logit effects")
               for t in _titles(at))
    assert at.selectbox(key="features_sort").value == "density" and not at.checkbox(key="features_dense_last").value
    assert at.text_input(key="features_search").value == " the"
    assert at.query_params["latent"] == "37" and at.query_params["sort"] == "density"
    # a click on a table row or a scatter point calls open_latent; the page then shows that latent
    from ui import features_page

    at.session_state[features_page.LATENT] = 12
    at.run()
    assert any(t.startswith("Latent 12:") for t in _titles(at)) and at.query_params["latent"] == "12"


def test_clicks_on_the_scatter_and_tables_open_latents(model_with_sae, monkeypatch):
    """The scatter reports clicked points and the latent tables report clicked rows; both open that latent."""
    from ui import superposition_panel

    monkeypatch.setattr(superposition_panel, "draw", lambda: None)
    at = app_test(model_with_sae, monkeypatch, "Features", timeout=180).run()
    _ok(at)
    scatter = [c for c in at.get("plotly_chart") if "Latents: density" in json.loads(c.proto.spec)["layout"]["title"]
               ["text"]][0]
    assert scatter.proto.selection_mode  # points can be clicked
    points = json.loads(scatter.proto.spec)["data"][0]
    assert _array(points["customdata"])[:6].tolist() == [0, 1, 2, 3, 4, 5]  # each point carries its latent id
    tables = [d for d in at.dataframe if d.proto.selection_mode]
    assert len(tables) >= 2  # the latent table and the "which latents fire" table select rows


def test_heads_opens_on_the_top_induction_head_coming_from_attention(monkeypatch):
    at = app_test(_bundled("attn-only-2l"), monkeypatch, "Attention", timeout=300).run()
    _ok(at)
    assert at.session_state["wb_head_chosen"] is False  # Attention picked its strongest head; the user chose none
    at.sidebar.radio(key="page").set_value("Heads").run()
    _ok(at)
    assert at.selectbox(key="heads_head").value.startswith("1.")  # the induction heads are in layer 1, not 0.0
    assert at.query_params["layer"] == "1"


def test_ablation_heatmaps_say_when_differences_are_noise(tiny_gpt2_dir, monkeypatch):
    at = app_test(tiny_gpt2_dir, monkeypatch, "Heads", timeout=180).run()
    _ok(at)
    assert any("Differences here are within noise" in w.value and "standard errors" in w.value for w in at.warning)
    import numpy as np

    spec = [json.loads(c.proto.spec) for c in at.get("plotly_chart")
            if json.loads(c.proto.spec)["layout"]["title"]["text"].startswith("Ablation effect")][0]
    z = _array(spec["data"][0]["z"])
    assert spec["data"][0]["zmax"] > float(np.nanmax(np.abs(z)))  # the scale starts at the noise floor
    assert all(len(line) <= 56 for line in spec["layout"]["title"]["text"].split("<br>"))  # wrapped, not cut


def test_the_model_page_shows_grouped_query_attention(monkeypatch):
    from tests.fuzz.model_dirs import gqa_dir

    at = app_test(gqa_dir("llama"), monkeypatch, "Model", timeout=180).run()
    _ok(at)
    props = at.table[0].value["value"].to_dict()
    assert props["query heads per layer"] == "4" and props["key/value heads per layer"] == "2"
    assert props["attention"].startswith("grouped-query (4 query heads share 2 key/value heads")
    assert props["norm"].startswith("RMSNorm") and props["positions"] == "rotary (RoPE)"
    assert "silu" in props["MLP"] and "gated" in props["MLP"]
    assert len(props["weights sha256"]) == 64 and props["path"]  # the last rows are there, not scrolled away


def test_probes_lead_with_a_verdict(tiny_gpt2_dir, monkeypatch):
    at = app_test(tiny_gpt2_dir, monkeypatch, "Probes", timeout=300).run()
    at.radio(key="probe_source").set_value("Paste a CSV").run()
    at.number_input(key="probe_csv_iter").set_value(10).run()
    at.button(key="probe_run_csv").click().run()
    _ok(at)
    verdicts = [m.value for m in [*at.success, *at.warning] if m.value.startswith("**Verdict:")]
    assert len(verdicts) == 1
    assert any(k in verdicts[0] for k in ("selective", "not selective", "no signal"))


def test_logit_lens_ranks_are_one_based(tiny_gpt2_dir, monkeypatch):
    at = app_test(tiny_gpt2_dir, monkeypatch, "Logit lens", timeout=180).run()
    _ok(at)
    grid = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert "target rank (1 = top)" in grid["data"][0]["customdata"][0][0]
    table = [d.value for d in at.dataframe if "target_rank" in d.value.columns][0]
    assert table["target_rank"].min() >= 1
    position = at.selectbox(key="lens_position")
    label = position.format_func(position.value) if hasattr(position, "format_func") else ""
    title = [t for t in _titles(at) if "across layers" in t][0]
    assert f"at position {position.value} (input" in title
    assert label == "" or "→" in label


def test_train_title_comes_before_the_mode_and_findings_wrap(monkeypatch, tiny_gpt2_dir):
    at = app_test(tiny_gpt2_dir, monkeypatch, "Train", timeout=180).run()
    _ok(at)
    kinds = [type(n).__name__ for n in at.main if type(n).__name__ in ("Header", "Radio")]
    assert kinds[:2] == ["Header", "Radio"] and at.header[0].value == "Train"  # the title, then the Mode radio
    at = app_test(tiny_gpt2_dir, monkeypatch, "Reproductions", timeout=180).run()
    table = at.dataframe[0].proto
    assert json.loads(table.columns)["finding"]["width"] == "large" and table.row_height > 64  # text wraps


def test_the_app_config_hides_deploy_and_never_watches_the_venv():
    import tomllib
    from pathlib import Path

    cfg = tomllib.loads((Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml").read_text())
    assert cfg["client"]["toolbarMode"] == "minimal"
    assert cfg["server"]["fileWatcherType"] == "poll" and ".venv" in cfg["server"]["folderWatchBlacklist"]


def test_downloaded_html_names_the_model_and_prompt():
    import plotly.graph_objects as go

    from ui.figures import figure_html

    fig = go.Figure(go.Bar(y=[1])).update_layout(title="Head 1.2 attention pattern")
    html = figure_html(fig, "Head 1.2 attention pattern · model code-gpt2 · prompt \"def f(<x>)\"")
    assert "<title>Head 1.2 attention pattern · model code-gpt2 · prompt \"def f(&lt;x&gt;)\"</title>" in html
    assert html.count("model code-gpt2") == 2  # the title and the line above the figure
