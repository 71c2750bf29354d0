"""One forward pass recomputed by hand from the weights, step by step, each step checked against the model.

:func:`walk` runs the model once (reading every site a step compares with), then recomputes the whole pass from the
token ids and :meth:`interp.Model.weights` alone: embedding row, positions (learned, or RoPE inside attention),
per block the norm, Q/K/V, scores, the causal mask, softmax, the weighted sum of values, W_O, the residual add,
the MLP and the second residual add, then the final norm, the unembedding and a temperature softmax. The hand
values flow from step to step (nothing is copied from the model), and every step records the max |difference|
between its hand values and the model's own activation at that site, over all positions and heads, measured now.
A step the architecture lacks (learned positions in a RoPE model, an MLP in an attention-only one) is kept with
the reason it is absent. The result holds, per step, the numbers at one position and one head for display.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from interp import validate
from interp.errors import InvalidInput
from interp.model import Model, Run, Weights
from interp.prompt_check import check_prompt
from interp.sites import Site
from probes.walkthrough import hand

StepKey = Literal[
    "embed", "pos_embed", "resid_start", "ln1", "qkv", "rope", "scores", "mask", "softmax", "mix_values",
    "out_proj", "resid_mid", "ln2", "mlp_pre", "mlp_act", "mlp_out", "resid_post", "ln_final", "unembed", "probs",
]
#: The steps of one block, in order (the page draws a block as these).
BLOCK_STEPS: tuple[StepKey, ...] = ("ln1", "qkv", "rope", "scores", "mask", "softmax", "mix_values", "out_proj",
                                    "resid_mid", "ln2", "mlp_pre", "mlp_act", "mlp_out", "resid_post")
#: Above this, a temperature flattens any distribution to uniform for display purposes; below 0 is meaningless.
MAX_TEMPERATURE = 100.0
#: A hand recomputation that differs from the model by more than this (float32) is flagged on the page.
TOLERANCE = 1e-4


@dataclass(frozen=True)
class Check:
    """One comparison, made live: the hand values against the model's own activation at ``site``."""

    label: str  # what was compared, e.g. "q"
    site: str  # the model's hook name (or a description when the model exposes no such hook)
    max_abs_diff: float
    over: str  # what the maximum ran over, e.g. "all 11 positions x 4 heads"

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= TOLERANCE


@dataclass(frozen=True)
class Shown:
    """A vector or matrix of the step at the chosen position/head, for a heatmap or bars (values on hover)."""

    name: str  # e.g. "q = x W_Q + b_Q"
    values: np.ndarray  # [n] or [rows, n] float32 (-inf allowed: masked scores)
    row_labels: tuple[str, ...] = ()  # for a matrix (e.g. key tokens) or a short vector (token labels)
    col_labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """One step of the pass: its formula, shapes, numbers, what it computed, and how that compares to the model."""

    key: StepKey
    block: int | None
    title: str
    formula: str = ""  # LaTeX
    shapes: str = ""  # e.g. "x [192] · W_Q[0, 3] [192, 48] + b_Q [48] -> q [48]"
    numbers: dict[str, float] = field(default_factory=dict)  # scalars worth reading (mean, variance, scale...)
    shown: tuple[Shown, ...] = ()
    checks: tuple[Check, ...] = ()
    absent: str | None = None  # why the architecture lacks this step (then nothing else is filled in)
    note: str = ""

    @property
    def max_abs_diff(self) -> float:
        return max((c.max_abs_diff for c in self.checks), default=0.0)


@dataclass(frozen=True)
class TopToken:
    token: str
    token_id: int
    logit: float
    probability: float  # at the walkthrough's temperature


@dataclass(frozen=True)
class Walkthrough:
    """A forward pass written out: the steps in order, the position and head they show, the top next tokens."""

    model: str
    tokens: tuple[str, ...]
    token_ids: tuple[int, ...]
    position: int
    head: int
    temperature: float
    steps: tuple[Step, ...]
    top: tuple[TopToken, ...]

    def step(self, key: StepKey, block: int | None = None) -> Step:
        for s in self.steps:
            if s.key == key and s.block == block:
                return s
        raise InvalidInput(f"No step {key!r}" + (f" in block {block}" if block is not None else "") + ".")

    @property
    def checks(self) -> list[Check]:
        return [c for s in self.steps for c in s.checks]

    @property
    def max_abs_diff(self) -> float:
        return max((c.max_abs_diff for c in self.checks), default=0.0)


# ----------------------------------------------------------------------------- helpers


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float32).cpu().numpy()


def _diff(hand_values: torch.Tensor, model_values: torch.Tensor) -> float:
    h, m = hand_values.detach().double(), model_values.detach().double().reshape(hand_values.shape)
    return float((h - m).abs().max()) if h.numel() else 0.0


def visible(token: str) -> str:
    """A token with its whitespace drawn (· space, ↵ newline, → tab), as the token strip shows it."""
    return token.replace(" ", "·").replace("\n", "↵").replace("\t", "→") or "∅"


def _label(tokens: list[str], i: int) -> str:
    return f"{i}: {visible(tokens[i])}"[:24]


class _Pass:
    """The state of one hand pass: the model's run to compare with, sizes, and the step list being built."""

    def __init__(self, model: Model, run: Run, w: Weights, position: int, head: int) -> None:
        self.m, self.run, self.w, self.p, self.h = model, run, w, position, head
        self.info = model.info
        self.ids = run.tokens[0]  # [pos]
        self.n = int(self.ids.shape[0])
        self.tokens = model.to_str_tokens(self.ids)
        self.labels = tuple(_label(self.tokens, i) for i in range(self.n))
        self.steps: list[Step] = []

    def act(self, kind: str, layer: int | None = None) -> torch.Tensor:
        """The model's own activation, batch row 0."""
        return self.run[Site(kind, layer)][0]  # type: ignore[arg-type]

    def has(self, kind: str, layer: int | None = None) -> bool:
        return Site(kind, layer) in self.run  # type: ignore[arg-type]

    def check(self, label: str, kind: str, layer: int | None, hand_values: torch.Tensor, over: str) -> Check:
        site = Site(kind, layer)  # type: ignore[arg-type]
        return Check(label, str(site), _diff(hand_values, self.act(kind, layer)), over)

    def add(self, step: Step) -> None:
        self.steps.append(step)

    @property
    def all_pos(self) -> str:
        return f"all {self.n} positions"


# ----------------------------------------------------------------------------- the steps


def _norm_step(ps: _Pass, key: StepKey, block: int | None, x: torch.Tensor) -> torch.Tensor:
    """A norm step (ln1, ln2 or the final norm) on hand input ``x [pos, d_model]``; returns the hand output."""
    info, w = ps.info, ps.w
    title = {"ln1": "Norm before attention", "ln2": "Norm before the MLP", "ln_final": "Final norm"}[key]
    if info.norm is None:
        ps.add(Step(key, block, title, absent=f"{info.name} has no normalisation: x goes on unchanged."))
        return x
    gain, bias = {"ln1": (w.ln1_w, w.ln1_b), "ln2": (w.ln2_w, w.ln2_b),
                  "ln_final": (w.ln_final_w, w.ln_final_b)}[key]
    if block is not None:
        gain = gain[block] if gain is not None else None
        bias = bias[block] if bias is not None else None
    parts = hand.norm_parts(x, info.norm, gain, bias, info.eps)
    p, d = ps.p, info.d_model
    rms = info.norm.startswith("RMS")
    prefix = {"ln1": "ln1", "ln2": "ln2", "ln_final": "final"}[key]
    checks = [ps.check("scale", f"{prefix}_scale", block, parts.scale, ps.all_pos),
              ps.check("normalized", f"{prefix}_normalized", block, parts.normalized, ps.all_pos)]
    if key == "ln_final" and ps.has("unembed_in"):
        checks.append(ps.check("output", "unembed_in", None, parts.out, ps.all_pos))
    if rms:
        formula = (r"\mathrm{ms} = \tfrac{1}{d}\sum_i x_i^2,\quad \hat x = \frac{x}{\sqrt{\mathrm{ms} + \epsilon}},"
                   r"\quad y = \hat x \odot g")
    else:
        formula = (r"\mu = \tfrac1d\sum_i x_i,\ \sigma^2 = \tfrac1d\sum_i (x_i-\mu)^2,\ "
                   r"\hat x = \frac{x-\mu}{\sqrt{\sigma^2+\epsilon}},\ y = \hat x \odot g + b")
    numbers = {"mean square" if rms else "variance": float(parts.spread[p]), "epsilon": info.eps,
               "scale (the divisor)": float(parts.scale[p, 0])}
    if parts.mean is not None:
        numbers = {"mean": float(parts.mean[p]), **numbers}
    shown = [Shown(f"x (input, position {p})", _np(x[p])), Shown("x̂ (normalized)", _np(parts.normalized[p]))]
    if gain is not None:
        shown.append(Shown("g (gain, learned)", _np(gain)))
    if bias is not None and not rms:
        shown.append(Shown("b (bias, learned)", _np(bias)))
    shown.append(Shown("y (output)", _np(parts.out[p])))
    kind = "RMSNorm" if rms else "LayerNorm"
    ps.add(Step(key, block, f"{title} ({kind})", formula, f"x [{d}] -> y [{d}] (each position on its own)",
                numbers, tuple(shown), tuple(checks)))
    return parts.out


def _attention(ps: _Pass, layer: int, x: torch.Tensor) -> torch.Tensor:
    """Steps qkv .. out_proj of block ``layer`` on the norm's hand output ``x [pos, d_model]``; returns attn_out."""
    info, w, p, h, n = ps.info, ps.w, ps.p, ps.h, ps.n
    d, dh, H = info.d_model, info.d_head, info.n_heads
    group = H // info.kv_heads
    over_heads = f"{ps.all_pos} x {H} heads"

    def proj(W: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:  # [pos, head, d_head]
        out = (x @ W[layer].permute(1, 0, 2).reshape(d, H * dh)).view(n, H, dh)  # x W for every head at once
        return out + b[layer] if b is not None else out

    q, k, v = proj(w.W_Q, w.b_Q), proj(w.W_K, w.b_K), proj(w.W_V, w.b_V)  # [pos, head, d_head] (KV expanded)
    kv_note = (f"grouped-query attention: {H} query heads share {info.kv_heads} key/value heads, so head {h} "
               f"reads key/value head {h // group}" if group > 1 else "")

    def kv_check(label: str, kind: str, hand_values: torch.Tensor) -> Check:
        model = ps.act(kind, layer).repeat_interleave(group, dim=1) if group > 1 else ps.act(kind, layer)
        return Check(label, str(Site(kind, layer)), _diff(hand_values, model),  # type: ignore[arg-type]
                     f"{ps.all_pos} x {info.kv_heads} key/value heads" if group > 1 else over_heads)

    bias_q = rf" + b_Q^{{({h})}}" if w.b_Q is not None else ""
    ps.add(Step("qkv", layer, f"Query, key and value of head {layer}.{h}",
                rf"q = x\,W_Q^{{({h})}}{bias_q},\quad "
                rf"K = X\,W_K^{{({h})}},\quad V = X\,W_V^{{({h})}}",
                f"x [{d}] · W_Q[{layer}, {h}] [{d}, {dh}] -> q [{dh}];  X [{n}, {d}] · W_K, W_V [{d}, {dh}] -> "
                f"K, V [{n}, {dh}] (one row per token)",
                shown=(Shown(f"q (position {p})", _np(q[p, h])),
                       Shown("K (one row per key token)", _np(k[:, h]), row_labels=ps.labels),
                       Shown("V (one row per key token)", _np(v[:, h]), row_labels=ps.labels)),
                checks=(ps.check("q", "q", layer, q, over_heads), kv_check("k", "k", k), kv_check("v", "v", v)),
                note=kv_note))

    if info.positional == "rotary":
        rd = info.rotary_dim or dh
        qr = hand.rope(q, info.rotary_base, info.rotary_dim, info.rotary_adjacent_pairs)
        kr = hand.rope(k, info.rotary_base, info.rotary_dim, info.rotary_adjacent_pairs)
        angles = hand.rope_angles(n, rd, info.rotary_base)[p]  # [rd/2]
        checks = []
        if ps.has("rot_q", layer):
            checks.append(ps.check("rotated q", "rot_q", layer, qr, over_heads))
        if ps.has("rot_k", layer):
            checks.append(kv_check("rotated k", "rot_k", kr))
        note = "" if info.rope_type == "default" else (
            f"{info.name}'s RoPE is of type {info.rope_type!r}, which rescales these angles; the plain formula "
            "here does not, so expect a difference.")
        ps.add(Step("rope", layer, "Rotary position embedding (RoPE)",
                    r"\theta_i = \mathrm{pos}\cdot b^{-2i/d},\quad (q_i, q_{i+d/2}) \mapsto "
                    r"(q_i\cos\theta_i - q_{i+d/2}\sin\theta_i,\ q_{i+d/2}\cos\theta_i + q_i\sin\theta_i)",
                    f"q, k [{dh}] turned pair by pair ({rd // 2} pairs, base b = {info.rotary_base:g}) -> [{dh}]",
                    {"position": float(p), "base b": info.rotary_base},
                    (Shown(f"angles θ_i at position {p} (radians)", _np(angles)),
                     Shown("q before", _np(q[p, h])), Shown("q after (rotated)", _np(qr[p, h]))),
                    tuple(checks), note=note))
        q, k = qr, kr
    else:
        ps.add(Step("rope", layer, "Rotary position embedding (RoPE)",
                    absent=f"{info.name} has learned position embeddings, added to the residual stream at the "
                    "start; q and k are not rotated."))

    scores = torch.einsum("qhe,khe->hqk", q, k) / math.sqrt(dh)  # [head, query_pos, key_pos]
    mask = hand.causal_mask(n)  # [query_pos, key_pos]
    if ps.has("attn_scores", layer):
        model_scores = ps.act("attn_scores", layer)  # [head, q, k], masked entries -inf or the dtype's minimum
        score_check = Check("scores (unmasked)", str(Site("attn_scores", layer)),
                            _diff(scores[:, ~mask], model_scores[:, ~mask]), f"{H} heads x all query/key pairs")
    else:  # the model exposes no pre-softmax scores: compare with its own q and k multiplied out
        mq = ps.act("rot_q" if ps.has("rot_q", layer) else "q", layer)
        mk = ps.act("rot_k" if ps.has("rot_k", layer) else "k", layer).repeat_interleave(group, dim=1)
        model_scores = torch.einsum("qhe,khe->hqk", mq, mk) / math.sqrt(dh)
        score_check = Check("scores (unmasked)", f"the model's own q·k/√d_head at layer {layer} (it exposes no "
                            "pre-softmax scores)", _diff(scores[:, ~mask], model_scores[:, ~mask]),
                            f"{H} heads x all query/key pairs")
    ps.add(Step("scores", layer, "Attention scores",
                r"s_j = \frac{q \cdot k_j}{\sqrt{d_\mathrm{head}}}",
                f"q [{dh}] · Kᵀ [{dh}, {n}] / √{dh} -> s [{n}] (one score per key token)",
                {"√d_head": math.sqrt(dh)},
                (Shown(f"s (query {p}, every key, before the mask)", _np(scores[h, p]), col_labels=ps.labels),),
                (score_check,)))

    masked = scores.masked_fill(mask, float("-inf"))
    pattern = torch.softmax(masked, dim=-1)  # [head, query_pos, key_pos]
    # What a masked key contributes to the softmax, e^(s - max): 0 by hand; the model's from its scores or pattern.
    if ps.has("attn_scores", layer):
        ms = ps.act("attn_scores", layer).double()
        weight = torch.exp(ms - ms.max(-1, keepdim=True).values)[:, mask]
        mask_check = Check("e^(s − max) of the masked keys", str(Site("attn_scores", layer)),
                           float(weight.abs().max()) if weight.numel() else 0.0, f"{H} heads x all future keys")
    else:
        future = ps.act("pattern", layer)[:, mask]
        mask_check = Check("attention on the masked keys", str(Site("pattern", layer)),
                           float(future.abs().max()) if future.numel() else 0.0, f"{H} heads x all future keys")
    ps.add(Step("mask", layer, "Causal mask",
                r"s_j \leftarrow -\infty \text{ for every key } j > \text{query } i",
                f"s [{n}] -> s [{n}]: the {n - 1 - p} key(s) after position {p} set to −∞ (a token cannot read the "
                "future)", {"masked keys": float(n - 1 - p)},
                (Shown(f"s after the mask (query {p})", _np(masked[h, p]), col_labels=ps.labels),), (mask_check,)))

    ps.add(Step("softmax", layer, "Softmax: attention weights",
                r"a_j = \frac{e^{s_j}}{\sum_{j'} e^{s_{j'}}}",
                f"s [{n}] -> a [{n}], a ≥ 0, Σ a = 1",
                {"largest weight": float(pattern[h, p].max()), "on key": float(pattern[h, p].argmax())},
                (Shown(f"a (query {p}: how much it reads each key)", _np(pattern[h, p]), col_labels=ps.labels),),
                (ps.check("pattern", "pattern", layer, pattern, f"{H} heads x all query/key pairs"),)))

    z = torch.einsum("hqk,khe->qhe", pattern, v)  # [pos, head, d_head]
    ps.add(Step("mix_values", layer, "Weighted sum of the values",
                r"z = \sum_j a_j\, v_j = a\,V",
                f"a [{n}] · V [{n}, {dh}] -> z [{dh}]",
                shown=(Shown(f"z (head {layer}.{h}, position {p})", _np(z[p, h])),),
                checks=(ps.check("z", "z", layer, z, over_heads),)))

    per_head = torch.einsum("phe,hed->phd", z, w.W_O[layer])  # [pos, head, d_model]
    attn_out = per_head.sum(1) + (w.b_O[layer] if w.b_O is not None else 0.0)  # [pos, d_model]
    norms = per_head[p].norm(dim=-1)  # [head]
    ps.add(Step("out_proj", layer, "Output projection W_O, summed over heads",
                r"\mathrm{attn\_out} = \sum_h z^{(h)} W_O^{(h)}" + (" + b_O" if w.b_O is not None else ""),
                f"z [{dh}] · W_O[{layer}, {h}] [{dh}, {d}] -> [{d}] per head; {H} heads summed -> [{d}]",
                {f"‖head {layer}.{h}'s part‖": float(norms[h]), "‖attn_out‖": float(attn_out[p].norm())},
                (Shown(f"head {layer}.{h}'s part z W_O", _np(per_head[p, h])),
                 Shown("‖each head's part‖", _np(norms), col_labels=tuple(f"{layer}.{i}" for i in range(H))),
                 Shown("attn_out (all heads + bias)", _np(attn_out[p]))),
                (ps.check("attn_out", "attn_out", layer, attn_out, ps.all_pos),)))
    return attn_out


def _mlp(ps: _Pass, layer: int, x: torch.Tensor) -> torch.Tensor:
    """Steps mlp_pre .. mlp_out of block ``layer`` on the second norm's hand output; returns mlp_out."""
    info, w, p = ps.info, ps.w, ps.p
    d, dm = info.d_model, info.d_mlp
    fn, act_formula = hand.activation(info.act_fn)
    name = info.act_fn
    linear = x @ w.W_in[layer] + (w.b_in[layer] if w.b_in is not None else 0.0)  # [pos, d_mlp]
    if info.gated_mlp:
        gate = x @ w.W_gate[layer]  # [pos, d_mlp]
        ps.add(Step("mlp_pre", layer, "MLP in: gate and up projections (gated MLP)",
                    r"u = x\,W_\mathrm{gate},\quad l = x\,W_\mathrm{in}",
                    f"x [{d}] · W_gate, W_in [{d}, {dm}] -> u, l [{dm}]",
                    shown=(Shown("u = x W_gate (the gate, before the non-linearity)", _np(gate[p])),
                           Shown("l = x W_in (the linear branch)", _np(linear[p]))),
                    checks=(ps.check("gate pre-activation", "mlp_pre", layer, gate, ps.all_pos),
                            ps.check("linear branch", "mlp_pre_linear", layer, linear, ps.all_pos))))
        post = fn(gate) * linear
        formula = act_formula + r",\quad h = " + name.upper() + r"(u) \odot l"
        shown = (Shown("act(u)", _np(fn(gate)[p])), Shown("h = act(u) ⊙ l", _np(post[p])))
        title = f"Non-linearity: {name} gate times the linear branch (SwiGLU-style)"
    else:
        ps.add(Step("mlp_pre", layer, "MLP in: up projection",
                    r"u = x\,W_\mathrm{in}" + (" + b_\\mathrm{in}" if w.b_in is not None else ""),
                    f"x [{d}] · W_in[{layer}] [{d}, {dm}] -> u [{dm}]",
                    shown=(Shown("u (pre-activation)", _np(linear[p])),),
                    checks=(ps.check("pre-activation", "mlp_pre", layer, linear, ps.all_pos),)))
        post = fn(linear)
        formula, shown, title = act_formula + r",\quad h = \mathrm{act}(u)", (Shown("h = act(u)", _np(post[p])),), \
            f"Non-linearity: {name}"
    active = float((post[p].abs() > 1e-6).float().mean())
    ps.add(Step("mlp_act", layer, title, formula, f"[{dm}] -> [{dm}] (element by element)",
                {"share of neurons not ~0": active}, shown,
                (ps.check("post-activation", "mlp_post", layer, post, ps.all_pos),)))
    out = post @ w.W_out[layer] + (w.b_out[layer] if w.b_out is not None else 0.0)  # [pos, d_model]
    ps.add(Step("mlp_out", layer, "MLP out: down projection",
                r"\mathrm{mlp\_out} = h\,W_\mathrm{out}" + (" + b_\\mathrm{out}" if w.b_out is not None else ""),
                f"h [{dm}] · W_out[{layer}] [{dm}, {d}] -> [{d}]",
                shown=(Shown("mlp_out", _np(out[p])),),
                checks=(ps.check("mlp_out", "mlp_out", layer, out, ps.all_pos),)))
    return out


def _absent_mlp(ps: _Pass, layer: int) -> None:
    why = f"{ps.info.name} is attention-only: its blocks have no MLP."
    for key, title in (("ln2", "Norm before the MLP"), ("mlp_pre", "MLP in"), ("mlp_act", "Non-linearity"),
                       ("mlp_out", "MLP out"), ("resid_post", "Residual add (MLP)")):
        ps.add(Step(key, layer, title, absent=why))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- the pass


def _reads(model: Model) -> list[Site]:
    """Every site some step compares with, that this model has."""
    info = model.info
    kinds_model = ["embed", "final_scale", "final_normalized", "unembed_in"]
    if info.positional == "standard":
        kinds_model.append("pos_embed")
    kinds_block = ["resid_pre", "resid_mid", "resid_post", "ln1_scale", "ln1_normalized", "q", "k", "v", "rot_q",
                   "rot_k", "attn_scores", "pattern", "z", "attn_out", "ln2_scale", "ln2_normalized", "mlp_pre",
                   "mlp_pre_linear", "mlp_post", "mlp_out"]
    if info.positional != "rotary":
        kinds_block = [k for k in kinds_block if k not in ("rot_q", "rot_k")]
    if not info.gated_mlp:
        kinds_block.remove("mlp_pre_linear")
    sites = [Site(k) for k in kinds_model if model.has(Site(k))]  # type: ignore[arg-type]
    for layer in range(info.n_layers):
        sites += [Site(k, layer) for k in kinds_block if model.has(Site(k, layer))]  # type: ignore[arg-type]
    return sites


def walk(model: Model, prompt: str, position: int | None = None, head: int = 0, temperature: float = 1.0,
         top_k: int = 10) -> Walkthrough:
    """The forward pass on ``prompt`` recomputed by hand and checked step by step; the numbers shown are those of
    token ``position`` (default: the last) and head ``head`` of every block. ``temperature`` divides the logits
    in the last step; ``top_k`` tokens are listed with their probabilities."""
    info = model.info
    check = check_prompt(model, validate.prompt_text(prompt))
    if check.too_long:
        raise InvalidInput(check.length_message or "The prompt is too long.")
    head = validate.index(head, info.n_heads, "Head", owner=f"{info.name}'s every layer")
    temperature = validate.number(temperature, "Temperature", low=0.0, low_open=True, high=MAX_TEMPERATURE)
    top_k = validate.count(top_k, "Top tokens", low=1, high=info.d_vocab)
    if info.n_heads % info.kv_heads:
        raise InvalidInput(f"{info.n_heads} query heads cannot share {info.kv_heads} key/value heads evenly.")
    for site in ("q", "k", "v", "pattern", "z"):
        model.require(Site(site, 0))  # type: ignore[arg-type]
    run = model.run(prompt, read=_reads(model))
    n = int(run.tokens.shape[1])
    position = n - 1 if position is None else validate.index(position, n, "Position",
                                                             owner=f"the prompt ({n} tokens)")
    w = model.weights()  # finite: load_model refuses weights with NaN or infinite values
    ps = _Pass(model, run, w, position, head)
    p = position
    d = info.d_model
    with torch.no_grad():
        tid = int(ps.ids[p])
        x = w.W_E[ps.ids].to(torch.float32)  # [pos, d_model]
        ps.add(Step("embed", None, "Token id -> embedding row",
                    r"e = W_E[\mathrm{id}]",
                    f"id {tid} picks row {tid} of W_E [{info.d_vocab}, {d}] -> e [{d}]",
                    {"token id": float(tid)}, (Shown(f"e = W_E[{tid}] ({ps.labels[p]})", _np(x[p])),),
                    (ps.check("embedding", "embed", None, x, ps.all_pos),)))
        if info.positional == "standard" and w.W_pos is not None:
            pos = w.W_pos[:n].to(torch.float32)  # [pos, d_model]
            checks = (ps.check("position embedding", "pos_embed", None, pos, ps.all_pos),) if ps.has("pos_embed") \
                else ()
            ps.add(Step("pos_embed", None, "Position embedding",
                        r"x_0 = e + W_\mathrm{pos}[\mathrm{position}]",
                        f"row {p} of W_pos [{info.n_ctx}, {d}] -> [{d}], added to e",
                        {"position": float(p)}, (Shown(f"W_pos[{p}]", _np(pos[p])),), checks))
            x = x + pos
        else:
            kind = "RoPE: q and k are rotated by position inside each attention layer" \
                if info.positional == "rotary" else f"positional encoding {info.positional!r}"
            ps.add(Step("pos_embed", None, "Position embedding", absent=f"{info.name} adds no position vector here "
                        f"({kind})."))
        ps.add(Step("resid_start", None, "The residual stream starts",
                    r"x_0 = e" + (r" + W_\mathrm{pos}[\mathrm{position}]" if info.positional == "standard" else ""),
                    f"[{d}]: the vector every block reads from and adds to", {"‖x_0‖": float(x[p].norm())},
                    (Shown("x_0", _np(x[p])),), (ps.check("resid_pre 0", "resid_pre", 0, x, ps.all_pos),)))

        for layer in range(info.n_layers):
            normed = _norm_step(ps, "ln1", layer, x)
            attn_out = _attention(ps, layer, normed)
            x = x + attn_out
            mid_kind = "resid_post" if info.attn_only else "resid_mid"
            ps.add(Step("resid_mid", layer, "Residual add (attention)", r"x \leftarrow x + \mathrm{attn\_out}",
                        f"[{d}] + [{d}] -> [{d}]", {"‖x‖": float(x[p].norm())},
                        (Shown("x after attention", _np(x[p])),),
                        (ps.check("residual stream", mid_kind, layer, x, ps.all_pos),),
                        note="Attention-only: this is the block's output." if info.attn_only else ""))
            if info.attn_only:
                _absent_mlp(ps, layer)
                continue
            normed = _norm_step(ps, "ln2", layer, x)
            x = x + _mlp(ps, layer, normed)
            ps.add(Step("resid_post", layer, "Residual add (MLP)", r"x \leftarrow x + \mathrm{mlp\_out}",
                        f"[{d}] + [{d}] -> [{d}]", {"‖x‖": float(x[p].norm())}, (Shown("x after the MLP", _np(x[p])),),
                        (ps.check("residual stream", "resid_post", layer, x, ps.all_pos),)))

        final = _norm_step(ps, "ln_final", None, x)
        logits = final @ w.W_U.to(torch.float32) + (w.b_U if w.b_U is not None else 0.0)  # [pos, d_vocab]
        model_logits = run.logits[0].to(torch.float32)  # type: ignore[index]  # [pos, d_vocab]
        top_logits = torch.topk(logits[p], min(20, info.d_vocab))
        ps.add(Step("unembed", None, "Unembedding: one logit per vocabulary token",
                    r"\ell = y\,W_U" + (" + b_U" if w.b_U is not None else ""),
                    f"y [{d}] · W_U [{d}, {info.d_vocab}] -> ℓ [{info.d_vocab}]",
                    {"largest logit": float(top_logits.values[0]), "mean logit": float(logits[p].mean())},
                    (Shown("the 20 largest logits", _np(top_logits.values),
                           col_labels=tuple(visible(t) for t in model.to_str_tokens(top_logits.indices))),),
                    (Check("logits", str(Site("logits")), _diff(logits, model_logits),
                           f"{ps.all_pos} x {info.d_vocab} tokens"),)))

        probs = hand.softmax_with_temperature(logits[p], temperature)  # [d_vocab] float64
        model_probs = hand.softmax_with_temperature(model_logits[p], temperature)
        k = min(top_k, info.d_vocab)
        top = torch.topk(probs, k)
        strs = model.to_str_tokens(top.indices)
        entropy = float(-(probs * probs.clamp_min(1e-300).log()).sum())
        ps.add(Step("probs", None, f"Softmax with temperature T = {temperature:g}: next-token probabilities",
                    r"P(t) = \frac{e^{\ell_t / T}}{\sum_{t'} e^{\ell_{t'} / T}}",
                    f"ℓ [{info.d_vocab}] / T -> P [{info.d_vocab}], Σ P = 1",
                    {"temperature T": temperature, "top probability": float(top.values[0]),
                     "entropy (nats)": entropy},
                    (Shown(f"P of the {k} most likely next tokens", _np(top.values),
                           col_labels=tuple(visible(s) for s in strs)),),
                    (Check("probabilities", f"softmax of the model's logits / {temperature:g}",
                           _diff(probs, model_probs), f"all {info.d_vocab} tokens at position {p}"),)))
        tops = tuple(TopToken(s, int(i), float(logits[p, i]), float(pr))
                     for s, i, pr in zip(strs, top.indices.tolist(), top.values.tolist()))
    return Walkthrough(model=info.name, tokens=tuple(ps.tokens), token_ids=tuple(int(t) for t in ps.ids.tolist()),
                       position=p, head=head, temperature=temperature, steps=tuple(ps.steps), top=tops)
