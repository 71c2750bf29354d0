"""Linear probes trained in torch: multinomial logistic regression and ridge regression on captured
activations, with seeded splits, regularisation chosen on validation, metrics, per-layer sweeps, and the
baselines that keep a probe honest (majority class, a control task and selectivity, a random-init model).

Features are standardised with train-split statistics; :meth:`Probe.raw_directions` maps the weights back
to the model's activation space for interventions. Labels may carry several tasks at once (``y`` of shape
[n, tasks], e.g. 64 Othello squares), fitted jointly and reported per task and overall.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from interp import validate
from interp.errors import InvalidInput
from interp.types import Progress

ProbeKind = Literal["logistic", "ridge"]  # classification (L-BFGS) or regression (closed form)

DEFAULT_L2 = (1e-4, 1e-3, 1e-2, 1e-1)  # logistic: penalty per feature weight, loss is mean CE
DEFAULT_RIDGE = (1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)  # ridge: lambda relative to n_train


@dataclass
class Split:
    """Row indices of the train / validation / test parts."""
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_indices(n: int, seed: int = 0, fractions: tuple[float, float] = (0.7, 0.15),
                  groups: np.ndarray | None = None) -> Split:
    """Seeded random split; with ``groups`` (e.g. game id per row) whole groups go to one part, so no leakage.

    ``fractions`` = (train, validation), each in (0, 1) with a sum below 1; the rest is the test part."""
    n = validate.count(n, "Number of rows", low=1)
    seed = validate.count(seed, "seed", low=0, high=2**63 - 1)
    fractions = validate.split_fractions(fractions)
    rng = np.random.default_rng(seed)
    if groups is None:
        groups = np.arange(n)
    groups = _group_ids(groups, n)
    uniq = rng.permutation(np.unique(groups))
    a, b = int(len(uniq) * fractions[0]), int(len(uniq) * (fractions[0] + fractions[1]))
    if a == 0 or b == a or b == len(uniq):
        raise InvalidInput(f"{len(uniq)} rows/groups are too few to split into train, validation and test.")
    part = {g: 0 for g in uniq[:a]} | {g: 1 for g in uniq[a:b]} | {g: 2 for g in uniq[b:]}
    which = np.array([part[g] for g in groups])
    return Split(*(np.nonzero(which == k)[0] for k in range(3)))


def _group_ids(groups: Any, n: int) -> np.ndarray:
    """One hashable, comparable group id per row: whole numbers or texts (no NaN, None or mixed types)."""
    if isinstance(groups, torch.Tensor):
        groups = groups.detach().cpu().numpy()
    try:
        arr = np.asarray(groups)
    except (ValueError, TypeError) as e:
        raise InvalidInput(f"groups is not an array ({e}).") from None
    if arr.ndim != 1 or len(arr) != n:
        raise InvalidInput(f"groups must give one group id per row ({n}), got shape {arr.shape}.")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or not (arr == np.round(arr)).all():
            raise InvalidInput("groups must be whole numbers or texts (one id per row); got NaN, inf or fractions.")
        return arr.astype(np.int64)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.str_)
                                   or arr.dtype == np.bool_):
        raise InvalidInput(f"groups must be whole numbers or texts, got dtype {arr.dtype}.")
    return arr


def _rows(x: np.ndarray | torch.Tensor, rows: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """``x[rows]`` as a new float32 tensor on ``device``; numpy arrays (memmaps too) are gathered by numpy, whose
    row gather is ~4x faster than torch's on CPU, without reading the rows that are not asked for."""
    if isinstance(x, torch.Tensor):
        if x.device.type != "cpu":
            return x[torch.from_numpy(rows).to(x.device)].float().to(device)
        x = x.numpy()
    return torch.from_numpy(np.asarray(np.take(x, rows, axis=0), np.float32)).to(device)


def _rows_and_stats(x: np.ndarray | torch.Tensor, rows: np.ndarray, device: str = "cpu",
                    chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x[rows]`` as a new float32 tensor with its per-feature mean and (unbiased) std, in one pass.

    Each chunk of rows is gathered and summed while still in cache (pass ``rows`` sorted: the gather is then a
    forward scan). Sums are shifted by the first chunk's mean and totalled in float64, so the variance does not
    cancel for features whose mean dwarfs their spread.
    """
    n, d = len(rows), x.shape[1]
    gather = not (isinstance(x, torch.Tensor) and x.device.type != "cpu")  # CPU: gather chunk by chunk below
    if gather:
        src = x.numpy() if isinstance(x, torch.Tensor) else x
        buf = np.empty((n, d), np.float32)
        out = torch.from_numpy(buf)
    else:
        out = _rows(x, rows, device)
    shift = None
    s1 = torch.zeros(d, dtype=torch.float64, device=out.device)
    s2 = torch.zeros(d, dtype=torch.float64, device=out.device)
    for lo in range(0, n, chunk):
        if gather:
            buf[lo:lo + chunk] = src[rows[lo:lo + chunk]]
        c = out[lo:lo + chunk]  # [rows, d]
        if shift is None:
            shift = c.mean(0)  # [d]
        c = c - shift
        s1 += c.sum(0).double()
        s2 += (c * c).sum(0).double()
    mean = s1 / n
    std = ((s2 - n * mean * mean) / max(1, n - 1)).clamp_min(0).sqrt().clamp_min(1e-6)
    return out.to(device), (mean + shift.double()).to(device), std.to(device)  # stats in float64


@dataclass
class Probe:
    """A fitted linear probe. ``weight`` [d, tasks, classes] (logistic) or [d, tasks] (ridge), on standardised x."""
    kind: ProbeKind
    weight: torch.Tensor
    bias: torch.Tensor
    mean: torch.Tensor  # [d] float64: feature means near 1e4 would lose 1e-3 in float32
    std: torch.Tensor  # [d] float64
    l2: float
    val_scores: dict[float, float] = field(default_factory=dict)  # l2 -> validation accuracy / R^2

    def scores(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Logits [n, tasks, classes] (logistic) or predictions [n, tasks] (ridge)."""
        x = _as_tensor(x)
        mean, std = self.mean.double(), self.std.double()
        out = []
        for lo in range(0, max(1, x.shape[0]), 16384):  # standardise in float64, a chunk at a time
            z = ((x[lo:lo + 16384].double() - mean) / std).to(self.weight.dtype)  # [rows, d]
            if self.kind == "logistic":
                out.append(torch.einsum("nd,dtk->ntk", z, self.weight) + self.bias)
            else:
                out.append(z @ self.weight + self.bias)
        return torch.cat(out)

    def predict(self, x: torch.Tensor | np.ndarray) -> np.ndarray:
        """Class per task [n, tasks] (logistic) or values [n, tasks] (ridge)."""
        s = self.scores(x)
        return (s.argmax(-1) if self.kind == "logistic" else s).cpu().numpy()

    def raw_directions(self) -> torch.Tensor:
        """Weights in the model's activation space (undoing standardisation): [d, tasks, (classes)]."""
        shape = (-1,) + (1,) * (self.weight.ndim - 1)
        return (self.weight.double() / self.std.double().view(shape)).to(self.weight.dtype)


def _as_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.float()
    arr = np.ascontiguousarray(x, np.float32)
    return torch.from_numpy(arr if arr.flags.writeable else arr.copy())  # read-only memmaps are copied


def _as_tasks(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    return y[:, None] if y.ndim == 1 else y


def _fit_logistic_once(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, y: torch.Tensor, n_classes: int,
                       l2: float, init: tuple | None, max_iter: int, tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """L-BFGS on mean cross-entropy (summed over tasks) + l2 * |w|^2 for standardised features, analytic gradient.

    Standardisation is folded into the weights (z @ w = x @ (w / std) - mean @ (w / std)), so no standardised
    copy of the rows is made. Per chunk of rows (reused while in cache): logits by ``F.linear`` against the
    transposed weights and the gradient as G^T X with G^T made contiguous; for few classes these skinny
    products are 2x faster on CPU than ``x @ w`` and ``X^T G``. G's rows sum to zero over classes (softmax
    minus one-hot), so G^T X is computed for the first k-1 classes and the last is minus their sum (~10% of a
    pass saved for k = 3).
    """
    n, d, t, k = x.shape[0], x.shape[1], y.shape[1], n_classes
    w = init[0].clone() if init else torch.zeros(d, t, k, device=x.device)  # [d, tasks, classes]
    b = init[1].clone() if init else torch.zeros(t, k, device=x.device)  # [tasks, classes]
    onehot = torch.nn.functional.one_hot(y, k).to(x.dtype)  # [n, tasks, classes]
    inv = (1 / std)[:, None]  # [d, 1]
    chunk = max(256, (3 << 20) // max(1, 4 * d * max(1, t * k // 16)))  # ~3 MB of rows (and of logits) per chunk

    def raw(w_, b_):  # standardisation folded in: z @ w + b == x @ w_raw + shift
        w_raw = w_.reshape(d, t * k) * inv  # [d, tasks*classes]
        return w_raw.T.contiguous(), b_.reshape(t * k) - mean @ w_raw

    def loss_and_grad(w_, b_):
        w_raw_t, shift = raw(w_, b_)  # [tasks*classes, d], [tasks*classes]
        loss = torch.zeros((), dtype=x.dtype, device=x.device)
        gx = torch.zeros(t * (k - 1), d, dtype=x.dtype, device=x.device)  # first k-1 classes of G^T X
        gsum = torch.zeros(t * k, dtype=x.dtype, device=x.device)
        for lo in range(0, n, chunk):  # one pass: each chunk of rows is reused while still in cache
            xc = x[lo:lo + chunk]
            logp = F.linear(xc, w_raw_t, shift).view(-1, t, k).log_softmax(-1)  # [rows, tasks, classes]
            oh = onehot[lo:lo + chunk]
            loss -= (oh * logp).sum()
            g = logp.exp() - oh  # [rows, tasks, classes] n * dloss/dlogits
            gx += g[:, :, :k - 1].reshape(-1, t * (k - 1)).T.contiguous() @ xc
            gsum += g.sum(0).view(t * k)
        gx = gx.view(t, k - 1, d)
        gx = torch.cat([gx, -gx.sum(1, keepdim=True)], 1).view(t * k, d)  # [tasks*classes, d]
        gz = (gx.T - mean[:, None] * gsum) / n  # [d, tasks*classes] = Z^T g
        return (loss / n + l2 * (w_ * w_).sum(), (gz * inv).reshape(d, t, k).contiguous() + 2 * l2 * w_,
                (gsum / n).view(t, k))

    # L-BFGS's first step is 1 / |g|_1 along -g, far too short here; from w = 0, scale the variables (w = s * u)
    # so that it lands on the minimum of the loss's quadratic model along -g instead (one cheap pass), which
    # saves the line search two or three evaluations. Later steps are quasi-Newton, hence scale-free.
    first = loss_and_grad(w, b) if init is None else None
    scale = 1.0 if first is None else _first_step_scale(x, raw, first[1], first[2], k, l2, chunk)
    u_w, u_b = (w / scale).requires_grad_(True), (b / scale).requires_grad_(True)
    opt = torch.optim.LBFGS([u_w, u_b], lr=1, max_iter=max_iter, tolerance_grad=tol * scale, tolerance_change=1e-10,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        nonlocal first
        with torch.no_grad():
            loss, gw, gb = first if first is not None else loss_and_grad(u_w * scale, u_b * scale)
            first = None
            u_w.grad, u_b.grad = gw * scale, gb * scale
        return loss

    opt.step(closure)
    return (u_w * scale).detach(), (u_b * scale).detach()


@torch.no_grad()
def _first_step_scale(x: torch.Tensor, raw: Callable, gw: torch.Tensor, gb: torch.Tensor, k: int, l2: float,
                      chunk: int) -> float:
    """Variable scale s for which L-BFGS's first step (1 / |g|_1 along -g, in units of s) is the exact minimiser of
    the loss's quadratic model along -g at w = 0, where every softmax is uniform and the curvature of the
    cross-entropy along a change v of the logits is mean_k(v^2) - mean_k(v)^2 (one pass over the rows)."""
    w_raw_t, shift = raw(gw, gb)  # logits change per unit step along g
    curv = torch.zeros((), dtype=torch.float64, device=x.device)
    for lo in range(0, x.shape[0], chunk):
        v = F.linear(x[lo:lo + chunk], w_raw_t, shift).view(-1, gb.shape[0], k)  # [rows, tasks, classes]
        curv += (v.square().mean(-1) - v.mean(-1).square()).sum().double()
    g2 = float((gw * gw).sum() + (gb * gb).sum())
    curvature = float(curv) / x.shape[0] + 2 * l2 * float((gw * gw).sum())
    if g2 <= 0 or curvature <= 0:
        return 1.0
    return max(1e-6, g2 / curvature * float(gw.abs().sum() + gb.abs().sum()))


def fit_logistic(x: np.ndarray | torch.Tensor, y: np.ndarray, split: Split, *, l2_grid: Sequence[float] = DEFAULT_L2,
                 n_classes: int | None = None, max_iter: int = 100, tol: float = 1e-4, device: str = "cpu") -> Probe:
    """Multinomial logistic regression per task (L-BFGS, full batch); l2 chosen by validation accuracy.

    ``x``: [n, d]; ``y``: [n] or [n, tasks] int class labels. The grid is walked from strong to weak
    regularisation with warm starts; L-BFGS stops at max |gradient| < ``tol`` or ``max_iter`` iterations
    (``tol`` 1e-4 on the mean loss is scikit-learn's default stopping rule for lbfgs).
    """
    x, yt, split = _checked(x, y, split, "classification")
    l2_grid = validate.grid(l2_grid, "l2", low=0.0)
    max_iter = validate.count(max_iter, "max_iter", low=1)
    tol = validate.number(tol, "tol", low=0.0, low_open=True)
    top = int(yt.max()) + 1
    k = top if n_classes is None else validate.count(n_classes, "n_classes", low=2)
    if k < top:
        raise InvalidInput(f"n_classes is {k} but the labels go up to {top - 1}.")
    if k < 2:
        raise InvalidInput("Labels have a single class; a probe needs at least two.")
    if not isinstance(x, (torch.Tensor, np.ndarray)):
        x = np.asarray(x, np.float32)
    elif isinstance(x, np.ndarray) and x.dtype != np.float32 and not isinstance(x, np.memmap):
        x = x.astype(np.float32)
    train, val = np.sort(split.train), np.sort(split.val)  # sorted: the row gathers are forward scans
    Xtr, mean64, std64 = _rows_and_stats(x, train, device)  # [n_train, d], [d], [d] (stats float64)
    mean, std = mean64.float(), std64.float()  # the fit folds them into float32 weights
    Ytr = torch.from_numpy(yt[train].astype(np.int64)).to(device)  # [n_train, tasks]
    Yval = torch.from_numpy(yt[val].astype(np.int64)).to(device)
    Zval = ((_rows(x, val, device).double() - mean64) / std64).float()  # [n_val, d], standardised in float64
    best, init, scores = None, None, {}
    for l2 in sorted(l2_grid, reverse=True):
        init = _fit_logistic_once(Xtr, mean, std, Ytr, k, l2, init, max_iter, tol)
        pred = (torch.einsum("nd,dtk->ntk", Zval, init[0]) + init[1]).argmax(-1)
        scores[l2] = float((pred == Yval).float().mean())
        if best is None or scores[l2] > scores[best[0]]:
            best = (l2, init)
    l2, (w, b) = best
    _finite_fit(w, b)
    return Probe("logistic", w.cpu(), b.cpu(), mean64.cpu(), std64.cpu(), l2, scores)


def fit_ridge(x: np.ndarray | torch.Tensor, y: np.ndarray, split: Split, *,
              lambdas: Sequence[float] = DEFAULT_RIDGE, device: str = "cpu") -> Probe:
    """Ridge regression per target (closed form via one eigendecomposition); lambda chosen by validation R^2.

    ``lambdas`` are relative to the number of training rows (penalty = lambda * n_train * |w|^2 / n_train).
    """
    x, yt, split = _checked(x, y, split, "regression")
    lambdas = validate.grid(lambdas, "lambdas", low=0.0)
    yt = _as_tasks(yt).astype(np.float64)
    X = _as_tensor(x).to(device).double()
    Xtr = X[torch.from_numpy(split.train).to(device)]  # [n_train, d]
    mean, std = Xtr.mean(0), Xtr.std(0).clamp_min(1e-6)  # float64 throughout; ridge is not the hot path
    Z = (X - mean) / std
    Y = torch.from_numpy(yt).to(device)
    ym = Y[split.train].mean(0)
    Zt, Yt = Z[split.train], Y[split.train] - ym
    evals, evecs = torch.linalg.eigh(Zt.T @ Zt)
    proj = evecs.T @ (Zt.T @ Yt)  # [d, tasks]
    best, scores = None, {}
    for lam in lambdas:
        w = evecs @ (proj / (evals + lam * len(split.train))[:, None])
        scores[lam] = float(r2_score(Y[split.val].cpu().numpy(), (Z[split.val] @ w + ym).cpu().numpy()))
        if best is None or scores[lam] > scores[best[0]]:
            best = (lam, w)
    lam, w = best
    _finite_fit(w, ym)
    return Probe("ridge", w.float().cpu(), ym.float().cpu(), mean.cpu(), std.cpu(), lam, scores)


def _checked(x: Any, y: Any, split: Any, task: str) -> tuple[Any, np.ndarray, Split]:
    """Features [n, d] all finite, labels matching n (whole non-negative class ids, or finite values), and a
    split whose parts are non-empty row indices into n."""
    x = validate.features(x)
    n = x.shape[0]
    yt = validate.labels(y, n, task=task)
    if not isinstance(split, Split):
        raise InvalidInput(f"split must be a Split (see split_indices), got {type(split).__name__}.")
    parts = [validate.rows(getattr(split, k), n, k) for k in ("train", "val", "test")]
    if len(parts[0]) == 0 or len(parts[1]) == 0:
        raise InvalidInput("The split's train and validation parts must each hold at least one row.")
    return x, _as_tasks(yt), Split(*parts)


def _finite_fit(*tensors: torch.Tensor) -> None:
    for t in tensors:
        validate.finite_result(t, "The probe fit", "The features may be too large or ill-conditioned; scale them "
                               "or raise the regularisation.")


# ----------------------------------------------------------------------------- metrics


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int | None = None) -> dict[str, Any]:
    """Accuracy, balanced accuracy (mean per-class recall over classes present) and per-class accuracy.

    Multi-task labels [n, tasks] are pooled over tasks; ``per_task_accuracy`` is added.
    """
    yt = _as_tasks(validate.labels(y_true, _n_rows(y_true, "y_true")))
    yp = _as_tasks(validate.labels(y_pred, yt.shape[0]))
    if yp.shape != yt.shape:
        raise InvalidInput(f"y_true and y_pred must have one shape; got {yt.shape} and {yp.shape}.")
    if n_classes is not None:
        n_classes = validate.count(n_classes, "n_classes", low=1, high=1 << 20)
    k = int(n_classes or max(yt.max(), yp.max()) + 1)
    per_class = {c: float((yp[yt == c] == c).mean()) for c in range(k) if (yt == c).any()}
    out = {"accuracy": float((yt == yp).mean()), "balanced_accuracy": float(np.mean(list(per_class.values()))),
           "per_class_accuracy": per_class, "n": int(yt.shape[0])}
    if yt.shape[1] > 1:
        out["per_task_accuracy"] = (yt == yp).mean(0).tolist()
    return out


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination, averaged over targets (1 = perfect, 0 = predicting the mean)."""
    yt = _as_tasks(validate.labels(y_true, _n_rows(y_true, "y_true"), task="regression"))
    yp = _as_tasks(validate.labels(y_pred, yt.shape[0], task="regression"))
    if yp.shape != yt.shape:
        raise InvalidInput(f"y_true and y_pred must have one shape; got {yt.shape} and {yp.shape}.")
    ss_res = ((yt - yp) ** 2).sum(0)
    ss_tot = ((yt - yt.mean(0)) ** 2).sum(0).clip(1e-12)
    return float(np.mean(1 - ss_res / ss_tot))


def evaluate(probe: Probe, x: np.ndarray | torch.Tensor, y: np.ndarray, rows: np.ndarray,
             n_classes: int | None = None) -> dict[str, Any]:
    """Metrics of ``probe`` on ``rows`` of (x, y): classification metrics or R^2."""
    n = int(np.shape(x)[0])
    rows = validate.rows(rows, n, "Evaluation")
    pred = probe.predict(_as_tensor(x)[torch.from_numpy(rows)])
    if probe.kind == "ridge":
        return {"r2": r2_score(np.asarray(y)[rows], pred), "n": int(len(rows))}
    return classification_metrics(np.asarray(y)[rows], pred, n_classes)


def majority_baseline(y: np.ndarray, split: Split) -> dict[str, Any]:
    """Predict each task's most frequent training class on the test rows."""
    yt = _as_tasks(validate.labels(y, _n_rows(y, "Labels")))
    if not isinstance(split, Split):
        raise InvalidInput(f"split must be a Split (see split_indices), got {type(split).__name__}.")
    split = Split(*(validate.rows(getattr(split, k), yt.shape[0], k) for k in ("train", "val", "test")))
    if not len(split.train) or not len(split.test):
        raise InvalidInput("The majority baseline needs training and test rows.")
    maj = np.array([np.bincount(yt[split.train, j]).argmax() for j in range(yt.shape[1])])
    return classification_metrics(yt[split.test], np.broadcast_to(maj, yt[split.test].shape))


# ----------------------------------------------------------------------------- control task, sweeps


def control_labels(token_ids: np.ndarray, y: np.ndarray, seed: int = 0) -> np.ndarray:
    """Hewitt & Liang 2019 control task: each (input token, task) gets a fixed random class, drawn from the
    task's empirical class distribution; ``token_ids`` [n], ``y`` [n] or [n, tasks] -> same shape as y."""
    yt = _as_tasks(validate.labels(y, _n_rows(y, "Labels")))
    token_ids = np.asarray(validate.labels(token_ids, yt.shape[0])).reshape(-1)
    if token_ids.shape[0] != yt.shape[0]:
        raise InvalidInput(f"token_ids must give one id per row ({yt.shape[0]}).")
    rng = np.random.default_rng(validate.seed_value(seed))
    vocab = np.unique(token_ids)
    out = np.empty_like(yt)
    where = np.searchsorted(vocab, token_ids)  # [n] index of each row's token in vocab
    for j in range(yt.shape[1]):
        freq = np.bincount(yt[:, j], minlength=int(yt.max()) + 1) / len(yt)
        out[:, j] = rng.choice(len(freq), size=len(vocab), p=freq)[where]
    return out.reshape(np.shape(y))


def selectivity(task_accuracy: float, control_accuracy: float) -> float:
    """Hewitt & Liang's selectivity: task accuracy minus control-task accuracy (high = the probe reads the
    representation, not its own capacity to memorise)."""
    return (validate.number(task_accuracy, "task accuracy", low=0, high=1)
            - validate.number(control_accuracy, "control accuracy", low=0, high=1))


def _n_rows(y: Any, what: str) -> int:
    """The number of rows of a label array (InvalidInput for a scalar or something that is not an array)."""
    shape = np.shape(y) if not isinstance(y, (str, bytes, dict)) else ()
    if len(shape) == 0 or shape[0] == 0:
        raise InvalidInput(f"{what} must be a non-empty [rows] or [rows, tasks] array, got {str(y)[:40]!r}.")
    return int(shape[0])


@dataclass
class LayerSweep:
    """Test metrics of one probe per layer (``layers`` in order), plus the fitted probes."""
    layers: list[str]
    metrics: list[dict[str, Any]]
    probes: list[Probe]

    def series(self, key: str = "accuracy") -> list[float]:
        return [m[key] for m in self.metrics]

    def best(self, key: str = "accuracy") -> tuple[str, float]:
        i = int(np.argmax(self.series(key)))
        return self.layers[i], self.series(key)[i]


def sweep_layers(features: Mapping[str, np.ndarray], y: np.ndarray, split: Split, *, kind: ProbeKind = "logistic",
                 n_classes: int | None = None, progress: Progress | None = None,
                 **fit_kw: Any) -> LayerSweep:
    """Fit the same probe on every layer's features (captured together in one pass) and test each;
    ``progress(fraction, message)`` is called after each layer."""
    if kind not in ("logistic", "ridge"):
        raise InvalidInput(f"Probe kind must be 'logistic' or 'ridge', got {kind!r}.")
    layers, metrics, probes = [], [], []
    for name, x in features.items():
        p = fit_logistic(x, y, split, n_classes=n_classes, **fit_kw) if kind == "logistic" \
            else fit_ridge(x, y, split, **fit_kw)
        layers.append(name)
        probes.append(p)
        metrics.append(evaluate(p, x, y, split.test, n_classes))
        if progress is not None:
            progress(len(layers) / len(features), f"probed {len(layers)}/{len(features)} layers")
    return LayerSweep(layers, metrics, probes)
