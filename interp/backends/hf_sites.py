"""Where each :class:`~interp.sites.Site` lives in a Hugging Face module tree: the one site map of the nnsight backend.

The module names come from TransformerLens's own per-architecture component mapping (the adapter a
``TransformerBridge`` is built from: ``embed -> transformer.wte``, ``blocks.attn.o -> c_proj``...), so every
architecture the bridge supports is mapped here without a table of our own; the adapter's config also gives the
:class:`~interp.model.ModelInfo` fields, so both backends describe a model the same way. What the adapter does
not say -- which tensor of which module event *is* a site, and in what order the events fire -- is written here:

- a site is one :class:`Recipe`: the module event ("tap") it is read from, how to cut it out of that value
  (``heads`` reshape, a tuple element, a third of GPT-2's fused q/k/v...) and how to put an edited value back;
- attention scores and patterns are read inside the attention function (nnsight's ``.source`` operations:
  the softmax's input and output), so they are the model's own numbers (eager attention);
- norm sites (``ln1_scale``, ``ln1_normalized``...) are computed from the norm's input and, when edited, written
  back as ``normalized * weight + bias`` at its output; ``resid_mid`` is ``resid_pre + attn_out`` at the
  attention output (written back as a changed attention output, so both of its readers see the edit).
Tap order is measured once per model by running it with forward hooks (:func:`event_order`), because calling a
later module before an earlier one is an error in nnsight (``OutOfOrderError``).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from interp.sites import BLOCK_KINDS, Site

#: What a recipe does with its tap's value. ``id``: the value (or ``index``-th element) is the site;
#: ``heads``: ``[batch, pos, heads * d_head] -> [batch, pos, heads, d_head]``; ``expand``: broadcast over the
#: batch (GPT-2's position embedding is computed once); ``arg_heads``: argument ``index`` of an attention
#: function call, ``[batch, heads, pos, d_head]`` transposed to ``[batch, pos, heads, d_head]``; ``fused``: part
#: ``index`` of GPT-2's fused q/k/v output; ``norm_scale``/``norm_normalized``: a norm's divisor and normalized
#: input, written back at ``put_tap``; ``resid_mid``: attention output plus the block input (held from ``base_tap``).
View = Literal["id", "heads", "expand", "arg_heads", "fused", "norm_scale", "norm_normalized", "resid_mid"]
Event = Literal["input", "inputs", "output"]


@dataclass(frozen=True)
class Tap:
    """One module event an intervention waits for: ``path`` (dotted, from the root model), the event, and for an
    operation inside the module's forward, the chain of nnsight ``.source`` operation names."""

    path: str
    event: Event
    ops: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recipe:
    """How one site is read from (and written back to) the module tree; plain data, shipped to NDIF as is."""

    key: str  # str(site)
    view: View
    tap: Tap
    index: int | None = None  # tuple element (id), call argument (arg_heads), fused part (fused)
    heads: int = 0  # heads in this tensor (n_heads for q and z, n_kv_heads for k and v)
    d_head: int = 0
    put_tap: Tap | None = None  # norm sites: the norm's output, where an edited value is written
    base_tap: Tap | None = None  # resid_mid: the block input it adds the attention output to
    norm: str = ""  # "LN" (centred) or "RMS"
    eps: float = 1e-5
    weight: str | None = None  # the norm's weight/bias parameter paths (for writing an edit back)
    bias: str | None = None


@dataclass(frozen=True)
class Layout:
    """A model's module paths (from the TransformerLens adapter) and its attention operations."""

    embed: str
    pos_embed: str | None
    blocks: str  # e.g. "transformer.h": block i is f"{blocks}.{i}"
    ln1: str | None  # relative to a block
    attn: str
    qkv: str | None  # fused q/k/v projection (GPT-2's c_attn), relative to attn
    q: str | None
    k: str | None
    v: str | None
    o: str
    ln2: str | None
    mlp: str | None
    mlp_in: str | None  # relative to mlp: the linear map whose output is mlp_pre (mlp_pre_linear when gated)
    mlp_gate: str | None
    mlp_out: str | None
    ln_final: str | None
    unembed: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_head: int
    norm: str | None  # "LN" / "RMS" / None
    eps: float
    rotary: bool
    parallel: bool  # attention and MLP read the same residual (GPT-J, NeoX): there is no resid_mid
    attention_op: str | None = None  # the attention function's call in attn.forward (nnsight .source name)
    softmax_op: str | None = None  # the softmax inside it
    norm_affine: bool = True  # norms compute normalized * weight (+ bias): edits of norm sites can be written back
    order: dict[tuple[str, str], int] = field(default_factory=dict, compare=False)  # (relative path, event) -> rank

    def block(self, layer: int, rel: str | None = None) -> str:
        base = f"{self.blocks}.{layer}"
        return base if rel is None else f"{base}.{rel}"


# ----------------------------------------------------------------------------- from the TransformerLens adapter


def adapter_for(hf_config: Any, name: str, dtype: torch.dtype) -> Any:
    """TransformerLens's architecture adapter for a Hugging Face config (ValueError for an unsupported one)."""
    from transformer_lens.factories.architecture_adapter_factory import ArchitectureAdapterFactory
    from transformer_lens.model_bridge.sources._bridge_builder import build_bridge_config_from_hf

    archs = getattr(hf_config, "architectures", None) or []
    if not archs:
        raise ValueError("its config.json names no architecture")
    cfg = build_bridge_config_from_hf(hf_config, archs[0], name, dtype)
    return ArchitectureAdapterFactory.select_architecture_adapter(cfg)


def _name(component: Any) -> str | None:
    return None if component is None else getattr(component, "name", None)


def _sub(component: Any, key: str) -> Any:
    return (getattr(component, "submodules", None) or {}).get(key)


def layout_from_adapter(adapter: Any) -> Layout:
    """The module paths of every component the adapter maps, and the shape facts a recipe needs."""
    cm = adapter.component_mapping
    cfg = adapter.cfg
    blocks = cm.get("blocks")
    attn, mlp = _sub(blocks, "attn"), _sub(blocks, "mlp")
    if blocks is None or attn is None or cm.get("embed") is None or cm.get("unembed") is None:
        raise ValueError("TransformerLens maps no embedding, attention blocks and unembedding for it")
    n_heads = int(cfg.n_heads)
    norm = getattr(cfg, "normalization_type", None)
    fused = _sub(attn, "qkv") is not None
    return Layout(
        embed=_name(cm["embed"]), pos_embed=_name(cm.get("pos_embed")), blocks=_name(blocks),
        ln1=_name(_sub(blocks, "ln1")), attn=_name(attn), qkv=_name(_sub(attn, "qkv")),
        q=None if fused else _name(_sub(attn, "q")), k=None if fused else _name(_sub(attn, "k")),
        v=None if fused else _name(_sub(attn, "v")), o=_name(_sub(attn, "o")),
        ln2=_name(_sub(blocks, "ln2")), mlp=_name(mlp), mlp_in=_name(_sub(mlp, "in")),
        mlp_gate=_name(_sub(mlp, "gate")),
        mlp_out=_name(_sub(mlp, "out")), ln_final=_name(cm.get("ln_final")), unembed=_name(cm["unembed"]),
        n_layers=int(cfg.n_layers), n_heads=n_heads, n_kv_heads=int(getattr(cfg, "n_key_value_heads", None) or n_heads),
        d_head=int(cfg.d_head), norm=None if norm is None else str(norm).replace("Pre", ""),
        eps=float(getattr(cfg, "eps", 1e-5)),
        rotary=str(getattr(cfg, "positional_embedding_type", "standard")) == "rotary",
        parallel=bool(getattr(cfg, "parallel_attn_mlp", False)),
    )


# ----------------------------------------------------------------------------- event order


def event_order(module: torch.nn.Module, layout: Layout, *, fake: bool) -> dict[tuple[str, str], int]:
    """``(path relative to block 0 or to the model, "input"/"output") -> rank`` in one forward pass of ``module``
    (a one-token input; ``fake``: on a meta-device model, under FakeTensorMode, so nothing is computed)."""
    seen: list[tuple[str, str]] = []
    handles = []
    block0 = layout.block(0)
    for path, mod in module.named_modules():
        if path.startswith(f"{layout.blocks}.") and not (path == block0 or path.startswith(block0 + ".")):
            continue
        rel = path[len(block0) + 1:] if path.startswith(block0 + ".") else ("" if path == block0 else f"/{path}")
        handles.append(mod.register_forward_pre_hook(lambda m, a, rel=rel: seen.append((rel, "input"))))
        handles.append(mod.register_forward_hook(lambda m, a, o, rel=rel: seen.append((rel, "output"))))
    ids = torch.zeros(1, 2, dtype=torch.long)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.no_grad())
            if fake:
                from torch._subclasses.fake_tensor import FakeTensorMode

                stack.enter_context(FakeTensorMode(allow_non_fake_inputs=True))
            module(input_ids=ids)
    finally:
        for h in handles:
            h.remove()
    order: dict[tuple[str, str], int] = {}
    for rank, ev in enumerate(seen):
        order.setdefault(ev, rank)
    if layout.o and (f"{layout.attn}.{layout.o}", "input") in order:  # the attention function runs just before o
        o_in = order[(f"{layout.attn}.{layout.o}", "input")]
        order = {k: (2 * v if v < o_in else 2 * v + 8) for k, v in order.items()}
        for i, ev in enumerate(("op:inputs", "op:softmax:input", "op:softmax:output")):
            order[(layout.attn, ev)] = 2 * o_in + 1 + i
    return order


def tap_rank(layout: Layout, tap: Tap) -> tuple[int, int]:
    """Sort key of a tap: (layer, rank in the measured order); model-level taps before (embeddings) or after
    (final norm, unembedding) every block, as they fire."""
    blocks = layout.blocks + "."
    if tap.path.startswith(blocks):
        rest = tap.path[len(blocks):]
        layer_s, _, rel = rest.partition(".")
        event = "input" if tap.event == "inputs" else tap.event
        if len(tap.ops) == 1:
            event = "op:inputs"
        elif len(tap.ops) == 2:
            event = f"op:softmax:{tap.event}"
        rank = layout.order.get((rel, event))
        if rank is None:
            raise KeyError(f"{tap} never fires in a forward pass")
        return int(layer_s), rank
    rank = layout.order.get((f"/{tap.path}", "input" if tap.event == "inputs" else tap.event))
    if rank is None:
        raise KeyError(f"{tap} never fires in a forward pass")
    first_block = layout.order.get(("", "input"), 0)
    return (-1 if rank < first_block else layout.n_layers), rank


# ----------------------------------------------------------------------------- recipes


def recipe(layout: Layout, site: Site) -> Recipe | None:
    """The recipe of ``site`` on this layout; None when the model has no such place (or it cannot be reached)."""
    kind, key = site.kind, str(site)
    L = layout
    if kind in BLOCK_KINDS:
        assert site.layer is not None
        if site.layer >= L.n_layers:
            return None
        b = site.layer
        blk, attn = L.block(b), L.block(b, L.attn)
        if kind == "resid_pre":
            return Recipe(key, "id", Tap(blk, "input"))
        if kind == "resid_post":
            return Recipe(key, "id", Tap(blk, "output"), index=0)
        if kind == "attn_out":
            return Recipe(key, "id", Tap(attn, "output"), index=0)
        if kind == "resid_mid":
            if L.parallel:
                return None
            return Recipe(key, "resid_mid", Tap(attn, "output"), index=0, base_tap=Tap(blk, "input"))
        if kind in ("ln1_scale", "ln1_normalized", "ln2_scale", "ln2_normalized"):
            rel = L.ln1 if kind.startswith("ln1") else L.ln2
            if rel is None or L.norm is None:
                return None
            return _norm_recipe(L, key, kind.endswith("scale"), L.block(b, rel))
        if kind in ("q", "k", "v"):
            heads = L.n_heads if kind == "q" else L.n_kv_heads
            if L.qkv is not None:
                if L.n_kv_heads != L.n_heads:
                    return None
                return Recipe(key, "fused", Tap(f"{attn}.{L.qkv}", "output"), index="qkv".index(kind), heads=heads,
                              d_head=L.d_head)
            rel = {"q": L.q, "k": L.k, "v": L.v}[kind]
            return None if rel is None else Recipe(key, "heads", Tap(f"{attn}.{rel}", "output"), heads=heads,
                                                   d_head=L.d_head)
        if kind in ("rot_q", "rot_k"):
            if not L.rotary or L.attention_op is None:
                return None
            heads = L.n_heads if kind == "rot_q" else L.n_kv_heads
            return Recipe(key, "arg_heads", Tap(attn, "inputs", (L.attention_op,)), index=1 if kind == "rot_q" else 2,
                          heads=heads, d_head=L.d_head)
        if kind in ("attn_scores", "pattern"):
            if L.attention_op is None or L.softmax_op is None:
                return None
            return Recipe(key, "id", Tap(attn, "input" if kind == "attn_scores" else "output",
                                         (L.attention_op, L.softmax_op)))
        if kind == "z":
            return Recipe(key, "heads", Tap(f"{attn}.{L.o}", "input"), heads=L.n_heads, d_head=L.d_head)
        if L.mlp is None:
            return None
        mlp = L.block(b, L.mlp)
        if kind == "mlp_out":
            return Recipe(key, "id", Tap(mlp, "output"), index=0)
        if kind == "mlp_pre":
            rel = L.mlp_gate or L.mlp_in
            return None if rel is None else Recipe(key, "id", Tap(f"{mlp}.{rel}", "output"))
        if kind == "mlp_pre_linear":
            return None if L.mlp_gate is None or L.mlp_in is None else Recipe(key, "id", Tap(f"{mlp}.{L.mlp_in}",
                                                                                               "output"))
        if kind == "mlp_post":
            return None if L.mlp_out is None else Recipe(key, "id", Tap(f"{mlp}.{L.mlp_out}", "input"))
        return None  # attn_in, q/k/v_input, mlp_in: TransformerLens-only copies of the residual stream
    if kind == "embed":
        return Recipe(key, "id", Tap(L.embed, "output"))
    if kind == "pos_embed":
        return None if L.pos_embed is None else Recipe(key, "expand", Tap(L.pos_embed, "output"))
    if kind in ("final_scale", "final_normalized"):
        if L.ln_final is None or L.norm is None:
            return None
        return _norm_recipe(L, key, kind == "final_scale", L.ln_final)
    if kind == "unembed_in":
        return Recipe(key, "id", Tap(L.unembed, "input"))
    if kind == "logits":
        return Recipe(key, "id", Tap(L.unembed, "output"))
    return None


def _norm_recipe(layout: Layout, key: str, scale: bool, path: str) -> Recipe:
    return Recipe(key, "norm_scale" if scale else "norm_normalized", Tap(path, "input"), put_tap=Tap(path, "output"),
                  norm=layout.norm or "LN", eps=layout.eps, weight=f"{path}.weight",
                  bias=f"{path}.bias" if layout.norm == "LN" else None)
