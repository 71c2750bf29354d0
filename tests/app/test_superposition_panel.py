"""Superposition panel: nothing trains on open; on request it trains a tiny n=5, m=2 model live, redraws its
columns, and caches per setting in memory and on disk (a new server opens a trained setting without training)."""
from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


def _panel(root: str, steps: int) -> None:
    import sys

    sys.path.insert(0, root)
    import dataclasses

    from ui import superposition_panel

    superposition_panel.LIVE_TRAIN = dataclasses.replace(superposition_panel.LIVE_TRAIN, steps=steps, log_every=20,
                                                         eval_samples=512)
    superposition_panel.draw()


def test_panel_trains_on_request_draws_columns_and_reuses_a_setting(tmp_path, monkeypatch):
    from ui import superposition_panel

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    superposition_panel.RESULTS.clear()  # the script below runs in this process and shares the module
    at = AppTest.from_function(_panel, args=(str(ROOT), 60), default_timeout=60).run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    assert not at.get("plotly_chart") and not superposition_panel.RESULTS  # opening the page trains nothing
    at.button(key="sp_train").click().run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert len(fig["data"]) == 5  # one line per feature
    assert list(at.dataframe[0].value["feature"]) == [0, 1, 2, 3, 4]
    assert list(superposition_panel.RESULTS) == [(0.9, 0.9, 0)]
    at.slider(key="sp_sparsity").set_value(0.0).run()
    assert not at.exception and list(superposition_panel.RESULTS) == [(0.9, 0.9, 0), (0.0, 0.9, 0)]
    first = superposition_panel.RESULTS[(0.9, 0.9, 0)]
    at.slider(key="sp_sparsity").set_value(0.9).run()  # back to the first setting: reused, nothing retrained
    assert not at.exception and len(superposition_panel.RESULTS) == 2
    assert superposition_panel.RESULTS[(0.9, 0.9, 0)] is first
    norms = at.dataframe[0].value["norm ||W_i||"]
    assert len(norms) == 5 and all(v >= 0 for v in norms)


def test_a_trained_setting_opens_without_training_after_a_restart(tmp_path, monkeypatch):
    from ui import superposition_panel

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    superposition_panel.RESULTS.clear()
    at = AppTest.from_function(_panel, args=(str(ROOT), 60), default_timeout=60).run()
    at.button(key="sp_train").click().run()
    trained = superposition_panel.RESULTS[(0.9, 0.9, 0)]
    assert list(tmp_path.rglob("*.json"))  # kept on disk
    superposition_panel.RESULTS.clear()  # a new server process: memory empty, disk kept
    again = AppTest.from_function(_panel, args=(str(ROOT), 60), default_timeout=60).run()
    assert not again.exception and not [b for b in again.get("button") if b.key == "sp_train"]  # no Train button
    assert (superposition_panel.RESULTS[(0.9, 0.9, 0)]["W"] == trained["W"]).all()
    assert len(again.get("plotly_chart")) == 1
