"""The intervention an nnsight trace runs: wait for each module event in firing order, cut the sites out of it,
apply the edits, keep the reads, and (with ``grad_of``) differentiate the metric inside the trace.

This module travels: on NDIF the trace body is rebuilt from source on the server, and nnsight ships the
functions it calls by value. So it imports nothing but torch and takes only plain data (tuples, dicts, tensors)
plus the caller's edit functions; :mod:`interp.backends.nnsight` builds that data from
:mod:`interp.backends.hf_sites`. Errors a caller should see as ``InvalidInput`` are raised as ``ValueError``
starting with ``MARK`` (an exception class of ours would not exist on the server).
"""
from __future__ import annotations

from typing import Any

import torch

MARK = "[interp] "


def locate(model: Any, path: str, ops: tuple[str, ...]) -> Any:
    """The envoy of ``path`` (``model.get``), or of an operation inside its forward (nnsight ``.source``)."""
    env = model.get(path)
    for op in ops:
        env = getattr(env.source, op)
    return env


def locate_in(env: Any, ops: tuple[str, ...]) -> Any:
    for op in ops:
        env = getattr(env.source, op)
    return env


def cut(r: dict, value: Any, carry: dict) -> torch.Tensor:
    """The site tensor of recipe ``r`` in its tap's ``value`` (a view of it where possible, so in-place edits
    and gradients reach the model)."""
    view = r["view"]
    if view == "id":
        if r["index"] is not None and isinstance(value, (tuple, list)):
            return value[r["index"]]
        return value
    if view == "heads":  # [batch, pos, heads * d_head] -> [batch, pos, heads, d_head]
        return value.view(*value.shape[:-1], r["heads"], r["d_head"])
    if view == "expand":  # [1, pos, d_model] -> [batch, pos, d_model]
        return value.expand(carry["batch"], *value.shape[1:])
    if view == "arg_heads":  # attention function argument [batch, heads, pos, d_head] -> [batch, pos, heads, d_head]
        args, _ = value
        return args[r["index"]].transpose(1, 2)
    if view == "fused":  # GPT-2's c_attn output [batch, pos, 3 * d_model] -> part [batch, pos, heads, d_head]
        width = r["heads"] * r["d_head"]
        part = value[..., r["index"] * width:(r["index"] + 1) * width]
        return part.reshape(*value.shape[:-1], r["heads"], r["d_head"])
    raise ValueError(f"{MARK}unknown view {view!r}")


def insert(r: dict, value: Any, act: torch.Tensor) -> Any:
    """``value`` with the site of recipe ``r`` replaced by ``act``."""
    view = r["view"]
    if view in ("id", "resid_mid"):
        if r["index"] is not None and isinstance(value, (tuple, list)):
            return type(value)((*value[:r["index"]], act, *value[r["index"] + 1:]))
        return act
    if view == "heads":
        return act.reshape(*act.shape[:-2], r["heads"] * r["d_head"])
    if view == "expand":
        return act
    if view == "arg_heads":
        args, kwargs = value
        args = list(args)
        args[r["index"]] = act.transpose(1, 2)
        return tuple(args), kwargs
    if view == "fused":
        width = r["heads"] * r["d_head"]
        parts = list(value.split(width, dim=-1))
        parts[r["index"]] = act.reshape(*act.shape[:-2], width)
        return torch.cat(parts, dim=-1)
    raise ValueError(f"{MARK}unknown view {view!r}")


def edited(fn: Any, act: torch.Tensor, key: str) -> torch.Tensor:
    """``fn(act)`` (or ``act`` changed in place when it returns None), checked: a tensor of ``act``'s shape."""
    out = fn(act)
    if out is None:
        return act
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"{MARK}The edit at {key} returned {type(out).__name__}, not a tensor.")
    if out.shape != act.shape:
        raise ValueError(f"{MARK}The edit at {key} returned shape {list(out.shape)}; the activation there is "
                         f"{list(act.shape)} (an edit keeps the shape).")
    return out


def norm_parts(x: torch.Tensor, norm: str, eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(centred input, scale [.., 1], normalized)`` of a LayerNorm ("LN") or RMSNorm ("RMS") input."""
    xc = x - x.mean(-1, keepdim=True) if norm == "LN" else x
    scale = (xc.pow(2).mean(-1, keepdim=True) + eps).sqrt()
    return xc, scale, xc / scale


def run_plan(model: Any, tracer: Any, steps: list, edits: dict, result: dict, *, keep_graph: bool,
             put_all: bool, grad_of: Any, positions: Any, stop_at: int, want_logits: bool) -> None:
    """Run inside ``with model.trace(...)``: fill ``result`` with ``acts``, ``logits`` and ``grads``.

    ``steps``: ``[(path, event, ops, actions)]`` in firing order; an action is ``("site", recipe, read)``,
    ``("base", path)`` (hold a block input for resid_mid), ``("norm_out", path, weight, bias)`` or ``("select",)``
    (keep one position per row before the unembedding). ``put_all``: write every read site back (so gradients
    flow through it). ``stop_at``: index of the step after which the pass is stopped (-1: run to the end).
    """
    acts: dict[str, torch.Tensor] = {}
    result["acts"] = acts
    carry: dict[str, Any] = {"batch": int(positions.shape[0]) if positions is not None else None}
    if grad_of is not None:
        torch.set_grad_enabled(True)
    # An operation's envoy is located once (locating it again waits for it again), and every module whose
    # forward is drilled into is instrumented before the pass reaches it (nnsight's .source takes effect at the
    # module's next call): the first level now, a nested call's source when its turn comes.
    envs: dict[tuple, Any] = {}
    for path, _, ops, _ in steps:
        if ops and (path, tuple(ops[:1])) not in envs:
            envs[(path, tuple(ops[:1]))] = locate(model, path, tuple(ops[:1]))
    for i, (path, event, ops, actions) in enumerate(steps):
        where = (path, tuple(ops))
        if where not in envs:
            outer = envs.get((path, tuple(ops[:1])))
            envs[where] = locate(model, path, tuple(ops)) if outer is None else locate_in(outer, tuple(ops[1:]))
        env = envs[where]
        value = getattr(env, event)
        if carry["batch"] is None and isinstance(value, torch.Tensor) and value.ndim >= 2:
            carry["batch"] = int(value.shape[0])
        changed = False
        for action in actions:
            tag = action[0]
            if tag == "base":
                carry["base:" + action[1]] = value
            elif tag == "select":  # [batch, pos, d_model] -> [batch, 1, d_model]
                rows = torch.arange(value.shape[0], device=value.device)
                value = value[rows, positions.to(value.device)][:, None, :]
                changed = True
            elif tag == "norm_out":
                held = carry.get("norm:" + action[1])
                if held is not None and held["dirty"]:
                    ln = model.get(action[1])
                    weight = getattr(ln, "weight", None)
                    bias = getattr(ln, "bias", None)
                    out = held["normalized"].to(value.dtype)
                    out = out * weight if weight is not None else out
                    value = out + bias if bias is not None else out
                    changed = True
            else:
                r, read = action[1], action[2]
                key = r["key"]
                fn = edits.get(key)
                put = fn is not None or (read and put_all)
                if r["view"] in ("norm_scale", "norm_normalized"):
                    held = carry.get("norm:" + r["put"])
                    if held is None:
                        xc, scale, normalized = norm_parts(value, r["norm"], r["eps"])
                        held = carry["norm:" + r["put"]] = {"xc": xc, "scale": scale, "normalized": normalized,
                                                            "dirty": False}
                    if r["view"] == "norm_scale":
                        act = held["scale"]
                        if fn is not None:
                            act = edited(fn, act, key)
                            held["scale"] = act
                            held["normalized"] = held["xc"] / act
                    else:
                        act = held["normalized"]
                        if fn is not None:
                            act = edited(fn, act, key)
                            held["normalized"] = act
                    if put:
                        held["dirty"] = True
                        if fn is None and r["view"] == "norm_scale":  # so the gradient reaches the scale
                            held["normalized"] = held["xc"] / act
                elif r["view"] == "resid_mid":
                    base = carry["base:" + r["base"]]
                    out = cut({"view": "id", "index": r["index"]}, value, carry)
                    act = base + out  # the model's own sum: attention output plus the block input
                    if fn is not None:
                        act = edited(fn, act, key)
                    if put:
                        value = insert(r, value, act - base)
                        changed = True
                else:
                    act = cut(r, value, carry)
                    if fn is not None:
                        act = edited(fn, act, key)
                    if put:
                        value = insert(r, value, act)
                        changed = True
                if read:
                    acts[key] = act if (keep_graph or grad_of is not None) else act.detach()
        if changed:
            setattr(env, event, value)
        if i == stop_at:
            tracer.stop()
    if not want_logits:
        return
    out = model.output
    logits = out.logits if hasattr(out, "logits") else out[0]  # [batch, pos, d_vocab]
    if grad_of is not None:
        metric = grad_of(logits)
        if not isinstance(metric, torch.Tensor) or metric.ndim != 0:
            raise ValueError(f"{MARK}grad_of must return one number (a 0-d tensor), e.g. a mean over the batch.")
        if not metric.requires_grad:
            raise ValueError(f"{MARK}grad_of's number does not depend on the logits (was it detached?), so it has "
                             "no gradient.")
        keys = list(acts)
        found = torch.autograd.grad(metric, [acts[k] for k in keys], allow_unused=True, retain_graph=keep_graph)
        grads = {}
        for k, g in zip(keys, found):
            if g is None:
                raise ValueError(f"{MARK}No gradient reached {k}: the metric does not depend on it.")
            grads[k] = g.detach()
        result["grads"] = grads
        if not keep_graph:
            for k in keys:
                acts[k] = acts[k].detach()
    result["logits"] = logits if keep_graph else logits.detach()
