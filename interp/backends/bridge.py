"""The TransformerLens backend: a :class:`~interp.model.Model` over a ``TransformerBridge``.

The only module that touches a bridge. Sites are the bridge's own hook names (``Site.hook_name``); a run is one
``run_with_hooks`` call whose hooks apply the edits, keep the reads and, for ``stop_after``, end the pass by
raising as soon as that site exists (nothing after it is computed). Weights come from the bridge's stacked
``W_*`` properties, once per model.
"""
from __future__ import annotations

import copy
import dataclasses
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformer_lens.model_bridge import TransformerBridge
from transformer_lens.model_bridge.generalized_components.attention import AttentionBridge
from transformers.utils import logging as hf_logging

from interp.errors import InvalidInput, ModelUnavailable
from interp.model import Edit, Model, ModelInfo, Run, Weights, local_gradients
from interp.sites import Site


class _Stop(Exception):
    """Raised from the ``stop_after`` site's hook: the rest of the forward pass is not needed."""


class BridgeModel(Model):
    """A model loaded into TransformerLens's ``TransformerBridge`` (Hugging Face or TL-native weights)."""
    def __init__(self, bridge: Any, tokenizer: Any, info: ModelInfo) -> None:
        self._bridge = bridge
        self.tokenizer = tokenizer
        self.info = info
        self._weights: Weights | None = None
        # run_with_hooks attaches its hooks to the shared modules for the length of the pass, so two passes at
        # once (two app sessions, a background warm-up) would read each other's activations: one at a time.
        self._lock = threading.RLock()
        # Hooks the bridge gates off (hook_attn_in, hook_{q,k,v}_input, hook_mlp_in unless its use_* switch is on)
        # would refuse a hook with a ValueError: the model does not have those sites.
        gated = getattr(bridge, "_gated_hook_reason", lambda name: None)
        hooks = {n for n, hp in bridge.hook_dict.items() if gated(hp.name or n) is None}
        if info.positional != "standard":  # rotary models keep a pos_embed hook that nothing ever fills
            hooks.discard(Site("pos_embed").hook_name)
        self._hooks = frozenset(hooks - _scores_that_are_patterns(bridge))

    # ------------------------------------------------------------------ the interface

    def has(self, site: Site) -> bool:
        return site.hook_name in self._hooks

    def _forward(self, tokens: torch.Tensor, *, attention_mask: torch.Tensor | None, read: list[Site],
                 edit: dict[Site, Edit], stop_after: Site | None, grad: bool,
                 grad_of: Callable[[torch.Tensor], torch.Tensor] | None,
                 logit_positions: torch.Tensor | None) -> Run:
        keep_graph = grad or grad_of is not None
        acts: dict[Site, torch.Tensor] = {}
        mid = {s: fn for s, fn in edit.items() if s.kind == "resid_mid"}
        hooks: list[tuple[str, Callable]] = [(site.hook_name, _edit_hook(fn)) for site, fn in edit.items()
                                             if site not in mid]
        hooks += [(site.hook_name, _read_hook(acts, site, keep_graph)) for site in read]
        for site, fn in mid.items():  # after the edits and reads at attn_out: see _resid_mid_hooks
            hooks += _resid_mid_hooks(site.layer, fn)  # type: ignore[arg-type]
        if stop_after is not None:
            hooks.append((stop_after.hook_name, _stop_hook))
        if logit_positions is not None:
            hooks.append((Site("unembed_in").hook_name, _select_rows_hook(logit_positions)))
        kwargs: dict[str, Any] = {"attention_mask": attention_mask} if attention_mask is not None else {}
        logits: torch.Tensor | None
        try:
            with self._lock:
                logits = self._bridge.run_with_hooks(tokens, fwd_hooks=hooks, **kwargs) if hooks \
                    else self._bridge(tokens, **kwargs)
        except _Stop:
            logits = None
        if grad_of is not None:
            assert logits is not None
            grads, acts, logits = local_gradients(grad_of, logits, acts, keep_graph=grad)
            return Run(logits, acts, grads)
        return Run(logits, acts)

    def weights(self) -> Weights:
        if self._weights is None:
            self._weights = _bridge_weights(self._bridge, self.info)
        return self._weights

    def readout(self, resid: torch.Tensor) -> torch.Tensor:
        b = self._bridge
        ln = b.ln_final if self.info.norm is not None and hasattr(b, "ln_final") else None
        w = self.weights()
        transform = getattr(getattr(b, "adapter", None), "apply_output_logits_transform", None)
        shape = resid.shape
        flat = resid.reshape(-1, shape[-1])  # [rows, d_model]
        x = ln(flat.unsqueeze(0)).squeeze(0) if ln is not None else flat  # norms expect [batch, pos, d]
        x = x.to(w.W_U.dtype)
        logits = torch.addmm(w.b_U, x, w.W_U) if w.b_U is not None else x @ w.W_U  # [rows, d_vocab]
        logits = transform(logits) if callable(transform) else logits
        return logits.reshape(*shape[:-1], logits.shape[-1])

    def reinitialised(self, seed: int = 0) -> Model:
        bridge = copy.deepcopy(self._bridge)
        hf = getattr(bridge, "original_model", None)
        if hf is None:
            return super().reinitialised(seed)
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            for module in hf.modules():
                for name, p in list(module.named_parameters(recurse=False)):
                    if p.ndim == 1:  # norm gains 1, every bias 0
                        is_norm = "norm" in type(module).__name__.lower()
                        p.copy_(torch.ones_like(p) if is_norm and name == "weight" else torch.zeros_like(p))
                    else:
                        p.normal_(0.0, float(getattr(hf.config, "initializer_range", 0.02)))
        info = dataclasses.replace(self.info, name=f"{self.info.name} (random init, seed {seed})",
                                   sha256=f"random-init-{seed}-{self.info.sha256}")
        return BridgeModel(bridge, self.tokenizer, info)


def _scores_that_are_patterns(bridge: Any) -> set[str]:
    """Hook names of ``attn_scores`` that carry the softmaxed pattern, not the scores: the bridge's generic
    attention wrapper (e.g. around TL-native attention) fires ``hook_attn_scores`` after the wrapped module
    returns, with its attention weights. Such a model exposes no pre-softmax scores, so it has no such site."""
    out = set()
    for i, block in enumerate(getattr(bridge, "blocks", [])):
        attn = getattr(block, "attn", None)
        if (isinstance(attn, AttentionBridge) and type(attn).forward is AttentionBridge.forward
                and not getattr(attn, "requires_relative_position_bias", False)):
            out.add(Site("attn_scores", i).hook_name)
    return out


def bridge_of(model: Model) -> Any:
    """The TransformerBridge behind ``model``, for code that compares with TransformerLens's own engines (tests,
    benchmarks, :mod:`interp.engines`); InvalidInput for any other backend."""
    if not isinstance(model, BridgeModel):
        raise InvalidInput(f"This needs TransformerLens's bridge; {model.info.name} runs on the "
                           f"{model.info.backend} backend.", "Load the model with backend='bridge'.")
    return model._bridge


# ----------------------------------------------------------------------------- hooks


def _edit_hook(fn: Edit) -> Callable:
    def hook(act: torch.Tensor, hook: Any = None) -> torch.Tensor:
        out = fn(act)
        return act if out is None else out

    return hook


def _read_hook(store: dict[Site, torch.Tensor], site: Site, keep_graph: bool) -> Callable:
    def hook(act: torch.Tensor, hook: Any = None) -> torch.Tensor | None:
        if not keep_graph:
            store[site] = act.detach()
            return None
        if not act.requires_grad:  # nothing upstream needs a gradient: make this read the leaf
            act = act.detach().requires_grad_(True)
        store[site] = act
        return act

    return hook


def _resid_mid_hooks(layer: int, fn: Edit) -> list[tuple[str, Callable]]:
    """An edit of the residual stream between attention and MLP. The bridge's ``hook_resid_mid`` is the second
    norm's input, so an edit there would change only what the MLP reads, not the stream the block passes on;
    instead the attention output is replaced by ``fn(resid_pre + attn_out) - resid_pre``, which makes the stream
    (and everything that reads it) ``fn(resid_mid)``."""
    seen: dict[str, torch.Tensor] = {}

    def keep_pre(act: torch.Tensor, hook: Any = None) -> None:
        seen["pre"] = act

    def edit_attn_out(attn_out: torch.Tensor, hook: Any = None) -> torch.Tensor:
        pre = seen["pre"]
        out = fn(pre + attn_out)
        return (pre + attn_out if out is None else out) - pre

    return [(Site("resid_pre", layer).hook_name, keep_pre), (Site("attn_out", layer).hook_name, edit_attn_out)]


def _stop_hook(act: torch.Tensor, hook: Any = None) -> None:
    raise _Stop


def _select_rows_hook(positions: torch.Tensor) -> Callable:
    def hook(x: torch.Tensor, hook: Any = None) -> torch.Tensor:  # [rows, pos, d_model] -> [rows, 1, d_model]
        return x[torch.arange(x.shape[0], device=x.device), positions.to(x.device)][:, None, :]

    return hook


# ----------------------------------------------------------------------------- weights


def _optional(bridge: Any, name: str) -> torch.Tensor | None:
    try:
        w = getattr(bridge, name)
    except (AttributeError, TypeError, RuntimeError):
        return None
    return None if w is None else w.detach()


def _norm_params(module: Any) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    params = dict(module.named_parameters()) if module is not None else {}
    w = next((p.detach() for n, p in params.items() if n.endswith("weight")), None)
    b = next((p.detach() for n, p in params.items() if n.endswith("bias")), None)
    return w, b


def expand_kv(w: torch.Tensor | None, n_heads: int) -> torch.Tensor | None:
    """Grouped-query K/V weights ``[layer, n_kv_heads, ...]`` -> one entry per query head ``[layer, n_heads, ...]``
    (query head h reads KV head h // (n_heads / n_kv_heads), as Hugging Face's ``repeat_kv``)."""
    if w is None or w.shape[1] == n_heads:
        return w
    n_kv = w.shape[1]
    if n_kv == 0 or n_heads % n_kv:
        raise InvalidInput(f"{n_heads} query heads cannot share {n_kv} key/value heads evenly.")
    return w.repeat_interleave(n_heads // n_kv, dim=1)


def _stack_norms(bridge: Any, name: str, n_layers: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    pairs = [_norm_params(getattr(bridge.blocks[i], name, None)) for i in range(n_layers)]
    ws, bs = [p[0] for p in pairs], [p[1] for p in pairs]
    w = torch.stack(ws) if all(x is not None for x in ws) else None
    b = torch.stack(bs) if all(x is not None for x in bs) else None
    return w, b


def _bridge_weights(bridge: Any, info: ModelInfo) -> Weights:
    n = info.n_heads
    with torch.no_grad():
        mlp = not info.attn_only
        ln1_w, ln1_b = _stack_norms(bridge, "ln1", info.n_layers) if info.norm else (None, None)
        ln2_w, ln2_b = _stack_norms(bridge, "ln2", info.n_layers) if info.norm and mlp else (None, None)
        lnf_w, lnf_b = _norm_params(getattr(bridge, "ln_final", None)) if info.norm else (None, None)
        return Weights(
            W_E=bridge.W_E.detach(), W_pos=_optional(bridge, "W_pos") if info.positional == "standard" else None,
            W_U=bridge.W_U.detach(), b_U=_optional(bridge, "b_U"),
            W_Q=bridge.W_Q.detach(), W_K=expand_kv(bridge.W_K.detach(), n), W_V=expand_kv(bridge.W_V.detach(), n),
            W_O=bridge.W_O.detach(), b_Q=_optional(bridge, "b_Q"), b_K=expand_kv(_optional(bridge, "b_K"), n),
            b_V=expand_kv(_optional(bridge, "b_V"), n), b_O=_optional(bridge, "b_O"),
            W_in=_optional(bridge, "W_in") if mlp else None, W_gate=_optional(bridge, "W_gate") if mlp else None,
            W_out=_optional(bridge, "W_out") if mlp else None, b_in=_optional(bridge, "b_in") if mlp else None,
            b_out=_optional(bridge, "b_out") if mlp else None,
            ln1_w=ln1_w, ln1_b=ln1_b, ln2_w=ln2_w, ln2_b=ln2_b, ln_final_w=lnf_w, ln_final_b=lnf_b,
        )


# ----------------------------------------------------------------------------- booting


def _quiet_transformers() -> None:

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def boot_hf_model(path: Path, hf_model: torch.nn.Module, *, device: torch.device, dtype: torch.dtype,
                  hint: str) -> tuple[Any, Any]:
    """(bridge, tokenizer) wrapping an already loaded and checked Hugging Face causal LM from ``path``."""
    _quiet_transformers()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bridge = TransformerBridge.boot_transformers(str(path), device=str(device), dtype=dtype,
                                                         hf_model=hf_model)
    except (OSError, ValueError, KeyError, RuntimeError, NotImplementedError, TypeError, AttributeError) as e:
        raise ModelUnavailable(f"Could not load {path} as a hooked transformer: {_first_line(e)}", hint) from None
    return bridge, bridge.tokenizer


def boot_hub(name: str, *, device: torch.device, dtype: torch.dtype, hint: str) -> tuple[Any, Any, str]:
    """(bridge, tokenizer, architecture) of a Hub model downloaded by TransformerLens."""
    _quiet_transformers()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bridge = TransformerBridge.boot_transformers(name, device=str(device), dtype=dtype)
    except Exception as e:  # the Hub answers unknown names with assorted exception types
        raise ModelUnavailable(f"Could not load {name!r} from the Hugging Face Hub: {_first_line(e)}", hint) from None
    arch = (getattr(bridge.original_model.config, "architectures", None) or ["?"])[0]
    return bridge, bridge.tokenizer, arch


def parameter_count(module: torch.nn.Module) -> int:
    """Distinct parameters of ``module``, counted by the storage they live in. A ``TransformerBridge`` exposes
    GPT-2's fused ``c_attn`` weight and its q/k/v views as separate parameters, so summing ``parameters()`` counts
    the attention weights twice (code-gpt2: 3,060,096 instead of the 2,615,424 of its Hugging Face model)."""
    storages: dict[int, int] = {}
    for p in module.parameters():
        storage = p.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes() // p.element_size()
    return sum(storages.values())


def make_model(bridge: Any, tokenizer: Any, *, name: str, source: str, path: Path | None, sha256: str,
               architecture: str, device: torch.device, dtype: torch.dtype) -> BridgeModel:
    """The :class:`BridgeModel` of a booted bridge, in eval mode."""
    if tokenizer is None:
        raise ModelUnavailable(f"{name!r} loaded without a tokenizer.", "Save tokenizer files beside the weights.")
    bridge.eval()
    cfg = bridge.cfg
    attn_only = bool(getattr(cfg, "attn_only", False))
    info = ModelInfo(
        name=name, source=source, path=str(path) if path else None,  # type: ignore[arg-type]
        architecture=architecture, n_layers=int(cfg.n_layers), n_heads=int(cfg.n_heads), d_model=int(cfg.d_model),
        d_head=int(cfg.d_head), d_vocab=int(cfg.d_vocab), n_ctx=int(cfg.n_ctx), attn_only=attn_only,
        n_params=parameter_count(bridge), sha256=sha256, dtype=str(dtype).replace("torch.", ""), device=str(device),
        n_kv_heads=int(getattr(cfg, "n_key_value_heads", None) or cfg.n_heads),
        d_mlp=0 if attn_only else int(getattr(cfg, "d_mlp", None) or 0),
        norm=getattr(cfg, "normalization_type", None), eps=float(getattr(cfg, "eps", 1e-5)),
        positional=str(getattr(cfg, "positional_embedding_type", "standard")),
        act_fn=str(getattr(cfg, "act_fn", "") or ""), gated_mlp=bool(getattr(cfg, "gated_mlp", False)),
        prepend_bos=getattr(cfg, "default_prepend_bos", True) is not False, backend="bridge",
        **_rotary_fields(bridge, cfg),
    )
    return BridgeModel(bridge, tokenizer, info)


def _rotary_fields(bridge: Any, cfg: Any) -> dict[str, Any]:
    """RoPE's base, rotated dimensions, pairing and type. A Hugging Face config is the source when there is one
    (TransformerLens's bridge config keeps 10000 whatever ``rope_parameters`` say); TL-native models use cfg."""
    base, dim = float(getattr(cfg, "rotary_base", 10000.0) or 10000.0), int(getattr(cfg, "rotary_dim", 0) or 0)
    rope_type = "default"
    hf = getattr(getattr(bridge, "original_model", None), "config", None)
    params = getattr(hf, "rope_parameters", None) or {}
    if isinstance(params, dict) and params:
        base = float(params.get("rope_theta", base))
        rope_type = str(params.get("rope_type", params.get("type", "default")) or "default")
        factor = params.get("partial_rotary_factor", getattr(hf, "partial_rotary_factor", None))
        if factor:
            dim = int(int(cfg.d_head) * float(factor))
    elif hf is not None and getattr(hf, "rope_theta", None):
        base = float(hf.rope_theta)
    return {"rotary_base": base, "rotary_dim": dim, "rope_type": rope_type,
            "rotary_adjacent_pairs": bool(getattr(cfg, "rotary_adjacent_pairs", False))}


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
