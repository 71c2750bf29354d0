"""Train page, grokking mode: a tiny live run draws curves and the spectrum; the bundled-run view reads its log."""
from __future__ import annotations

import json

import pytest

from tests.app.apptest import app_test


@pytest.fixture
def app(tiny_gpt2_dir, monkeypatch, tmp_path):
    from ui import train_grokking

    monkeypatch.setattr(train_grokking, "DEFAULTS", {**train_grokking.DEFAULTS, "p": 11, "epochs": 40})
    monkeypatch.setattr(train_grokking, "BUNDLED_DIR", tmp_path / "grokking-p113")
    at = app_test(tiny_gpt2_dir, monkeypatch, "Train").run()
    assert not at.exception and not at.error
    at.radio(key="train_mode").set_value("Grokking").run()
    assert not at.exception, at.exception
    return at


def test_live_run_draws_curves_and_spectrum(app):
    assert app.selectbox(key="grok_p").value == 11
    app.button(key="grok_start").click().run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert any(s.value.startswith("Trained 40 epochs") for s in app.success)
    charts = [json.loads(c.proto.spec) for c in app.get("plotly_chart")]
    curves = charts[0]
    assert [t["name"] for t in curves["data"]][:2] == ["train", "test"] and curves["data"][0]["x"][-1] == 40
    spectrum = charts[1]
    assert len(spectrum["data"][0]["x"]) == 5  # frequencies 1..(11-1)/2
    app.number_input(key="grok_wd").set_value(2.0).run()  # the finished run stays shown across reruns
    assert not app.exception and len(app.get("plotly_chart")) >= 2


def test_bundled_view_without_a_bundle_says_how_to_make_it(app):
    app.radio(key="grok_view").set_value("Bundled run (p = 113)").run()
    assert not app.exception
    assert any("out_model=models/grokking-p113" in i.value for i in app.info)


def test_bundled_view_draws_the_logged_run(app, tmp_path):
    from ui import train_grokking

    d = train_grokking.BUNDLED_DIR
    d.mkdir(parents=True)
    ep = [10, 20, 30]
    log = {"epochs": ep, "train_loss": [1.0, 0.1, 0.01], "test_loss": [5.0, 3.0, 0.1], "train_acc": [0.5, 1.0, 1.0],
           "test_acc": [0.0, 0.05, 0.97], "p": 11, "key_frequencies": [2, 4],
           "phases": {"memorised": 20, "cleanup_start": 30, "cleanup_end": None, "grokked": 30},
           "measures": {"epochs": ep, "train_loss": [1, 0.1, 0.01], "test_loss": [5, 3, 0.1],
                        "restricted_test": [4, 1, 0.1], "excluded_train": [0.1, 1, 3], "sum_sq_weights": [9, 8, 5],
                        "embed_norms": [[1, 1, 1, 1, 1], [1, 3, 1, 2, 1], [0, 5, 0, 4, 0]]},
           "final_embed_norms": [0, 5, 0, 4, 0], "neuron_counts": {"0": 3, "2": 30, "4": 31},
           "checks": [{"claim": "(a) memorisation", "passed": True, "detail": "x"}]}
    (d / "training_log.json").write_text(json.dumps(log))
    app.radio(key="grok_view").set_value("Bundled run (p = 113)").run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in app.get("plotly_chart")]
    assert titles[0] == "Bundled run: train vs test" and any("Progress measures" in t for t in titles)
    assert any("key: 2, 4" in t for t in titles)
    (d / "training_log.json").write_text("{not json")
    app.run()
    assert not app.exception and any("unreadable" in e.value for e in app.error)
