"""The results browser survives damaged folders and refuses roots that are not results folders."""
from __future__ import annotations

import json
from pathlib import Path

import plotly.graph_objects as go
import pytest

from experiments.core.results import check_results_root, figure_spec_from_html, list_results, read_result
from interp.errors import InvalidInput


def _result(path: Path, *, verdict=None, metadata=None, started="2026-01-01T00:00:00+00:00") -> Path:
    (path / "figures").mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "metrics.json").write_text(json.dumps({"verdict": verdict if verdict is not None else
                                                   {"status": "reproduced", "reason": "ok"}}))
    (path / "summary.md").write_text("# summary")
    meta = metadata if metadata is not None else {"experiment": path.parent.name, "started_at": started,
                                                  "figures": {"b_headline": {}, "a_other": {}}}
    (path / "metadata.json").write_text(json.dumps(meta))
    return path


def test_damaged_folders_anywhere_under_the_root_are_skipped_or_read(tmp_path):
    good = _result(tmp_path / "exp" / "good")
    _result(tmp_path / "exp" / "list-meta", metadata=[1, 2, 3])  # a JSON list: skipped, no crash
    plain = _result(tmp_path / "other" / "plain-verdict", verdict="reproduced", started="2026-02-01")
    (good / "figures" / "b_headline.png").write_text("not an image")
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    for name in ("a_other", "b_headline"):
        fig.write_html(str(good / "figures" / f"{name}.html"), include_plotlyjs="directory")
    found = list_results(tmp_path)
    assert [r.path for r in found] == [plain, good]  # newest first; the list-metadata folder is left out
    assert found[0].verdict == {"status": "reproduced", "reason": ""}
    assert good / "figures" / "b_headline.png" not in found[1].figure_files("png").values()
    assert list(found[1].figure_files("html")) == ["b_headline", "a_other"]  # the experiment's order: headline first
    spec = found[1].figure_spec("b_headline")
    assert spec["data"][0]["x"] == [1, 2] and spec["data"][0]["type"] == "scatter"
    with pytest.raises(InvalidInput, match="JSON list"):
        read_result(tmp_path / "exp" / "list-meta")


def test_roots_that_are_not_results_folders_are_refused(tmp_path):
    for bad in ("/", "", str(tmp_path / "missing"), str(Path.home())):
        with pytest.raises(InvalidInput):
            check_results_root(bad)
    assert list_results(tmp_path) == []


def test_figure_spec_of_text_without_a_plot_is_none():
    assert figure_spec_from_html("<html>nothing</html>") is None
    assert figure_spec_from_html("Plotly.newPlot( 'id', [1, {broken") is None
