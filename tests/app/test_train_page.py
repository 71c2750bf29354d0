"""Train page: a tiny run completes with live and final curves; Stop ends it cleanly and the page keeps working."""
from __future__ import annotations

import json

import pytest

from tests.app.apptest import app_test

TINY = dict(n_layers=2, d_model=16, n_heads=2, d_vocab=32, seq_len=16, batch_size=4, steps=12, eval_every=4,
            eval_batch=2, seg_min=3, seg_max=6)


@pytest.fixture
def app(tiny_gpt2_dir, monkeypatch, tmp_path):
    from training.induction import InductionTrainConfig
    from ui import train_page

    monkeypatch.setattr(train_page, "TRAINED_DIR", tmp_path / "trained")
    monkeypatch.setitem(train_page.PRESETS, "tiny", ("Tiny (test)", InductionTrainConfig(**TINY)))
    at = app_test(tiny_gpt2_dir, monkeypatch, "Train").run()
    assert not at.exception and not at.error
    at.radio(key="train_preset").set_value("tiny").run()
    return at


def _curves(at):
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(charts) == 1  # the live chart was replaced by the final one
    return charts[0]


def test_tiny_run_completes_with_curves_and_table(app):
    app.button(key="train_start").click().run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert any(s.value.startswith("Trained 12 steps") for s in app.success)
    fig = _curves(app)
    assert fig["data"][0]["x"] == [0, 4, 8, 12]  # final history includes the step-0 evaluation
    assert [t["name"] for t in fig["data"]] == ["max induction score", "loss, first copy (no context help)",
                                                "loss, repeated copy (ICL)"]
    assert list(app.dataframe[-1].value["step"]) == [0, 4, 8, 12]
    app.radio(key="train_preset").set_value("fast").run()  # curves stay in the session across reruns
    assert _curves(app)["data"][0]["x"] == [0, 4, 8, 12] and not app.exception
    app.button(key="train_inspect_heads").click().run()  # "inspect this model": opens it on Heads
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert app.sidebar.radio(key="page").value == "Heads"
    assert "trained" in app.query_params["model"] and app.get("plotly_chart")
    app.sidebar.radio(key="page").set_value("Attention").run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert app.text_area(key="attn_prompt").value.startswith("t5 t17")  # an example in the t-token vocabulary


def test_step_zero_is_drawn_before_the_first_training_step(app, monkeypatch):
    from ui import train_page

    real = train_page.train_induction

    def stop_at_once(config, callback=None, **kw):
        train_page._request_stop()
        return real(config, callback=callback, **kw)

    monkeypatch.setattr(train_page, "train_induction", stop_at_once)
    app.button(key="train_start").click().run()
    assert not app.exception and not app.error
    assert _curves(app)["data"][0]["x"] == [0]  # the untrained model's evaluation is on the chart at once


def test_stop_ends_training_cleanly_and_page_keeps_working(app, monkeypatch):
    from ui import train_page

    real = train_page.train_induction

    def pressing_stop_at_step_6(config, callback=None, **kw):
        def cb(step, metrics):
            if step == 6:
                train_page._request_stop()  # what the Stop button's on_click does
            callback(step, metrics)
        return real(config, callback=cb, **kw)

    monkeypatch.setattr(train_page, "train_induction", pressing_stop_at_step_6)
    app.button(key="train_start").click().run()
    assert not app.exception and not app.error
    assert any("stopped at step 6 of 12" in w.value for w in app.warning), [w.value for w in app.warning]
    assert _curves(app)["data"][0]["x"] == [0, 4]  # step 0 (drawn before training) + the evaluations so far
    monkeypatch.setattr(train_page, "train_induction", real)
    app.button(key="train_start").click().run()
    assert not app.exception and any(s.value.startswith("Trained 12 steps") for s in app.success)


def test_a_training_run_still_stopping_is_awaited(app):
    """A click starts a new script run before the training one has stopped: the page waits for it."""
    import threading

    from training.induction import InductionTrainConfig, TrainHistory
    from ui import train_page

    h = TrainHistory(steps=[4, 8], tokens=[60, 120], train_loss=[3.4, 3.3], loss_first=[3.5, 3.4],
                     loss_second=[3.5, 3.3], icl_score=[0.0, -0.1], induction=[[[0.1, 0.0]], [[0.2, 0.1]]],
                     prev_token=[[[0.0, 0.1]], [[0.0, 0.2]]])
    # as the new script run sees it while the old one finishes its training step
    run = {"preset": "tiny", "config": InductionTrainConfig(**TINY), "history": h, "step": 9, "status": "running"}
    app.session_state[train_page.RUN_KEY] = run
    timer = threading.Timer(0.3, lambda: run.update(status="stopped"))
    timer.start()
    app.run()
    timer.join()
    assert not app.exception and any("stopped at step 9 of 12" in w.value for w in app.warning)
    assert _curves(app)["data"][0]["x"] == [4, 8]
