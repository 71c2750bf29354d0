"""Probes page: a CSV with a planted label is probed by layer; bad CSVs are messages; Othello needs its model."""
from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.apptest import app_test

# the label is the last word's group; each last word is a single token of the tiny BPE
WORDS = {"a": ["cat", "mat", "sat", "add"], "b": ["dog", "log", "os", "world"]}
PLANTED = "text,label\n" + "".join(
    f"{frame} {w},{label}\n" for label, ws in WORDS.items()
    for w in ws for frame in ("the cat sat on", "hello world", "a b c", "import os and", "x", "print(1) then"))


def _app(model_dir, monkeypatch) -> AppTest:
    return app_test(model_dir, monkeypatch, "Probes")


@pytest.fixture
def app(tiny_gpt2_dir, monkeypatch):
    return _app(tiny_gpt2_dir, monkeypatch)


def _fast(at, prefix):
    at.number_input(key=f"{prefix}_iter").set_value(20)


def _check_result(at, n_layers):
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    df = at.dataframe[-1].value
    assert list(df["layer"]) == [f"L{i}" for i in range(n_layers + 1)]
    assert {"accuracy", "control_accuracy", "selectivity", "majority_accuracy"} <= set(df.columns)
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = [t["name"] for t in fig["data"]]
    assert names == ["probe (test accuracy)", "control task (Hewitt & Liang)", "selectivity (probe - control)"]
    assert any("majority class" in a["text"] for a in fig["layout"]["annotations"])
    return df


def test_uploaded_csv_with_planted_label_is_probed(app):
    app.run()
    app.radio(key="probe_source").set_value("Upload a CSV").run()
    assert not app.exception and any("Upload a CSV" in i.value for i in app.info)
    app.file_uploader(key="probe_upload").set_value(("planted.csv", PLANTED.encode(), "text/csv")).run()
    assert any("48 rows, 2 classes: a, b" in c.value for c in app.caption)
    _fast(app, "probe_csv")
    app.button(key="probe_run_csv").click().run()
    df = _check_result(app, 2)
    assert df["accuracy"].max() >= 0.8 and df["accuracy"].max() > df["majority_accuracy"][0] + 0.2
    small = " ".join(w.value for w in app.warning)  # 48 rows: a handful of test rows, said with an interval
    assert "test rows: accuracies are rough" in small and "95% interval" in small
    # the result stays when the page reruns for something else
    app.text_input(key="probe_position").set_value("-1").run()
    assert app.get("plotly_chart") and not app.error


@pytest.mark.parametrize("data, message", [
    (b"text,label\ncaf\xe9,a\n", "not UTF-8"),
    (b"text,label\na,x\nb,x\nc,x\n", "only one class"),
    (b"sentence,label\na,x\nb,y\n", "has no column 'text'"),
    (b"text,label\na,x\n,y\n", "line 3 has an empty text"),
])
def test_bad_uploads_are_messages(app, data, message):
    app.run()
    app.radio(key="probe_source").set_value("Upload a CSV").run()
    app.file_uploader(key="probe_upload").set_value(("bad.csv", data, "text/csv")).run()
    assert not app.exception
    assert any(message in e.value for e in app.error), [e.value for e in app.error]


def test_too_few_rows_and_bad_position_then_recovery(app):
    app.run()
    app.radio(key="probe_source").set_value("Paste a CSV").run()
    app.text_area(key="probe_csv_text").set_value("text,label\nthe cat,a\nthe dog,b\nthe mat,a\n").run()
    app.button(key="probe_run_csv").click().run()
    assert not app.exception and any("too few to split" in e.value for e in app.error)
    app.text_area(key="probe_csv_text").set_value(PLANTED).run()
    app.text_input(key="probe_position").set_value("30").run()
    app.button(key="probe_run_csv").click().run()
    assert not app.exception and any("outside text 1" in e.value for e in app.error)
    app.text_input(key="probe_position").set_value("last").run()
    _fast(app, "probe_csv")
    app.button(key="probe_run_csv").click().run()
    _check_result(app, 2)


def test_othello_needs_an_othello_model(app, monkeypatch):
    from ui import probes_page

    monkeypatch.setattr(probes_page, "bundled_models", lambda: [])  # as if models/othello-gpt were absent
    app.run()
    assert app.radio(key="probe_source").value.startswith("Othello")
    assert not app.exception
    msg = " ".join(e.value for e in app.error)
    assert "is not an Othello-GPT" in msg and "python -m experiments run train-othello-gpt" in msg


@pytest.fixture(scope="module")
def tiny_othello_dir(tmp_path_factory):
    from interp.toy_models import save_hf_dir
    from training.othello import othello_gpt, othello_tokenizer

    return save_hf_dir(othello_gpt(n_layer=2, n_embd=32, n_head=2), othello_tokenizer(),
                       tmp_path_factory.mktemp("tiny-othello"))


def test_othello_board_state_on_an_othello_model(tiny_othello_dir, monkeypatch):
    at = _app(tiny_othello_dir, monkeypatch).run()
    at.number_input(key="probe_games").set_value(12).run()
    assert any(c.value.startswith("Estimated time: about") for c in at.caption)
    _fast(at, "probe_othello")
    at.button(key="probe_run_othello").click().run()
    df = _check_result(at, 2)
    assert (df["accuracy"] > 0.3).all()  # 64 squares x 3 classes; many squares stay empty: well above chance
    assert any("Othello board (relative)" in json.loads(c.proto.spec)["layout"]["title"]["text"]
               for c in at.get("plotly_chart"))


def test_a_dataset_the_model_cannot_read_is_warned_about(monkeypatch):
    from interp.loading import bundled_models

    if "attn-only-1l" not in bundled_models():
        pytest.skip("bundled attn-only-1l absent")
    at = _app("attn-only-1l", monkeypatch).run()
    at.radio(key="probe_source").set_value("Paste a CSV").run()  # the example CSV is Python code
    assert not at.exception
    assert any("special or unknown to attn-only-1l" in w.value for w in at.warning)
