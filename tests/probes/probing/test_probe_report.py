"""Per-layer probe report: finds a planted label, keeps the baselines honest, refuses unusable data."""
import numpy as np
import pytest

from interp.errors import InvalidInput
from probes.probing.layers import capture_texts
from probes.probing.report import probe_by_layer
from tasks.labelled import parse_labelled_csv


def test_planted_layer_beats_noise_and_baselines():
    rng = np.random.default_rng(0)
    n = 600
    y = rng.integers(0, 3, n)
    tokens = rng.integers(0, 50, n)  # inputs unrelated to y: the control task is chance
    signal = np.eye(3)[y] * 3 + rng.normal(size=(n, 3)) * 0.5
    feats = {"L0": rng.normal(size=(n, 8)).astype(np.float32),
             "L1": np.concatenate([signal, rng.normal(size=(n, 5))], 1).astype(np.float32)}
    calls = []
    fit = dict(max_iter=30, l2_grid=(1e-2, 1e-3))
    rep = probe_by_layer(feats, y, tokens, seed=1, progress=lambda f, m: calls.append(f), **fit)
    assert rep.layers == ["L0", "L1"] and rep.best()[0] == "L1"
    assert rep.accuracy[1] > 0.95 and abs(rep.accuracy[0] - 1 / 3) < 0.15
    assert rep.control_accuracy[1] < 0.6 and rep.selectivity[1] > 0.4
    assert 0.25 < rep.majority_accuracy < 0.45 and rep.n_train + rep.n_val + rep.n_test == n
    df = rep.table()
    assert list(df.columns) == ["layer", "accuracy", "balanced_accuracy", "control_accuracy", "selectivity",
                                "majority_accuracy"] and len(df) == 2
    assert calls[-1] == 1.0 and calls == sorted(calls)
    no_ctrl = probe_by_layer(feats, y, tokens, seed=1, control=False, **fit)
    assert np.isnan(no_ctrl.control_accuracy).all() and no_ctrl.accuracy == rep.accuracy


def test_groups_and_refusals():
    rng = np.random.default_rng(0)
    x = {"L0": rng.normal(size=(40, 4)).astype(np.float32)}
    with pytest.raises(InvalidInput, match="single class"):
        probe_by_layer(x, np.zeros(40, int), np.arange(40))
    with pytest.raises(InvalidInput, match="disagree"):
        probe_by_layer(x, np.arange(39) % 2, np.arange(39))
    with pytest.raises(InvalidInput, match="too few to split"):
        probe_by_layer({"L0": x["L0"][:3]}, np.array([0, 1, 0]), np.arange(3))
    groups = np.repeat(np.arange(2), 20)  # 2 groups cannot fill train, validation and test
    with pytest.raises(InvalidInput, match="too few to split"):
        probe_by_layer(x, np.arange(40) % 2, np.arange(40), groups=groups)


def test_planted_csv_label_is_found_on_the_tiny_model(tiny_handle):
    # each last word is one token of the tiny BPE: the label is a function of the token read
    words = {"a": ["cat", "mat", "sat", "add"], "b": ["dog", "log", "os", "return", "world"]}
    rows = [f"{frame} {w},{label}" for label, ws in words.items() for w in ws
            for frame in ("the cat sat on", "hello world", "a b c", "import os and", "x", "print(1) then")]
    ds = parse_labelled_csv(("text,label\n" + "\n".join(rows)).encode())
    feats = capture_texts(tiny_handle, ds.texts, ds.position)
    rep = probe_by_layer(feats.features, ds.labels, feats.token_ids, n_classes=2, max_iter=30, l2_grid=(1e-3,))
    # the label is a function of the last token: the embedding layer reads it perfectly
    assert rep.accuracy[0] >= 0.85 and rep.accuracy[0] > rep.majority_accuracy + 0.2


def _report(acc, ctrl, majority=0.5, n_test=200):
    from probes.probing.report import ProbeReport

    return ProbeReport(["L0", "L1"], list(acc), list(acc), list(ctrl), majority, 1000, 600, 200, n_test, 2)


def test_verdict_leads_with_what_the_sweep_shows():
    from probes.probing.report import probe_verdict

    same = probe_verdict(_report([0.39, 1.0], [1.0, 1.0]), "'label'")  # the old demo: control as good as the task
    assert same.kind == "not_selective" and not same.positive and "control task" in same.text
    assert "+0.0%" in same.text and "L0 reaches 39.0%" in same.text
    good = probe_verdict(_report([0.5, 0.95], [0.5, 0.55]))
    assert good.kind == "selective" and good.positive and "selectivity +40.0%" in good.text
    weak = probe_verdict(_report([0.5, 0.56], [0.5, 0.5], n_test=40))  # interval reaches the majority class
    assert weak.kind == "no_signal" and "not clearly above the majority class" in weak.text
    blind = probe_verdict(_report([0.5, 0.95], [float("nan")] * 2))
    assert blind.kind == "no_control"
