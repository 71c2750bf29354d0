"""The nnsight backend: a :class:`~interp.model.Model` over any Hugging Face causal LM, run here or on NDIF.

Built on nnsight's ``TransformersModel`` (not a protocol of our own): a run is one ``model.trace`` whose body
(:func:`interp.backends.nnsight_body.run_plan`) waits for each module event in firing order, cuts the sites out
(:mod:`interp.backends.hf_sites`, the one site map), applies the edits, keeps the reads and, for ``grad_of``,
differentiates the metric inside the trace -- so the same code runs in-process (``backend="nnsight"``), through
nnsight's serialise-and-run simulation of a remote request (``remote="local"``, how the remote path is tested
offline) and on NDIF (``backend="ndif"``, see :mod:`interp.backends.ndif`). Weights and the readout come from the
Hugging Face modules; on NDIF they are fetched inside a trace when small enough, else refused in one line.
"""
from __future__ import annotations

import copy
import dataclasses
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import torch

from interp.backends import hf_sites, nnsight_body
from interp.backends.hf_sites import Layout, Recipe, Tap
from interp.errors import InvalidInput, ModelUnavailable
from interp.model import Edit, Model, ModelInfo, Run, Weights
from interp.sites import HOOK_NAMES, Site

#: How a run reaches the model: in-process, through nnsight's in-process serialisation of a remote request
#: (``"local"``: the offline test of the remote path), or on NDIF.
Remote = Literal["none", "local", "ndif"]
T = TypeVar("T")
#: Weights bigger than this (elements) are not fetched from NDIF: an analysis needing them needs a local model.
MAX_REMOTE_WEIGHT_ELEMENTS = 300_000_000
_KIND_ORDER = {kind: i for i, kind in enumerate(HOOK_NAMES)}


class NNsightModel(Model):
    """A Hugging Face causal LM wrapped in nnsight; see the module docstring."""

    def __init__(self, nn: Any, tokenizer: Any, info: ModelInfo, layout: Layout, adapter: Any, *,
                 conv: frozenset[str] = frozenset(), remote: Remote = "none", runner: Any = None) -> None:
        self._nn = nn
        self.tokenizer = tokenizer
        self.info = info
        self.layout = layout
        self._adapter = adapter
        self.remote: Remote = remote
        self._runner = runner  # NDIF: submits a trace and waits for it (interp.backends.ndif)
        self._conv = conv
        self._weights: Weights | None = None
        self._recipes: dict[Site, Recipe | None] = {}

    # ------------------------------------------------------------------ the interface

    def recipe(self, site: Site) -> Recipe | None:
        if site not in self._recipes:
            self._recipes[site] = hf_sites.recipe(self.layout, site)
        return self._recipes[site]

    def has(self, site: Site) -> bool:
        return self.recipe(site) is not None

    def with_remote(self, remote: Remote) -> NNsightModel:
        """The same model reached another way (``"local"``: every run serialised as an NDIF request would be)."""
        if self.remote == "ndif" or remote == "ndif":
            raise InvalidInput("A model is put on NDIF by load_model(name, backend='ndif').")
        out = copy.copy(self)
        out.remote = remote
        out.info = dataclasses.replace(self.info, backend="nnsight")
        return out

    def _forward(self, tokens: torch.Tensor, *, attention_mask: torch.Tensor | None, read: list[Site],
                 edit: dict[Site, Edit], stop_after: Site | None, grad: bool,
                 grad_of: Callable[[torch.Tensor], torch.Tensor] | None,
                 logit_positions: torch.Tensor | None) -> Run:
        if grad and self.remote != "none":
            raise InvalidInput("grad=True keeps an autograd graph, which cannot leave the process that ran the model.",
                               "Use grad_of=metric: the gradients are computed where the model runs.")
        steps, stop_at = self._plan(read, edit, stop_after, logit_positions)
        kwargs: dict[str, Any] = {"input_ids": tokens}
        if attention_mask is not None:
            kwargs["attention_mask"] = attention_mask
        edits = {str(s): fn for s, fn in edit.items()}
        options = dict(keep_graph=grad, put_all=grad or grad_of is not None, grad_of=grad_of,
                       positions=logit_positions, stop_at=stop_at, want_logits=stop_after is None)
        result = self._trace(kwargs, steps, edits, options)
        acts = {Site.parse(k): v for k, v in result.get("acts", {}).items()}
        grads = {Site.parse(k): v for k, v in result.get("grads", {}).items()}
        return Run(result.get("logits"), acts, grads)

    def _plan(self, read: list[Site], edit: dict[Site, Edit], stop_after: Site | None,
              positions: torch.Tensor | None) -> tuple[list, int]:
        """``(steps, stop_at)`` for :func:`nnsight_body.run_plan`: the taps to wait for, in firing order, each with
        its actions (plain data), and the index of the step after which to stop (-1: none)."""
        wanted = dict.fromkeys([*read, *edit, *([stop_after] if stop_after else [])])
        actions: dict[Tap, list[tuple[tuple[int, int], tuple]]] = {}

        def add(tap: Tap, order: tuple[int, int], action: tuple) -> None:
            held = actions.setdefault(tap, [])
            if action[0] == "site" or all(a != action for _, a in held):  # one norm_out/base per tap
                held.append((order, action))

        for site in wanted:
            r = self.recipe(site)
            assert r is not None  # Model.run required every site
            data = _recipe_data(r)
            # within one tap, in the order the model computes them (HOOK_NAMES' order, but resid_mid is the
            # attention output plus the residual, so it comes after attn_out)
            rank = (_KIND_ORDER["attn_out"], 1) if site.kind == "resid_mid" else (_KIND_ORDER[site.kind], 0)
            add(r.tap, rank, ("site", data, site in read))
            if r.put_tap is not None:
                add(r.put_tap, (len(_KIND_ORDER), 0), ("norm_out", r.put_tap.path))
            if r.base_tap is not None:  # after any resid_pre edit at the same block input
                add(r.base_tap, (_KIND_ORDER["resid_pre"], 1), ("base", r.base_tap.path))
        if positions is not None:
            add(Tap(self.layout.unembed, "input"), (len(_KIND_ORDER), 1), ("select",))
        taps = sorted(actions, key=lambda t: hf_sites.tap_rank(self.layout, t))
        steps = [(t.path, t.event, t.ops, [a for _, a in sorted(actions[t], key=lambda x: x[0])]) for t in taps]
        stop_at = -1
        if stop_after is not None:
            stop_tap = self.recipe(stop_after).tap  # type: ignore[union-attr]
            stop_at = taps.index(stop_tap)
        return steps, stop_at

    def _trace(self, kwargs: dict, steps: list, edits: dict, options: dict) -> dict:
        nn = self._nn
        run_plan = nnsight_body.run_plan
        if self.remote == "ndif":
            assert self._runner is not None
            return self._runner(kwargs, steps, edits, options)
        remote: Any = "local" if self.remote == "local" else False
        if remote:
            ship_by_value()
        try:
            with _quiet(), nn.trace(**kwargs, remote=remote) as tracer:
                result = nnsight_save({})
                run_plan(nn, tracer, steps, edits, result, **options)
        except (ValueError, TypeError, pickle.PicklingError) as e:
            raise _translated(e) from None
        return result

    def weights(self) -> Weights:
        if self._weights is None:
            self._weights = weights_from_modules(self.layout, self._parameters(), self._conv)
        return self._weights

    def _parameters(self) -> dict[str, torch.Tensor | None]:
        paths = weight_paths(self.layout)
        if self.remote == "ndif":
            assert self._runner is not None
            return self._runner.fetch_parameters(paths)  # type: ignore[attr-defined]
        module = self._nn._module
        return {p: _parameter(module, p) for p in paths}

    def readout(self, resid: torch.Tensor) -> torch.Tensor:
        if self.remote == "ndif":
            if resid.requires_grad:
                raise InvalidInput(f"Training through {self.info.name}'s final norm and unembedding (a tuned lens) "
                                   "needs a local model: on NDIF they only give numbers back, not gradients.",
                                   "Train it with --backend nnsight or bridge on a model that fits here.")
            assert self._runner is not None
            return self._runner.readout(resid)  # type: ignore[attr-defined]
        module = self._nn._module
        x = resid.to(self._dtype())
        if self.layout.ln_final is not None:
            x = module.get_submodule(self.layout.ln_final)(x)
        logits = module.get_submodule(self.layout.unembed)(x)
        transform = getattr(self._adapter, "apply_output_logits_transform", None)
        return transform(logits) if callable(transform) else logits

    def _dtype(self) -> torch.dtype:
        return getattr(torch, self.info.dtype)

    def reinitialised(self, seed: int = 0) -> Model:
        if self.remote == "ndif":
            return super().reinitialised(seed)
        hf = copy.deepcopy(self._nn._module)
        reinitialise_(hf, seed)
        info = dataclasses.replace(self.info, name=f"{self.info.name} (random init, seed {seed})",
                                   sha256=f"random-init-{seed}-{self.info.sha256}")
        nn = wrap(hf, self.tokenizer)
        return NNsightModel(nn, self.tokenizer, info, self.layout, self._adapter, conv=self._conv, remote=self.remote)


    def __getstate__(self) -> dict:
        """A model that travels inside a remote request arrives as :meth:`in_session` makes it."""
        state = dict(self.__dict__)
        state.update(remote="none", _runner=None, _adapter=None, _weights=None)
        return state

    def watch(self, *, progress: Any = None, should_stop: Callable[[], bool] | None = None) -> None:
        """Report NDIF requests' status (queued, running...) through ``progress(fraction, message)`` and stop waiting
        when ``should_stop()`` (a no-op for a model run here)."""
        if self._runner is not None:
            self._runner.progress, self._runner.should_stop = progress, should_stop

    def in_session(self) -> NNsightModel:
        """This model as the runs inside one remote session see it: plain traces, where the model is (and nothing
        that cannot travel to NDIF: no TransformerLens adapter, no runner)."""
        inner = copy.copy(self)
        inner.remote, inner._runner, inner._adapter = "none", None, None
        inner._recipes = dict(self._recipes)
        return inner

    def batched(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self.remote == "none":
            return fn(self, *args, **kwargs)
        if self.remote == "ndif":
            assert self._runner is not None
            return self._runner.call(self, fn, args, kwargs)
        kwargs.pop("progress", None), kwargs.pop("should_stop", None)
        ship_by_value()
        nn, inner = self._nn, self.in_session()
        try:
            with _quiet(), nn.session(remote="local"):
                out = nnsight_save([])
                out.append(fn(inner, *args, **kwargs))
        except (ValueError, TypeError, pickle.PicklingError) as e:
            raise _translated(e) from None
        return out[0]


def ship_by_value() -> None:
    """Code a remote request may call that NDIF does not have travels as source: TransformerLens's patch setters
    (:mod:`interp.engines` re-exports them; the server has no TransformerLens). The workbench's own packages are
    registered by nnsight itself (everything imported from the working tree)."""
    from nnsight import register

    register("transformer_lens.patching")


def nnsight_save(value: T) -> T:
    import nnsight

    return nnsight.save(value)


def _translated(e: Exception) -> Exception:
    """A check of the trace body (``MARK``) or a request that cannot be serialised, as InvalidInput; else ``e``."""
    text = str(e)
    if text.startswith(nnsight_body.MARK):
        return InvalidInput(text[len(nnsight_body.MARK):])
    if unsendable(e):
        return InvalidInput(f"An edit or metric holds something that cannot be sent with a request ({text[:120]}).",
                            "Use tensors, numbers and plain functions in edits and metrics.")
    return e


def unsendable(e: BaseException) -> bool:
    """Whether ``e`` is pickle refusing an object (a lock, a generator, an open file...) in a request."""
    return isinstance(e, pickle.PicklingError) or isinstance(e, TypeError) and str(e).startswith(
        ("cannot pickle", "can't pickle", "Can't pickle"))


class _quiet(warnings.catch_warnings):  # noqa: N801 (used like a function)
    """Libraries' warnings silenced for a block (a class, not a @contextmanager: this runs on NDIF too, where a
    function shipped as source loses its decorator)."""

    def __enter__(self) -> None:
        warnings.catch_warnings.__enter__(self)  # not super(): a class rebuilt from source has no __class__ cell
        warnings.simplefilter("ignore")


def _recipe_data(r: Recipe) -> dict:
    """A recipe as the plain dict :func:`nnsight_body.run_plan` reads (nothing of ours crosses to NDIF)."""
    return {"key": r.key, "view": r.view, "index": r.index, "heads": r.heads, "d_head": r.d_head,
            "norm": r.norm, "eps": r.eps, "put": r.put_tap.path if r.put_tap else None,
            "base": r.base_tap.path if r.base_tap else None}


# ----------------------------------------------------------------------------- weights


def weight_paths(layout: Layout) -> list[str]:
    """Every parameter path the :class:`Weights` layout is built from (absent ones are looked up and skipped)."""
    paths = [f"{layout.embed}.weight", f"{layout.unembed}.weight", f"{layout.unembed}.bias"]
    if layout.pos_embed:
        paths.append(f"{layout.pos_embed}.weight")
    if layout.ln_final:
        paths += [f"{layout.ln_final}.weight", f"{layout.ln_final}.bias"]
    for b in range(layout.n_layers):
        attn = layout.block(b, layout.attn)
        mods = [f"{attn}.{m}" for m in (layout.qkv, layout.q, layout.k, layout.v, layout.o) if m]
        mods += [layout.block(b, m) for m in (layout.ln1, layout.ln2) if m]
        if layout.mlp:
            mlp = layout.block(b, layout.mlp)
            mods += [f"{mlp}.{m}" for m in (layout.mlp_in, layout.mlp_gate, layout.mlp_out) if m]
        paths += [f"{m}.{p}" for m in mods for p in ("weight", "bias")]
    return paths


def _parameter(module: torch.nn.Module, path: str) -> torch.Tensor | None:
    owner, _, name = path.rpartition(".")
    try:
        p = getattr(module.get_submodule(owner), name, None)
    except AttributeError:
        return None
    return p.detach() if isinstance(p, torch.Tensor) else None


def conv1d_paths(module: torch.nn.Module) -> frozenset[str]:
    """Paths of the modules that store a linear map as ``[in, out]`` (Hugging Face's Conv1D, GPT-2's layers);
    ``nn.Linear`` stores ``[out, in]``."""
    return frozenset(p for p, m in module.named_modules() if type(m).__name__ == "Conv1D")


def weights_from_modules(layout: Layout, params: dict[str, torch.Tensor | None], conv: frozenset[str]) -> Weights:
    """The :class:`Weights` layout (K/V expanded to query heads) from Hugging Face parameters; ``conv``: the
    modules among them that store ``[in, out]`` (:func:`conv1d_paths`)."""
    from interp.backends.bridge import expand_kv

    L, H, D = layout, layout.n_heads, layout.d_head
    get = params.get
    W_E = get(f"{L.embed}.weight")
    assert W_E is not None
    d_model = W_E.shape[1]
    W_U_raw = get(f"{L.unembed}.weight")
    W_U = W_E.T if W_U_raw is None else (W_U_raw.T if W_U_raw.shape[-1] == d_model else W_U_raw)

    def lin(path: str) -> tuple[torch.Tensor, torch.Tensor | None]:  # weight as [in, out], bias
        w, b = get(f"{path}.weight"), get(f"{path}.bias")
        assert w is not None, path
        return (w if path in conv else w.T), b

    def heads_in(w: torch.Tensor, n: int) -> torch.Tensor:  # [d_model, n * d_head] -> [n, d_model, d_head]
        return w.reshape(w.shape[0], n, D).permute(1, 0, 2)

    wq, wk, wv, wo, bq, bk, bv, bo = [], [], [], [], [], [], [], []
    w_in, w_gate, w_out, b_in, b_out = [], [], [], [], []
    ln1w, ln1b, ln2w, ln2b = [], [], [], []
    for b in range(L.n_layers):
        attn = L.block(b, L.attn)
        if L.qkv:
            w, bias = lin(f"{attn}.{L.qkv}")
            q, k, v = w.split(H * D, dim=1)
            parts_b = bias.split(H * D) if bias is not None else (None, None, None)
            kv = H
        else:
            (q, qb), (k, kb), (v, vb) = (lin(f"{attn}.{m}") for m in (L.q, L.k, L.v))  # type: ignore
            parts_b = (qb, kb, vb)
            kv = L.n_kv_heads
        wq.append(heads_in(q, H))
        wk.append(heads_in(k, kv))
        wv.append(heads_in(v, kv))
        bq.append(None if parts_b[0] is None else parts_b[0].reshape(H, D))
        bk.append(None if parts_b[1] is None else parts_b[1].reshape(kv, D))
        bv.append(None if parts_b[2] is None else parts_b[2].reshape(kv, D))
        o, ob = lin(f"{attn}.{L.o}")
        wo.append(o.reshape(H, D, d_model))
        bo.append(ob)
        if L.mlp:
            mlp = L.block(b, L.mlp)
            if L.mlp_in:
                w, bias = lin(f"{mlp}.{L.mlp_in}")
                w_in.append(w)
                b_in.append(bias)
            if L.mlp_gate:
                w_gate.append(lin(f"{mlp}.{L.mlp_gate}")[0])
            if L.mlp_out:
                w, bias = lin(f"{mlp}.{L.mlp_out}")
                w_out.append(w)
                b_out.append(bias)
        for rel, ws, bs in ((L.ln1, ln1w, ln1b), (L.ln2, ln2w, ln2b)):
            if rel:
                ws.append(get(f"{L.block(b, rel)}.weight"))
                bs.append(get(f"{L.block(b, rel)}.bias"))

    def stack(xs: list) -> torch.Tensor | None:
        return torch.stack(xs) if xs and all(x is not None for x in xs) else None

    with torch.no_grad():
        return Weights(
            W_E=W_E, W_pos=get(f"{L.pos_embed}.weight") if L.pos_embed else None, W_U=W_U,
            b_U=get(f"{L.unembed}.bias"), W_Q=torch.stack(wq), W_K=expand_kv(torch.stack(wk), H),  # type: ignore
            W_V=expand_kv(torch.stack(wv), H), W_O=torch.stack(wo), b_Q=stack(bq),  # type: ignore[arg-type]
            b_K=expand_kv(stack(bk), H), b_V=expand_kv(stack(bv), H), b_O=stack(bo),
            W_in=stack(w_in), W_gate=stack(w_gate), W_out=stack(w_out), b_in=stack(b_in), b_out=stack(b_out),
            ln1_w=stack(ln1w) if L.norm else None, ln1_b=stack(ln1b) if L.norm else None,
            ln2_w=stack(ln2w) if L.norm else None, ln2_b=stack(ln2b) if L.norm else None,
            ln_final_w=get(f"{L.ln_final}.weight") if L.ln_final and L.norm else None,
            ln_final_b=get(f"{L.ln_final}.bias") if L.ln_final and L.norm else None,
        )


def reinitialise_(hf: torch.nn.Module, seed: int) -> None:
    """Fresh weights in place, as the bridge backend's ``reinitialised`` does: norm gains 1, biases 0, every
    matrix normal(0, initializer_range)."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for module in hf.modules():
            for name, p in list(module.named_parameters(recurse=False)):
                if p.ndim == 1:
                    is_norm = "norm" in type(module).__name__.lower()
                    p.copy_(torch.ones_like(p) if is_norm and name == "weight" else torch.zeros_like(p))
                else:
                    p.normal_(0.0, float(getattr(hf.config, "initializer_range", 0.02)))


# ----------------------------------------------------------------------------- booting


def wrap(hf: torch.nn.Module, tokenizer: Any) -> Any:
    """nnsight's ``TransformersModel`` around an already loaded causal LM (its own copy of the tokenizer:
    nnsight switches a causal model's tokenizer to left padding, the workbench pads on the right)."""
    from nnsight import TransformersModel

    with _quiet():
        return TransformersModel(hf, tokenizer=copy.deepcopy(tokenizer), task="text-generation")


def find_attention_ops(nn: Any, layout: Layout, ids: torch.Tensor | None, remote: Any = False) -> tuple[str | None,
                                                                                                        str | None]:
    """``(attention call, softmax inside it)``: the nnsight ``.source`` operation names where a block's attention
    function is called and where it takes the softmax (so patterns are the model's own numbers); ``(None, None)``
    when the forward has no such call (then patterns are not offered)."""
    attn = nn.get(layout.block(0, layout.attn))
    try:
        names = attn.source.names
    except Exception:  # a forward without Python source
        return None, None
    calls = [n for n in names if n.startswith("attention_interface")]
    if not calls:
        return None, None
    call = calls[-1]  # `attention_interface = ...` binds it first, the last occurrence calls it
    if ids is None:
        return call, "nn_functional_softmax_0"
    with _quiet(), nn.trace(input_ids=ids, remote=remote) as tracer:
        found = nnsight_save([])
        found.extend(getattr(attn.source, call).source.names)
        tracer.stop()
    softmax = [n for n in found if "softmax" in n]
    return call, (softmax[0] if softmax else None)


def boot_dir(path: Path, hf: torch.nn.Module, *, name: str, source: str, sha256: str, architecture: str,
             device: torch.device, dtype: torch.dtype) -> NNsightModel:
    """The :class:`NNsightModel` of a checked Hugging Face directory whose causal LM is already loaded."""
    from transformers import AutoTokenizer

    try:
        with _quiet():
            tokenizer = AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelUnavailable(f"Could not read the tokenizer in {path}: {e}",
                               "Save the tokenizer beside the model: tokenizer.save_pretrained(<dir>).") from None
    return make_model(hf, tokenizer, name=name, source=source, path=path, sha256=sha256,
                      architecture=architecture, device=device, dtype=dtype)


def mapped(hf_config: Any, name: str, dtype: torch.dtype) -> tuple[Any, Layout]:
    """(TransformerLens adapter, layout) of a Hugging Face config; ModelUnavailable when TransformerLens has no
    component mapping for its architecture."""
    try:
        adapter = hf_sites.adapter_for(hf_config, name, dtype)
        return adapter, hf_sites.layout_from_adapter(adapter)
    except (ValueError, KeyError, AttributeError, TypeError) as e:
        raise ModelUnavailable(f"The nnsight backend cannot map {name}'s modules to sites: {e}.",
                               "Use a causal LM whose architecture TransformerLens maps (GPT-2, Pythia, Llama, "
                               "Qwen2, Mistral, ...).") from None


def configured_tokenizer(tokenizer: Any, adapter: Any) -> Any:
    """The tokenizer set up as the bridge backend sets it up (padding token, BOS/EOS behaviour), so both backends
    tokenize every prompt the same way."""
    from transformer_lens.model_bridge.sources._bridge_builder import configure_tokenizer

    return configure_tokenizer(tokenizer, adapter.cfg)


def make_model(hf: torch.nn.Module, tokenizer: Any, *, name: str, source: str, path: Path | None, sha256: str,
               architecture: str, device: torch.device, dtype: torch.dtype) -> NNsightModel:
    """The :class:`NNsightModel` of a loaded and checked Hugging Face causal LM (eager attention)."""
    from interp.backends.bridge import parameter_count

    if tokenizer is None:
        raise ModelUnavailable(f"{name!r} loaded without a tokenizer.", "Save tokenizer files beside the weights.")
    adapter, layout = mapped(hf.config, name, dtype)
    tokenizer = configured_tokenizer(tokenizer, adapter)
    hf.eval()
    nn = wrap(hf, tokenizer)
    ids = torch.zeros(1, 2, dtype=torch.long, device=device)
    op, softmax = find_attention_ops(nn, layout, ids)
    order = hf_sites.event_order(hf, layout, fake=False)
    layout = dataclasses.replace(layout, attention_op=op, softmax_op=softmax, order=order)
    info = model_info(adapter.cfg, name=name, source=source, path=path, sha256=sha256, architecture=architecture,
                      n_params=parameter_count(hf), dtype=dtype, device=device, backend="nnsight")
    return NNsightModel(nn, tokenizer, info, layout, adapter, conv=conv1d_paths(hf))


def model_info(cfg: Any, *, name: str, source: str, path: Path | None, sha256: str, architecture: str,
               n_params: int, dtype: torch.dtype, device: torch.device | str, backend: str) -> ModelInfo:
    """:class:`ModelInfo` from a TransformerLens adapter config, exactly as the bridge backend fills it in."""
    attn_only = bool(getattr(cfg, "attn_only", False))
    return ModelInfo(
        name=name, source=source, path=str(path) if path else None,  # type: ignore[arg-type]
        architecture=architecture, n_layers=int(cfg.n_layers), n_heads=int(cfg.n_heads), d_model=int(cfg.d_model),
        d_head=int(cfg.d_head), d_vocab=int(cfg.d_vocab), n_ctx=int(cfg.n_ctx), attn_only=attn_only,
        n_params=n_params, sha256=sha256, dtype=str(dtype).replace("torch.", ""), device=str(device),
        n_kv_heads=int(getattr(cfg, "n_key_value_heads", None) or cfg.n_heads),
        d_mlp=0 if attn_only else int(getattr(cfg, "d_mlp", None) or 0),
        norm=getattr(cfg, "normalization_type", None), eps=float(getattr(cfg, "eps", 1e-5)),
        positional=str(getattr(cfg, "positional_embedding_type", "standard")),
        act_fn=str(getattr(cfg, "act_fn", "") or ""), gated_mlp=bool(getattr(cfg, "gated_mlp", False)),
        prepend_bos=getattr(cfg, "default_prepend_bos", True) is not False, backend=backend,  # type: ignore[arg-type]
    )
