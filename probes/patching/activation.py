"""Activation patching and path patching: which components carry a behaviour from a clean to a corrupted run.

Every sweep runs the corrupted prompts with one clean activation copied in per cell and records the metric
(logit difference by default, or the answer's probability / log-probability) per pair. Normalised effects
read 0 = corrupted run, 1 = clean run.

Built on ``transformer_lens.patching``: the cell layouts and patch setters are TransformerLens's
(``layer_pos_patch_setter``, ``layer_head_vector_patch_setter``, ``layer_pos_head_vector_patch_setter``), and
``get_act_patch_*`` give the same numbers (tests and ``benchmarks/bench_patching.py`` check it). Written here:
(1) the driver batches many cells into one forward (replica ``k`` of the corrupted batch gets cell ``k``'s
patch) instead of one forward per cell, which is what makes the exact sweep affordable on CPU; (2) path
patching computes the receiver head's q/k/v from its patched input by hand, because TransformerLens's
``get_act_patch_direct_path`` needs the split-QKV fork that TL-native attention (attn-only-2l) lacks; on
GPT-2 the two agree (tested), and a runtime check refuses a model where the hand-computed q/k/v do not
reproduce the model's own.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, get_args

import pandas as pd
import torch
import torch.nn.functional as F

from interp import validate
from interp.engines import layer_head_vector_patch_setter, layer_pos_head_vector_patch_setter, layer_pos_patch_setter
from interp.errors import InvalidInput
from interp.functional import normalize
from interp.model import Model
from interp.sites import Site, SiteKind
from interp.types import Head, Progress
from tasks.pairs import PairBatch

PatchMetric = Literal["logit_diff", "prob", "logprob"]  # what activation patching measures at the answer

SweepKind = Literal["resid_pre", "attn_out", "mlp_out", "head_out", "head_out_by_pos", "head_q", "head_k",
                    "head_v"]
QKV = Literal["q", "k", "v"]
SWEEP_KINDS: tuple[str, ...] = get_args(SweepKind)



@dataclass(frozen=True)
class Layout:
    """Where a sweep patches (a site kind, one site per layer), the axes of its cell grid, and TL's patch setter."""
    site: SiteKind
    axes: tuple[str, ...]
    setter: Callable


LAYOUTS: dict[str, Layout] = {
    "resid_pre": Layout("resid_pre", ("layer", "pos"), layer_pos_patch_setter),
    "attn_out": Layout("attn_out", ("layer", "pos"), layer_pos_patch_setter),
    "mlp_out": Layout("mlp_out", ("layer", "pos"), layer_pos_patch_setter),
    "head_out": Layout("z", ("layer", "head"), layer_head_vector_patch_setter),
    "head_out_by_pos": Layout("z", ("layer", "pos", "head"), layer_pos_head_vector_patch_setter),
    "head_q": Layout("q", ("layer", "head"), layer_head_vector_patch_setter),
    "head_k": Layout("k", ("layer", "head"), layer_head_vector_patch_setter),
    "head_v": Layout("v", ("layer", "head"), layer_head_vector_patch_setter),
}
BY_POSITION = ("resid_pre", "attn_out", "mlp_out", "head_out_by_pos")


# ----------------------------------------------------------------------------- metrics


def metric_fn(batch: PairBatch, metric: PatchMetric = "logit_diff") -> Callable[[torch.Tensor], torch.Tensor]:
    """``logits [rows, pos, vocab] -> [rows]`` at each pair's answer position; rows may be replicas of the
    batch (``k * len(batch)`` rows, replica-major), as the batched sweeps run them."""
    if metric not in get_args(PatchMetric):
        raise InvalidInput(f"metric must be one of {', '.join(get_args(PatchMetric))}, got {metric!r}.")
    if metric == "logit_diff" and not batch.has_wrong:
        raise InvalidInput("The logit-difference metric needs a wrong answer for every pair.",
                           "Give wrong answers, or choose the prob or logprob metric.")
    n = len(batch)

    def fn(logits: torch.Tensor) -> torch.Tensor:
        reps = logits.shape[0] // n
        pos = batch.answer_pos.repeat(reps)  # [rows]
        if logits.shape[1] == 1:  # already read out at the answer position only (see answer_readout)
            pos = torch.zeros_like(pos)
        rows = torch.arange(logits.shape[0], device=logits.device)
        final = logits[rows, pos].float()  # [rows, vocab]
        ans, wrong = batch.answer.repeat(reps), batch.wrong.repeat(reps)
        if metric == "logit_diff":
            return final[rows, ans] - final[rows, wrong]
        logp = F.log_softmax(final, dim=-1)
        picked = logp[rows, ans]
        return picked if metric == "logprob" else picked.exp()

    return fn


def require_gap(clean: torch.Tensor, corrupted: torch.Tensor) -> float:
    """The mean clean - corrupted metric gap, the scale every normalised effect is divided by; InvalidInput when the
    two runs give (numerically) the same metric or a non-finite one, so no table of NaNs or of noise blown up by a
    zero gap is ever returned. Checked right after the clean and corrupted runs, before any patched run."""
    c, r = float(clean.double().mean()), float(corrupted.double().mean())
    if not (math.isfinite(c) and math.isfinite(r)):
        raise InvalidInput("The clean or corrupted run gives a NaN or infinite metric (NaN weights, or a prob "
                           "metric that underflowed).", "Check the model, or choose the logit_diff metric.")
    gap = c - r
    if abs(gap) <= 1e-6 * max(1.0, abs(c), abs(r)):
        raise InvalidInput(f"The clean and corrupted prompts give the same metric ({c:.4g}), so there is no "
                           "behaviour for patching to bring back and every normalised effect would be 0/0.",
                           "Change the corrupted prompt where the behaviour depends on it (e.g. the name the answer "
                           "copies), so the clean prompt predicts the answer and the corrupted one does not.")
    return gap


# ----------------------------------------------------------------------------- results


@dataclass
class SweepResult:
    """Raw metric of every patched cell per pair, plus the unpatched clean and corrupted metrics."""
    kind: SweepKind
    axes: tuple[str, ...]  # names of the cell-grid axes, e.g. ("layer", "head")
    values: torch.Tensor  # [*cells, batch] metric with that cell patched
    clean: torch.Tensor  # [batch]
    corrupted: torch.Tensor  # [batch]
    metric: PatchMetric = "logit_diff"
    pos_labels: list[str] = field(default_factory=list)  # clean tokens of pair 0 (position axes)

    @property
    def gap(self) -> float:
        """Mean clean minus mean corrupted metric: the scale of a normalised effect."""
        return float(self.clean.mean() - self.corrupted.mean())

    def normalised(self) -> torch.Tensor:
        """``[*cells]``: (mean patched - mean corrupted) / (mean clean - mean corrupted); 0 = corrupted, 1 = clean."""
        gap = require_gap(self.clean, self.corrupted)
        return (self.values.mean(-1) - self.corrupted.mean()) / gap

    def effects(self) -> torch.Tensor:
        """``[*cells, batch]``: each pair's patched-minus-corrupted metric over the mean gap (its mean is
        :meth:`normalised`); the per-pair samples for confidence intervals."""
        return (self.values - self.corrupted) / require_gap(self.clean, self.corrupted)

    def table(self) -> pd.DataFrame:
        """One row per cell: its indices (heads as ``L.H``), normalised effect, raw mean metric."""
        norm, raw = self.normalised(), self.values.mean(-1)
        rows = []
        for idx in torch.cartesian_prod(*[torch.arange(s) for s in norm.shape]).reshape(-1, norm.ndim).tolist():
            cell = dict(zip(self.axes, idx))
            row: dict[str, object] = {"component": component_label(self.kind, cell)}
            row.update(cell)
            row.update(effect=float(norm[tuple(idx)]), metric=float(raw[tuple(idx)]))
            rows.append(row)
        return pd.DataFrame(rows)


def component_label(kind: str, cell: dict[str, int]) -> str:
    """``"1.2"`` for a head, ``"1.2@7"`` for a head at a position, ``"resid_pre 1@7"`` for a layer and position."""
    if "head" in cell:
        head = str(Head(cell["layer"], cell["head"]))
        suffix = {"head_q": " q", "head_k": " k", "head_v": " v"}.get(kind, "")
        return f"{head}@{cell['pos']}" if "pos" in cell else head + suffix
    return f"{kind} {cell['layer']}@{cell['pos']}"


# ----------------------------------------------------------------------------- runs


@dataclass
class PatchRuns:
    """The clean and corrupted runs of a batch, prepared once: clean activations for the hooks a sweep patches."""
    handle: Model
    batch: PairBatch
    metric: PatchMetric
    fn: Callable[[torch.Tensor], torch.Tensor]
    clean_metric: torch.Tensor  # [batch]
    corrupted_metric: torch.Tensor  # [batch]
    clean_acts: dict[Site, torch.Tensor]


def answer_positions(batch: PairBatch, reps: int) -> torch.Tensor:
    """``[reps * batch]`` each row's answer position, for ``Model.run(logit_positions=)``: a patched forward then
    unembeds ``rows x 1`` positions instead of ``rows x pos`` (the same numbers; much less work for big
    vocabularies)."""
    return batch.answer_pos.repeat(reps)


def layout(handle: Model, kind: str) -> Layout:
    """The layout of sweep ``kind`` on this model; InvalidInput for an unknown kind or one the model lacks."""
    if kind not in LAYOUTS:
        raise InvalidInput(f"Unknown sweep {kind!r}; choose one of {', '.join(SWEEP_KINDS)}.")
    if kind == "mlp_out" and handle.info.attn_only:
        raise InvalidInput(f"{handle.info.name} is attention-only: it has no MLP outputs to patch.",
                           "Sweep resid_pre, attn_out or the heads instead.")
    return LAYOUTS[kind]


def check_kinds(kinds: object) -> tuple[str, ...]:
    """A non-empty tuple of sweep names (a bare string is one name)."""
    if isinstance(kinds, str):
        kinds = (kinds,)
    if not isinstance(kinds, (tuple, list)) or not kinds:
        raise InvalidInput(f"Give at least one sweep kind ({', '.join(SWEEP_KINDS)}); got {str(kinds)[:40]!r}.")
    for k in kinds:
        if not isinstance(k, str) or k not in LAYOUTS:
            raise InvalidInput(f"Unknown sweep {str(k)[:40]!r}; choose one of {', '.join(SWEEP_KINDS)}.")
    return tuple(kinds)


def sweep_sites(handle: Model, kinds: tuple[str, ...]) -> list[Site]:
    """Every site the sweeps of ``kinds`` patch, one per layer and kind, in a stable order."""
    return sorted({s for k in kinds for s in handle.sites(layout(handle, k).site)})


def prepare(handle: Model, batch: PairBatch, metric: PatchMetric = "logit_diff",
            kinds: tuple[str, ...] = ("head_out",)) -> PatchRuns:
    """Run clean (reading the activations ``kinds`` patch) and corrupted once; metric of each per pair."""
    fn = metric_fn(batch, metric)
    clean = handle.run(batch.clean, read=sweep_sites(handle, kinds))
    corrupted = handle.run(batch.corrupted)
    clean_metric, corrupted_metric = fn(clean.logits).cpu(), fn(corrupted.logits).cpu()
    require_gap(clean_metric, corrupted_metric)  # before any patched run
    return PatchRuns(handle, batch, metric, fn, clean_metric, corrupted_metric, clean.acts)


def _cells(handle: Model, batch: PairBatch, kind: str) -> tuple[tuple[int, ...], list[tuple[int, ...]]]:
    axes = LAYOUTS[kind].axes
    if kind in BY_POSITION and not batch.same_length:
        raise InvalidInput("Position-resolved sweeps need every pair to have the same number of tokens; these "
                           f"pairs have {sorted(set(batch.lengths.tolist()))}.",
                           "Use pairs of one length, or sweep head outputs over all positions.")
    size = {"layer": handle.info.n_layers, "head": handle.info.n_heads, "pos": int(batch.clean.shape[1])}
    shape = tuple(size[a] for a in axes)
    return shape, [tuple(c) for c in torch.cartesian_prod(*[torch.arange(s) for s in shape]).reshape(
        -1, len(shape)).tolist()]


def sweep(runs: PatchRuns, kind: SweepKind, *, max_rows: int = 256, progress: Progress | None = None,
          should_stop: Callable[[], bool] | None = None) -> SweepResult:
    """Exact activation patching of every cell of ``kind`` (see :data:`SWEEP_KINDS`).

    Cells are grouped so that each forward runs ``max_rows // len(batch)`` replicas of the corrupted batch,
    replica ``k`` with cell ``k`` patched (a cell's patch is TransformerLens's setter for that layout).
    ``progress(fraction, message)`` is called per forward; ``should_stop()`` returning True stops the sweep
    with :class:`SweepStopped` (no partial result).
    """
    handle, batch = runs.handle, runs.batch
    lay = layout(handle, kind)
    missing = [s for s in handle.sites(lay.site) if s not in runs.clean_acts]
    if missing:
        raise InvalidInput(f"The clean run did not capture {missing[0]}; prepare(..., kinds=) with {kind!r}.")
    shape, cells = _cells(handle, batch, kind)
    n = len(batch)
    per = max(1, max_rows // n)
    values = torch.zeros(len(cells), n)
    corrupted = batch.corrupted
    for start in range(0, len(cells), per):
        if should_stop is not None and should_stop():
            raise SweepStopped(f"The {kind} sweep was stopped after {start} of {len(cells)} cells.")
        chunk = cells[start: start + per]
        by_layer: dict[int, list[tuple[int, tuple[int, ...]]]] = {}
        for k, cell in enumerate(chunk):
            by_layer.setdefault(cell[0], []).append((k, cell))
        edits = {Site(lay.site, layer): _replica_edit(runs.clean_acts[Site(lay.site, layer)], group, n, lay.setter)
                 for layer, group in by_layer.items()}
        tokens = corrupted.repeat(len(chunk), 1)  # [len(chunk) * batch, pos]
        logits = handle.run(tokens, edit=edits, logit_positions=answer_positions(batch, len(chunk))).logits
        values[start: start + len(chunk)] = runs.fn(logits).cpu().reshape(len(chunk), n)
        if progress is not None:
            progress(min(1.0, (start + len(chunk)) / len(cells)), f"{kind}: {start + len(chunk)}/{len(cells)} cells")
    return SweepResult(kind, lay.axes, values.reshape(*shape, n), runs.clean_metric, runs.corrupted_metric,  # type: ignore[arg-type]
                       runs.metric, batch.clean_str[0] if batch.clean_str else [])


class SweepStopped(Exception):
    """A sweep was stopped by the user (Stop button); nothing partial is returned."""


def _replica_edit(clean: torch.Tensor, group: list[tuple[int, tuple[int, ...]]], n: int, setter: Callable):
    def edit(act: torch.Tensor) -> torch.Tensor:
        act = act.clone()
        view = act.view(-1, n, *act.shape[1:])  # [replicas, batch, ...]
        for k, cell in group:
            view[k] = setter(view[k], list(cell), clean)
        return act

    return edit


def run_sweeps(handle: Model, batch: PairBatch, kinds: tuple[str, ...], *, metric: PatchMetric = "logit_diff",
               max_rows: int = 256, progress: Progress | None = None,
               should_stop: Callable[[], bool] | None = None) -> dict[str, SweepResult]:
    """Prepare once and run each sweep of ``kinds``; progress spans all of them."""
    kinds = check_kinds(kinds)
    validate.count(max_rows, "max_rows", low=1, high=1_000_000)
    runs = prepare(handle, batch, metric, kinds)
    out = {}
    for i, kind in enumerate(kinds):  # each sweep is one request on a remote backend (Model.batched)
        sub = None if progress is None else (lambda f, m, i=i: progress((i + f) / len(kinds), m))
        fields = handle.batched(_sweep_on, runs, kind, max_rows=max_rows, progress=sub, should_stop=should_stop)
        out[kind] = SweepResult(**fields)
    return out


def _sweep_on(handle: Model, runs: PatchRuns, kind: SweepKind, **kwargs) -> dict:
    """:func:`sweep` with ``runs`` on ``handle`` (inside a remote request, the model as the server holds it); its
    fields as a plain dict, which is what a remote request can send back."""
    return dict(vars(sweep(dataclasses.replace(runs, handle=handle), kind, **kwargs)))


# ----------------------------------------------------------------------------- path patching


@dataclass
class PathResult:
    """Path patching from one sender head into receivers' q, k or v (other readers see the corrupted sender)."""
    sender: Head
    component: str
    values: torch.Tensor  # [n_layers, n_heads, batch] metric with the path into that head patched; NaN for
    #                       receivers not at a later layer
    clean: torch.Tensor  # [batch]
    corrupted: torch.Tensor  # [batch]

    def normalised(self) -> torch.Tensor:  # [n_layers, n_heads]
        return (self.values.mean(-1) - self.corrupted.mean()) / require_gap(self.clean, self.corrupted)


def path_patch(handle: Model, batch: PairBatch, sender: Head | str, component: QKV = "k", *,
               receivers: list[Head] | None = None, metric: PatchMetric = "logit_diff",
               max_rows: int = 256) -> PathResult:
    """Add the sender head's clean-minus-corrupted write (``z @ W_O``) to each receiver head's own input to
    its ``component`` (q, k or v) at every position, on the corrupted run; every other reader sees the
    corrupted sender. Same semantics as ``transformer_lens.patching.get_act_patch_direct_path``.

    The receiver's q/k/v are recomputed from ``ln1(resid_pre + delta)`` with its W and b and written at
    ``attn.hook_{q,k,v}``; receivers are batched as replicas like :func:`sweep`.
    """
    n_layers, n_heads = handle.info.n_layers, handle.info.n_heads
    s = Head.parse(sender).check(n_layers, n_heads)
    if s.layer >= n_layers - 1:
        raise InvalidInput(f"Sender {s} is in the last layer: no later head reads it.")
    recv = receivers if receivers is not None else [Head(la, h) for la in range(s.layer + 1, n_layers)
                                                    for h in range(n_heads)]
    recv = [Head.parse(r).check(n_layers, n_heads) for r in _heads_list(recv, "receivers")]
    if not recv:
        raise InvalidInput("No receiver heads selected.", "Select at least one head after the sender.")
    out, clean, corr = path_patch_jobs(handle, batch, [(s, [r]) for r in recv], component, metric=metric,
                                       max_rows=max_rows)
    values = torch.full((n_layers, n_heads, len(batch)), float("nan"))
    for k, r in enumerate(recv):
        values[r.layer, r.head] = out[k]
    return PathResult(s, component, values, clean, corr)


def _heads_list(heads: object, what: str) -> list:
    """A list of heads (``Head`` or ``"L.H"``); a bare head or string is refused (which was meant: one head?)."""
    if isinstance(heads, (str, Head)) or not isinstance(heads, (list, tuple)):
        raise InvalidInput(f"{what} must be a list of heads such as ['1.2'], got {str(heads)[:40]!r}.")
    return list(heads)


def path_patch_senders(handle: Model, batch: PairBatch, receivers: list[Head | str], component: QKV = "q", *,
                       senders: list[Head] | None = None, metric: PatchMetric = "logit_diff",
                       max_rows: int = 256) -> PathResult:
    """Path patching from every earlier head (or ``senders``) into a SET of receivers' ``component`` at once
    (Wang et al. 2022: e.g. every head -> the name movers' queries). ``values[l, h]`` is sender l.h's metric;
    ``sender`` of the result is the first receiver (a label only)."""
    n_layers, n_heads = handle.info.n_layers, handle.info.n_heads
    recv = [Head.parse(r).check(n_layers, n_heads) for r in _heads_list(receivers, "receivers")]
    if not recv:
        raise InvalidInput("Give at least one receiver head.")
    first = min(r.layer for r in recv)
    send = senders if senders is not None else [Head(la, h) for la in range(first) for h in range(n_heads)]
    send = [Head.parse(x).check(n_layers, n_heads) for x in _heads_list(send, "senders")]
    if not send:
        raise InvalidInput(f"No sender head before the receivers (the first is in layer {first}).",
                           "Choose receivers after layer 0, or give senders.")
    out, clean, corr = path_patch_jobs(handle, batch, [(x, [r for r in recv if r.layer > x.layer]) for x in send],
                                       component, metric=metric, max_rows=max_rows)
    values = torch.full((n_layers, n_heads, len(batch)), float("nan"))
    for k, x in enumerate(send):
        values[x.layer, x.head] = out[k]
    return PathResult(recv[0], component, values, clean, corr)


def path_patch_jobs(handle: Model, batch: PairBatch, jobs: list[tuple[Head, list[Head]]], component: QKV,
                    *, metric: PatchMetric = "logit_diff", max_rows: int = 256
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The engine: per job (sender, receivers), the metric with the sender's path into all those receivers'
    ``component`` patched. Returns ``[jobs, batch]`` values, clean ``[batch]`` and corrupted ``[batch]``."""
    if not isinstance(component, str) or component not in ("q", "k", "v"):
        raise InvalidInput(f"component must be q, k or v, got {str(component)[:40]!r}.")
    validate.count(max_rows, "max_rows", low=1, high=1_000_000)
    if not jobs:
        raise InvalidInput("No sender heads to patch from (an empty selection).", "Select at least one sender head.")
    for s, recv in jobs:
        if not recv:
            raise InvalidInput(f"Sender {s} has no receiver after it (an empty selection).",
                               "Select receivers in later layers than the sender.")
        early = [r for r in recv if r.layer <= s.layer]
        if early:
            raise InvalidInput(f"Receiver {early[0]} is not after sender {s}; a head reads only earlier layers.")
    if component in ("k", "v") and handle.info.kv_heads != handle.info.n_heads:
        raise InvalidInput(f"{handle.info.name} uses grouped-query attention: its query heads share keys and values, "
                           f"so a path into one head's {component} is not defined.",
                           "Path-patch into queries (component='q'), or use activation patching.")
    fn = metric_fn(batch, metric)
    w = handle.weights()
    senders = sorted({s for s, _ in jobs})
    layers = sorted({r.layer for _, recv in jobs for r in recv})
    z_sites = sorted({Site("z", s.layer) for s in senders})
    want = set(z_sites) | {Site("resid_pre", la) for la in layers} | {Site(component, la) for la in layers}
    clean_run = handle.run(batch.clean, read=z_sites)
    corr_run = handle.run(batch.corrupted, read=sorted(want))
    require_gap(fn(clean_run.logits).cpu(), fn(corr_run.logits).cpu())  # before any patched run
    clean_c, corr_c = clean_run.acts, corr_run.acts
    with torch.no_grad():
        for la in layers:  # the hand-computed q/k/v must reproduce the model's own before anything is patched
            own = _qkv(handle, la, component, corr_c[Site("resid_pre", la)])
            if not torch.allclose(own, _per_query_head(corr_c[Site(component, la)], handle), atol=1e-4, rtol=1e-3):
                raise InvalidInput(
                    f"{handle.info.name}: recomputing layer {la}'s {component} from ln1(resid_pre) does not reproduce "
                    "the model's own (rotary embeddings or an unusual attention block), so path patching is not "
                    "supported on it here.", "Use activation patching (sweeps) or attribution instead.")
    n = len(batch)
    per = max(1, max_rows // n)
    out = torch.zeros(len(jobs), n)
    for start in range(0, len(jobs), per):
        chunk = jobs[start: start + per]
        groups: dict[int, list[tuple[int, int, torch.Tensor]]] = {}
        with torch.no_grad():
            for k, (s, recv) in enumerate(chunk):
                z = Site("z", s.layer)
                delta = (clean_c[z][:, :, s.head] - corr_c[z][:, :, s.head]) @ w.W_O[s.layer, s.head]  # [b, pos, d]
                for la in sorted({r.layer for r in recv}):
                    new = _qkv(handle, la, component, corr_c[Site("resid_pre", la)] + delta)  # [b, pos, head, d_head]
                    for r in recv:
                        if r.layer == la:
                            groups.setdefault(la, []).append((k, r.head, new[:, :, r.head]))
        edits = {Site(component, la): _path_edit(g, n) for la, g in sorted(groups.items())}
        logits = handle.run(batch.corrupted.repeat(len(chunk), 1), edit=edits,
                            logit_positions=answer_positions(batch, len(chunk))).logits
        out[start: start + len(chunk)] = fn(logits).cpu().reshape(len(chunk), n)
    return out, fn(clean_run.logits).cpu(), fn(corr_run.logits).cpu()


def direct_effects(handle: Model, batch: PairBatch, *, metric: PatchMetric = "logit_diff",
                   max_rows: int = 256) -> PathResult:
    """Path patching from every head straight to the logits: its clean-minus-corrupted write added to the final
    residual stream only (through the final norm, not linearised), every other reader unchanged. Positive
    heads move the answer up directly (name movers); negative ones push it down (negative name movers)."""
    n_layers, n_heads = handle.info.n_layers, handle.info.n_heads
    fn = metric_fn(batch, metric)
    W_O = handle.weights().W_O  # [layer, head, d_head, d_model]
    final = Site("resid_post", n_layers - 1)
    z_sites = handle.sites("z")
    clean_run = handle.run(batch.clean, read=z_sites)
    corr_run = handle.run(batch.corrupted, read=z_sites)
    require_gap(fn(clean_run.logits).cpu(), fn(corr_run.logits).cpu())  # before any patched run
    clean_c, corr_c = clean_run.acts, corr_run.acts
    heads = [Head(la, h) for la in range(n_layers) for h in range(n_heads)]
    n = len(batch)
    per = max(1, max_rows // n)
    values = torch.zeros(n_layers, n_heads, n)
    for start in range(0, len(heads), per):
        chunk = heads[start: start + per]
        with torch.no_grad():
            deltas = torch.stack([(clean_c[Site("z", x.layer)][:, :, x.head] - corr_c[Site("z", x.layer)][:, :, x.head])
                                  @ W_O[x.layer, x.head] for x in chunk])  # [k, batch, pos, d_model]

        def add(resid: torch.Tensor, deltas: torch.Tensor = deltas) -> torch.Tensor:
            return resid + deltas.reshape(resid.shape)

        logits = handle.run(batch.corrupted.repeat(len(chunk), 1), edit={final: add},
                            logit_positions=answer_positions(batch, len(chunk))).logits
        out = fn(logits).cpu().reshape(len(chunk), n)
        for k, x in enumerate(chunk):
            values[x.layer, x.head] = out[k]
    return PathResult(Head(n_layers - 1, 0), "logits", values, fn(clean_run.logits).cpu(), fn(corr_run.logits).cpu())


def _qkv(handle: Model, layer: int, component: str, resid: torch.Tensor) -> torch.Tensor:
    """``[batch, pos, head, d_head]``: layer ``layer``'s q, k or v per query head computed by hand from a residual
    stream ``[batch, pos, d_model]`` through ln1 (weights from the model interface)."""
    w, info = handle.weights(), handle.info
    W = {"q": w.W_Q, "k": w.W_K, "v": w.W_V}[component][layer]  # [head, d_model, d_head]
    b = {"q": w.b_Q, "k": w.b_K, "v": w.b_V}[component]
    x = normalize(resid, info.norm, None if w.ln1_w is None else w.ln1_w[layer],
                  None if w.ln1_b is None else w.ln1_b[layer], info.eps)
    out = torch.einsum("bpd,hde->bphe", x, W)
    return out + b[layer] if b is not None else out


def _per_query_head(act: torch.Tensor, handle: Model) -> torch.Tensor:
    """k/v activations ``[batch, pos, kv_head, d_head]`` expanded to one entry per query head."""
    n_heads = handle.info.n_heads
    return act if act.shape[2] == n_heads else act.repeat_interleave(n_heads // act.shape[2], dim=2)


def _path_edit(group: list[tuple[int, int, torch.Tensor]], n: int):
    def edit(act: torch.Tensor) -> torch.Tensor:
        act = act.clone()
        view = act.view(-1, n, *act.shape[1:])  # [replicas, batch, pos, head, d_head]
        for k, head, value in group:
            view[k, :, :, head] = value
        return act

    return edit
