"""Reproductions page: a run's result is selected and labelled a smoke test, Force reruns, messages speak the
page's words, the fit check warns, and the results browser survives damaged folders and refuses `/`."""
from __future__ import annotations

import json

import pytest

from tests.app.apptest import app_test


@pytest.fixture
def app(tiny_gpt2_dir, monkeypatch):
    return app_test(tiny_gpt2_dir, monkeypatch, "Reproductions")


def _texts(els):
    return " ".join(e.value for e in els)


def test_ci_run_is_selected_labelled_a_smoke_test_and_force_reruns(app):
    app.run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert "model-anatomy" in list(app.dataframe[0].value["experiment"])
    app.selectbox(key="repro_exp").set_value("model-anatomy").run()
    app.selectbox(key="repro_preset").set_value("ci").run()
    app.checkbox(key="repro_use_model").check().run()
    app.button(key="repro_run").click().run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert any("model-anatomy" in s.value for s in app.success)
    chosen = app.selectbox(key="repro_result").value
    assert chosen.startswith("model-anatomy") and "smoke test" in chosen  # the run that just finished
    assert "Smoke test (ci preset): **smoke test" in _texts(app.success) + _texts(app.error)
    assert app.get("plotly_chart")  # figures are interactive
    app.button(key="repro_run").click().run()  # same settings again: skipped, in the page's words
    assert "Tick Force to run it again" in _texts(app.success) and "--force" not in _texts(app.success)
    app.checkbox(key="repro_force").check().run()
    app.button(key="repro_run").click().run()
    assert not app.error and "skipped" not in _texts(app.success)


def test_use_current_model_warns_when_the_experiment_does_not_fit(app):
    from interp.loading import bundled_models

    if "othello-gpt" not in bundled_models():
        pytest.skip("bundled othello-gpt absent")
    app.run()
    app.selectbox(key="repro_exp").set_value("othello-world-model").run()
    app.checkbox(key="repro_use_model").check().run()
    assert not app.exception
    assert "would not mean anything" in _texts(app.warning)


def test_results_browser_survives_damaged_folders_and_refuses_the_disk_root(app, tmp_path):
    good = tmp_path / "exp" / "run"
    (good / "figures").mkdir(parents=True)
    for name, body in (("config.json", {}), ("metrics.json", {"verdict": "reproduced"}),
                       ("metadata.json", {"experiment": "exp", "started_at": "2026"})):
        (good / name).write_text(json.dumps(body))
    (good / "summary.md").write_text("# a summary")
    (good / "figures" / "f.png").write_text("not a png")
    (good / "figures" / "f.html").write_text("<html>no plot here</html>")
    bad = tmp_path / "exp" / "listy"
    bad.mkdir()
    (bad / "metadata.json").write_text("[1, 2]")
    app.run()
    app.text_input(key="repro_root").set_value(str(tmp_path)).run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert "Verdict: **reproduced**" in _texts(app.success)
    app.text_input(key="repro_root").set_value("/").run()
    assert not app.exception
    assert any("not a results folder" in e.value for e in app.error)


def test_a_not_reproduced_verdict_is_never_in_a_green_banner(app, tmp_path):
    for sub, preset, status in (("ci-run", "ci", "not reproduced"), ("full-run", None, "not reproduced")):
        d = tmp_path / "exp" / sub
        d.mkdir(parents=True)
        verdict = {"verdict": {"status": status, "reason": "failed: x"}}
        for name, body in (("config.json", {}), ("metrics.json", verdict),
                           ("metadata.json", {"experiment": "exp", "preset": preset, "started_at": sub})):
            (d / name).write_text(json.dumps(body))
        (d / "summary.md").write_text("# s")
    app.run()
    app.text_input(key="repro_root").set_value(str(tmp_path)).run()
    for label in app.selectbox(key="repro_result").options:
        app.selectbox(key="repro_result").set_value(label).run()
        assert not app.exception
        assert not app.success, [e.value for e in app.success]  # no green box around a failure
        shown = _texts(app.error)
        assert ("smoke test failed" in shown) if "ci-run" in label else ("Verdict: **not reproduced**" in shown)
        assert "smoke test failed" in label or "not reproduced" in label  # the picker says it too


def test_the_run_message_box_follows_the_verdict():
    import streamlit as st

    from ui.reproductions_page import verdict_box

    assert verdict_box("not reproduced") is st.error and verdict_box("smoke test failed") is st.error
    assert verdict_box("reproduced") is st.success and verdict_box("smoke test passed") is st.success
    assert verdict_box("not checked") is st.warning
def test_a_sweep_is_listed_beside_runs_with_its_summary_and_figures(app, tmp_path):
    """A sweep folder (cells reused, so no Ray cluster is needed here) is browsable like a run."""
    from experiments.core.runner import run_experiment
    from experiments.distributed.grid import Cell
    from experiments.distributed.sweep import run_sweep

    sweep = tmp_path / "sweep-icl-emergence-cell" / "ci-test"
    sets = {"steps": "20", "eval_every": "10", "threads": "1"}
    for seed in (0, 1):
        cell = Cell((("repeat_share", "1"),), seed)
        run_experiment("icl-emergence-cell", preset="ci", overrides={**sets, "repeat_share": "1"}, seed=seed,
                       out=sweep / "cells" / cell.key)
    (sweep / "sweep.json").write_text("{}")  # the cells were run by hand into what is a sweep folder
    done = run_sweep("icl-emergence-cell", {"repeat_share": ("1",)}, (0, 1), preset="ci", sets=sets, out=sweep)
    assert [c.status for c in done.cells] == ["reused", "reused"]
    app.run()
    app.text_input(key="repro_root").set_value(str(tmp_path)).run()
    labels = app.selectbox(key="repro_result").options
    sweep_label = next(label for label in labels if "sweep of 2 cells" in label)
    app.selectbox(key="repro_result").set_value(sweep_label).run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert "A sweep (2 cells: 2 reused)" in _texts(app.info)
    assert "95% t interval" in _texts(app.markdown) and app.get("plotly_chart")
