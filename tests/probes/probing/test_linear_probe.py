"""Probe engine: finds planted linear structure, finds none in noise, honest baselines."""
import numpy as np
import pytest
import torch

from interp.backends.bridge import bridge_of
from interp.errors import InvalidInput
from probes.probing.linear import (
    classification_metrics,
    control_labels,
    evaluate,
    fit_logistic,
    fit_ridge,
    majority_baseline,
    r2_score,
    selectivity,
    split_indices,
    sweep_layers,
)


def planted(n=3000, d=40, k=3, seed=0, noise=0.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32) * rng.uniform(0.1, 10, size=d).astype(np.float32)
    w = rng.normal(size=(d, k))
    y = (x @ w + noise * rng.normal(size=(n, k))).argmax(1)
    return x, y


def test_split_is_seeded_disjoint_and_respects_groups():
    s = split_indices(1000, seed=3)
    assert len(np.intersect1d(s.train, s.test)) == 0 and len(s.train) + len(s.val) + len(s.test) == 1000
    assert np.array_equal(s.test, split_indices(1000, seed=3).test)
    groups = np.repeat(np.arange(100), 10)
    g = split_indices(1000, seed=0, groups=groups)
    assert not set(groups[g.train]) & set(groups[g.test]) and not set(groups[g.val]) & set(groups[g.test])
    with pytest.raises(InvalidInput):
        split_indices(2)


def test_logistic_finds_planted_structure():
    x, y = planted()
    s = split_indices(len(y), seed=0)
    p = fit_logistic(x, y, s)
    m = evaluate(p, x, y, s.test)
    assert m["accuracy"] > 0.95 and m["balanced_accuracy"] > 0.95
    assert set(m["per_class_accuracy"]) == {0, 1, 2}
    # directions in raw space reproduce the standardised probe's logits up to a per-task constant
    raw = torch.einsum("nd,dtk->ntk", torch.from_numpy(x), p.raw_directions())
    diff = raw - p.scores(x)
    assert torch.allclose(diff, diff[:1].expand_as(diff), atol=1e-3)


def test_logistic_finds_nothing_in_noise():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1500, 60)).astype(np.float32)
    y = rng.integers(0, 3, size=1500)
    s = split_indices(1500, seed=0)
    p = fit_logistic(x, y, s)
    acc = evaluate(p, x, y, s.test)["accuracy"]
    # chance is 1/3; 225 test rows -> standard error ~0.031
    assert abs(acc - 1 / 3) < 0.1, acc
    # while the probe can memorise its own training rows a little
    assert evaluate(p, x, y, s.train)["accuracy"] > acc


def test_multi_task_labels_are_fitted_jointly():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2000, 20)).astype(np.float32)
    y = np.stack([(x[:, 0] > 0).astype(int), (x[:, 1] + x[:, 2] > 0).astype(int) * 2,
                  rng.integers(0, 3, 2000)], 1)  # task 2 is noise
    s = split_indices(2000, seed=0)
    m = evaluate(fit_logistic(x, y, s, n_classes=3), x, y, s.test, 3)
    acc = m["per_task_accuracy"]
    assert acc[0] > 0.95 and acc[1] > 0.95 and abs(acc[2] - 1 / 3) < 0.1


def test_ridge_recovers_linear_target_and_not_noise():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2000, 30)).astype(np.float32)
    y = np.stack([x @ rng.normal(size=30) + 0.1 * rng.normal(size=2000), rng.normal(size=2000)], 1)
    s = split_indices(2000, seed=0)
    p = fit_ridge(x, y, s)
    pred = p.predict(x[s.test])
    assert r2_score(y[s.test, 0], pred[:, 0]) > 0.99
    assert r2_score(y[s.test, 1], pred[:, 1]) < 0.05


def test_metrics_by_hand():
    m = classification_metrics(np.array([0, 0, 0, 1]), np.array([0, 0, 1, 1]))
    assert m["accuracy"] == 0.75 and m["per_class_accuracy"] == {0: 2 / 3, 1: 1.0}
    assert m["balanced_accuracy"] == pytest.approx(5 / 6)
    assert r2_score(np.array([1.0, 2, 3]), np.array([2.0, 2, 2])) == pytest.approx(0.0)
    s = split_indices(100, seed=0)
    y = np.array([0] * 80 + [1] * 20)
    assert majority_baseline(y, s)["per_class_accuracy"].get(0) == 1.0


def test_control_task_and_selectivity():
    rng = np.random.default_rng(4)
    tokens = rng.integers(0, 20, size=3000)
    y = rng.integers(0, 3, size=3000)
    ctrl = control_labels(tokens, y, seed=0)
    for t in range(20):  # a fixed function of the token
        assert len(set(ctrl[tokens == t])) == 1
    onehot = np.eye(20, dtype=np.float32)[tokens] + 0.05 * rng.normal(size=(3000, 20)).astype(np.float32)
    s = split_indices(3000, seed=0)
    ctrl_acc = evaluate(fit_logistic(onehot, ctrl, s), onehot, ctrl, s.test)["accuracy"]
    assert ctrl_acc > 0.95  # a linear probe can memorise a token -> class table
    task_acc = evaluate(fit_logistic(onehot, y, s), onehot, y, s.test)["accuracy"]
    assert selectivity(task_acc, ctrl_acc) < -0.4  # ... so the real (random) task is not selective at all


def test_sweep_layers_picks_the_informative_layer():
    x, y = planted(n=1500, d=20)
    rng = np.random.default_rng(99)  # not planted()'s seed: same draws would be the signal rescaled
    feats = {"noise": rng.normal(size=x.shape).astype(np.float32), "signal": x}
    s = split_indices(len(y), seed=0)
    sw = sweep_layers(feats, y, s, kind="logistic", l2_grid=(1e-3,))
    assert sw.best()[0] == "signal" and sw.series()[0] < 0.6
    with pytest.raises(InvalidInput):
        sweep_layers(feats, y, s, kind="svm")
    with pytest.raises(InvalidInput, match="single class"):
        fit_logistic(x, np.zeros(len(y), int), s)


def test_reinitialised_copy(tiny_handle):
    rnd = tiny_handle.reinitialised(seed=0)
    tokens = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        a, b = tiny_handle.logits(tokens), rnd.logits(tokens)
        c = tiny_handle.reinitialised(seed=0).logits(tokens)
    assert a.shape == b.shape and not torch.allclose(a, b) and torch.allclose(b, c)
    orig = list(bridge_of(tiny_handle).original_model.named_parameters())
    new = list(bridge_of(rnd).original_model.named_parameters())
    assert [(k, v.shape) for k, v in orig] == [(k, v.shape) for k, v in new]
    assert all(not torch.equal(a, b) for (_, a), (_, b) in zip(orig, new) if a.ndim == 2)
    gains = [v for k, v in new if "ln_1" in k and k.endswith("weight")]
    assert gains and all(torch.equal(g, torch.ones_like(g)) for g in gains)
    assert "random init" in rnd.info.name


def test_row_gather_and_statistics_survive_a_large_offset():
    from probes.probing.linear import _rows_and_stats

    rng = np.random.default_rng(4)
    x = (rng.normal(size=(5000, 12)) * rng.uniform(0.01, 3, 12) + 1e4).astype(np.float32)
    rows = np.sort(rng.choice(5000, 3000, replace=False))
    got, mean, std = _rows_and_stats(x, rows, chunk=700)  # chunks that do not divide the rows
    ref = x[rows].astype(np.float64)
    assert np.array_equal(got.numpy(), x[rows])
    np.testing.assert_allclose(mean.numpy(), ref.mean(0), rtol=1e-6)
    np.testing.assert_allclose(std.numpy(), ref.std(0, ddof=1), rtol=1e-3)


def test_logistic_reaches_the_penalised_optimum_from_a_memmap(tmp_path):
    """The analytic-gradient L-BFGS (with its scaled first step) ends where plain autograd L-BFGS ends; the
    activations come as a read-only memmap, as streamed captures do."""
    x, y = planted(n=2000, d=30, noise=2.0)
    path = tmp_path / "x.npy"
    np.save(path, x)
    xm = np.load(path, mmap_mode="r")
    s = split_indices(len(y), seed=0)
    l2 = 1e-3
    p = fit_logistic(xm, y, s, l2_grid=(l2,), max_iter=500, tol=1e-7)
    z = ((torch.from_numpy(x[s.train]) - p.mean) / p.std).float()  # stats are float64
    yt = torch.from_numpy(y[s.train])
    w = torch.zeros(30, 3, requires_grad=True)
    b = torch.zeros(3, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=2000, tolerance_grad=1e-9, tolerance_change=1e-12,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z @ w + b, yt) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    assert torch.allclose(p.weight[:, 0], w.detach(), atol=2e-3), (p.weight[:, 0] - w).abs().max()


def test_logistic_accepts_lists_float64_and_grad_tensors_alike():
    x, y = planted(n=600, d=5)
    s = split_indices(len(y), seed=0)
    ref = fit_logistic(x, y, s).weight
    for xx in (x.tolist(), x.astype(np.float64), torch.tensor(x, requires_grad=True)):
        assert torch.allclose(fit_logistic(xx, y, s).weight, ref, atol=1e-4)


def test_ridge_with_feature_means_near_1e4_does_not_drift():
    """Standardisation statistics are float64: with means ~1e4 and spreads ~1e-2, float32 statistics moved ridge
    predictions by ~3e-2; the float64 ones must match a float64 numpy solve."""
    rng = np.random.default_rng(0)
    n, d = 400, 6
    x64 = 1e4 + 1e-2 * rng.normal(size=(n, d))
    x = x64.astype(np.float32)
    y = (x.astype(np.float64) - 1e4) @ rng.normal(size=d) * 100.0
    s = split_indices(n, seed=0)
    p = fit_ridge(x, y, s, lambdas=(1e-6,))
    assert p.mean.dtype == torch.float64 and p.std.dtype == torch.float64
    xt = x.astype(np.float64)
    mu, sd = xt[s.train].mean(0), xt[s.train].std(0, ddof=1)
    z = (xt - mu) / sd
    a = np.c_[z[s.train], np.ones(len(s.train))]
    coef = np.linalg.lstsq(a, y[s.train], rcond=None)[0]
    ref = np.c_[z, np.ones(n)] @ coef
    assert np.abs(p.predict(x)[:, 0] - ref).max() < 1e-3


def test_logistic_statistics_are_float64_and_predictions_offset_invariant():
    x, y = planted(n=600, d=5)
    s = split_indices(len(y), seed=0)
    base = fit_logistic(x, y, s)
    shifted = fit_logistic(x + np.float32(1e4), y, s)
    assert shifted.mean.dtype == torch.float64
    agree = (base.predict(x)[:, 0] == shifted.predict(x + np.float32(1e4))[:, 0]).mean()
    assert agree > 0.97


@pytest.mark.parametrize("bad", [
    dict(y="short"), dict(x="nan"), dict(x="inf"), dict(y="fractional"), dict(y="strings"), dict(l2_grid=(-1.0,)),
    dict(max_iter=0), dict(max_iter=-3), dict(max_iter=2.5), dict(l2_grid=()),
])
def test_bad_probe_inputs_are_invalid_input(bad):
    x, y = planted(n=300, d=4)
    s = split_indices(len(y), seed=0)
    kw = {k: v for k, v in bad.items() if k not in ("x", "y")}
    if bad.get("y") == "short":
        y = y[:-1]
    if bad.get("y") == "fractional":
        y = y + 0.25
    if bad.get("y") == "strings":
        y = np.where(y > 0, "a", "b")
    if bad.get("x") in ("nan", "inf"):
        x = x.copy()
        x[5, 1] = np.nan if bad["x"] == "nan" else np.inf
    with pytest.raises(InvalidInput):
        fit_logistic(x, y, s, **kw)


def test_split_fractions_over_one_are_refused():
    for fr in ((1.2, 0.1), (0.7, 0.4), (0.0, 0.2), (float("nan"), 0.1)):
        with pytest.raises(InvalidInput, match="fraction"):
            split_indices(100, fractions=fr)
