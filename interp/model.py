"""The one door to a model: what every analysis, trainer, page and benchmark calls.

In the spirit of the LM Transparency Tool's ``TransparentLlm``: a :class:`Model` tokenizes, runs with reads and
edits at :class:`~interp.sites.Site` s (optionally with gradients), hands out its weights in one layout, and
decodes a residual vector through its final norm and unembedding. Backends (``interp/backends/``) implement the
four abstract methods; the checks live here, once, so every backend and every route validates the same way.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch

from interp import validate
from interp.errors import InvalidInput
from interp.sites import Site, SiteKind, parse_sites, sites
from interp.tokens import Prompts, TokenBatch, check_batch, tokenize
from interp.types import Head, ModelSource

Backend = Literal["bridge", "nnsight", "ndif", "torch"]  # "torch": a plain-PyTorch implementation (tests)
#: What ``load_model(backend=...)`` accepts: TransformerLens's bridge (default), nnsight in this process, or
#: nnsight on NDIF's servers (Hub models NDIF hosts).
LoadBackend = Literal["bridge", "nnsight", "ndif"]
NormKind = Literal["LN", "LNPre", "RMS", "RMSPre"]  # None in ModelInfo.norm: no normalisation at all
#: An edit replaces an activation: ``fn(activation) -> activation`` of the same shape (or returns it changed in
#: place). It sees the value after earlier edits at the same site.
Edit = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ModelInfo:
    """Plain metadata of a loaded model, JSON-serialisable (results and the app show it)."""

    name: str  # what the user asked for: bundled name, hub name, or directory
    source: ModelSource
    path: str | None  # directory the weights came from (hub: the cache snapshot), if any
    architecture: str  # e.g. "GPT2LMHeadModel", "TransformerLensNative"
    n_layers: int
    n_heads: int
    d_model: int
    d_head: int
    d_vocab: int
    n_ctx: int
    attn_only: bool
    n_params: int
    sha256: str  # of the weights file(s), in sorted filename order
    dtype: str
    device: str
    n_kv_heads: int = 0  # key/value heads per layer (grouped-query attention: fewer than n_heads); 0 = n_heads
    d_mlp: int = 0  # 0 for attention-only models
    norm: NormKind | None = "LN"
    eps: float = 1e-5  # the norms' epsilon
    positional: str = "standard"  # "standard" (learned), "rotary", ...
    act_fn: str = ""
    gated_mlp: bool = False
    rotary_base: float = 10000.0  # RoPE's base (positional "rotary"): pair i turns by position * base^(-2i/dim)
    rotary_dim: int = 0  # dimensions of each head RoPE turns; 0 = all of d_head
    rotary_adjacent_pairs: bool = False  # RoPE turns pairs (0, 1), (2, 3)... (GPT-J), not (i, i + dim/2) (Llama)
    rope_type: str = "default"  # Hugging Face's rope_type: "default" is the plain formula; others rescale it
    prepend_bos: bool = True  # prompts start with BOS (False: e.g. grokking-p113's [a, b, =])
    backend: Backend = "bridge"

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Weights:
    """Every weight an analysis reads, in one layout for every backend (float32 or the model's dtype, detached).

    K/V weights are expanded to one entry per *query* head (grouped-query attention: query head h reads KV head
    h // (n_heads / n_kv_heads), as Hugging Face's ``repeat_kv``). Absent pieces are None (no bias, no learned
    positions, no MLP).
    """

    W_E: torch.Tensor  # [d_vocab, d_model]
    W_pos: torch.Tensor | None  # [n_ctx, d_model]
    W_U: torch.Tensor  # [d_model, d_vocab]
    b_U: torch.Tensor | None  # [d_vocab]
    W_Q: torch.Tensor  # [layer, head, d_model, d_head]
    W_K: torch.Tensor  # [layer, head, d_model, d_head]
    W_V: torch.Tensor  # [layer, head, d_model, d_head]
    W_O: torch.Tensor  # [layer, head, d_head, d_model]
    b_Q: torch.Tensor | None = None  # [layer, head, d_head]
    b_K: torch.Tensor | None = None
    b_V: torch.Tensor | None = None
    b_O: torch.Tensor | None = None  # [layer, d_model]
    W_in: torch.Tensor | None = None  # [layer, d_model, d_mlp]
    W_gate: torch.Tensor | None = None  # [layer, d_model, d_mlp] gated MLPs (SwiGLU)
    W_out: torch.Tensor | None = None  # [layer, d_mlp, d_model]
    b_in: torch.Tensor | None = None  # [layer, d_mlp]
    b_out: torch.Tensor | None = None  # [layer, d_model]
    ln1_w: torch.Tensor | None = None  # [layer, d_model] norm gains and biases
    ln1_b: torch.Tensor | None = None
    ln2_w: torch.Tensor | None = None
    ln2_b: torch.Tensor | None = None
    ln_final_w: torch.Tensor | None = None  # [d_model]
    ln_final_b: torch.Tensor | None = None

    def check_finite(self, model: str, *names: str) -> None:
        """InvalidInput when one of the named weights holds NaN or infinite values."""
        for name in names:
            w = getattr(self, name)
            if w is not None and not bool(torch.isfinite(w).all()):
                raise InvalidInput(f"{model}'s {name} holds NaN or infinite values; what is computed from it is "
                                   "undefined.", "Use an earlier checkpoint or retrain with a lower learning rate.")


@dataclass
class Run:
    """What :meth:`Model.run` returns: the logits (None when the run stopped early), the activations read (after
    any edits at the same site) and, with ``grad_of``, the gradient of that scalar at each site read."""

    logits: torch.Tensor | None  # [batch, pos, d_vocab] ([batch, 1, d_vocab] with logit_positions)
    acts: dict[Site, torch.Tensor] = field(default_factory=dict)
    grads: dict[Site, torch.Tensor] = field(default_factory=dict)
    batch: TokenBatch | None = None  # the tokens that were run (set by Model.run)

    @property
    def tokens(self) -> torch.Tensor:  # [batch, pos]
        assert self.batch is not None
        return self.batch.tokens

    def __getitem__(self, site: Site | str) -> torch.Tensor:
        key = Site.parse(site)
        if key not in self.acts:
            raise InvalidInput(f"{key} was not read in this run; read: {', '.join(map(str, self.acts)) or 'none'}.")
        return self.acts[key]

    def __contains__(self, site: Site | str) -> bool:
        return Site.parse(site) in self.acts

    def stack(self, kind: SiteKind, layers: Iterable[int]) -> torch.Tensor:
        """``[layer, ...]``: the activations of one kind at the given layers, stacked."""
        return torch.stack([self[Site(kind, layer)] for layer in layers])


class Model(ABC):
    """A loaded model behind one interface; see the module docstring. Subclasses are the backends."""

    info: ModelInfo
    tokenizer: Any  # a Hugging Face tokenizer

    # ------------------------------------------------------------------ what a backend implements

    @abstractmethod
    def has(self, site: Site) -> bool:
        """Whether this model exposes ``site`` (attention-only models have no MLP sites, rotary ones no pos_embed)."""

    @abstractmethod
    def _forward(self, tokens: torch.Tensor, *, attention_mask: torch.Tensor | None, read: list[Site],
                 edit: dict[Site, Edit], stop_after: Site | None, grad: bool,
                 grad_of: Callable[[torch.Tensor], torch.Tensor] | None,
                 logit_positions: torch.Tensor | None) -> Run:
        """One forward pass on validated inputs -> a :class:`Run` (its ``batch`` is filled in by :meth:`run`).
        Read activations are detached unless ``grad``; with ``grad_of``, ``Run.grads`` holds d metric / d site for
        every read site (local backends: :func:`local_gradients`)."""

    @abstractmethod
    def weights(self) -> Weights:
        """All weights in the :class:`Weights` layout (computed once, then cached by the backend)."""

    @abstractmethod
    def readout(self, resid: torch.Tensor) -> torch.Tensor:
        """``resid [..., d_model] -> logits [..., d_vocab]`` through the final norm and the unembedding, exactly as
        the model decodes its last residual stream; differentiable in ``resid`` (the weights are frozen)."""

    def reinitialised(self, seed: int = 0) -> Model:
        """A copy with the same architecture and freshly initialised weights (Li et al.'s random baseline)."""
        raise InvalidInput(f"The {self.info.backend} backend cannot re-initialise {self.info.name}.",
                           "Load the model locally (bridge backend) for a random-weights baseline.")

    def batched(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(self, *args, **kwargs)``: an analysis made of many runs. A remote backend sends it whole as ONE
        request (every run inside happens where the model is; ``progress``/``should_stop`` in ``kwargs`` stay
        here and watch that request); in-process backends just call it. ``fn`` returns plain data (tensors,
        numbers, strings and containers of them): that is what a remote request can send back."""
        return fn(self, *args, **kwargs)

    # ------------------------------------------------------------------ shared by every backend

    @property
    def device(self) -> torch.device:
        return torch.device(self.info.device)

    @property
    def bos_token_id(self) -> int | None:
        """The BOS prepended to prompts; None for a model saved without one (grokking-p113's inputs are exactly
        [a, b, =]: a BOS would be invented from the unknown token)."""
        return self.tokenizer.bos_token_id if self.info.prepend_bos else None

    def check_layer(self, layer: Any) -> int:
        """``layer`` as an int if it names a block of this model (Python/numpy/torch integer), else InvalidInput."""
        return validate.layer_index(layer, self.info.n_layers, self.info.name)

    def check_head(self, layer: Any, head: Any) -> Head:
        """``Head(layer, head)`` if valid (a tuple of ints), else InvalidInput naming the valid range."""
        return Head(*validate.head_index(layer, head, self.info.n_layers, self.info.n_heads, self.info.name))

    def tokenize(self, prompts: Prompts | TokenBatch, *, prepend_bos: bool = True,
                 truncate: bool = False) -> TokenBatch:
        """Prompts (text, texts, or a token tensor) as a right-padded :class:`TokenBatch`; see :func:`tokenize`. A
        TokenBatch given as is is checked (ids in the vocabulary, lengths 1..width, one per row)."""
        if isinstance(prompts, TokenBatch):
            return check_batch(prompts, self.info.d_vocab, self.info.n_ctx, self.info.name)
        return tokenize(self, prompts, prepend_bos=prepend_bos, truncate=truncate)

    def to_str_tokens(self, tokens: torch.Tensor) -> list[str]:
        """Readable strings for a 1-D token tensor (one string per token)."""
        return [self.tokenizer.decode([int(t)]) for t in tokens.reshape(-1).tolist()]

    def sites(self, kind: SiteKind, layers: Iterable[int] | int | None = None) -> list[Site]:
        """Sites of one kind at the given layers (default: every block), each checked with :meth:`require`."""
        if layers is None:
            layers = range(self.info.n_layers)
        else:
            layers = [self.check_layer(v) for v in validate.scalar_or_list(layers)]
        out = sites(kind, layers)
        for site in out:
            self.require(site)
        return out

    def require(self, site: Site | str) -> Site:
        """``site`` as a Site if this model has it; else InvalidInput saying why (no MLP, no attention, ...)."""
        site = Site.parse(site)
        if site.layer is not None and site.layer >= self.info.n_layers:
            raise InvalidInput(f"{site} does not exist: {self.info.name} has layers 0..{self.info.n_layers - 1}.")
        if self.has(site):
            return site
        if self.info.attn_only and site.kind.startswith(("mlp", "ln2", "resid_mid")):
            why = f"{self.info.name} is attention-only: it has no {site.kind} site."
        elif site.kind in ("pattern", "attn_scores", "q", "k", "v", "z"):
            why = (f"{self.info.name} has no attention-pattern hooks ({site} is missing): it is not an attention "
                   "transformer (e.g. a state-space model such as Mamba).")
        else:
            why = f"{self.info.name} has no site {site} (its architecture lacks it, or this backend cannot reach it)."
        raise InvalidInput(why)

    def run(self, prompts: Prompts | TokenBatch, *, read: Iterable[Site | str] | Site | str = (),
            edit: Mapping[Site | str, Edit] | None = None, stop_after: Site | str | None = None,
            grad: bool = False, grad_of: Callable[[torch.Tensor], torch.Tensor] | None = None,
            logit_positions: torch.Tensor | None = None, prepend_bos: bool = True,
            truncate: bool = False) -> Run:
        """One forward pass reading ``read``, applying ``edit`` and optionally stopping after ``stop_after``.

        - ``grad=True``: autograd stays on and the read activations stay in the graph (local backends only).
        - ``grad_of=metric``: ``metric(logits) -> scalar`` is differentiated with respect to every read site
          (``Run.grads``); the way gradient analyses work on every backend, remote ones included.
        - ``logit_positions`` ``[batch]``: unembed only that position of each row (logits ``[batch, 1, vocab]``):
          the same numbers there, much less work for large vocabularies.
        Padded batches pass an attention mask, so padding never changes real positions' activations.
        """
        batch = self.tokenize(prompts, prepend_bos=prepend_bos, truncate=truncate)
        reads = [self.require(s) for s in parse_sites(read)]
        edits = {self.require(s): fn for s, fn in (edit or {}).items()}
        for site, fn in edits.items():
            if not callable(fn):
                raise InvalidInput(f"The edit at {site} is not a function of the activation.")
        stop = self.require(stop_after) if stop_after is not None else None
        if stop is not None and grad_of is not None:
            raise InvalidInput("A run that stops early has no logits to differentiate (grad_of with stop_after).")
        if logit_positions is not None:
            logit_positions = torch.as_tensor(logit_positions, device=batch.tokens.device).long().reshape(-1)
            if logit_positions.shape[0] != batch.tokens.shape[0]:
                raise InvalidInput(f"{logit_positions.shape[0]} logit positions for {batch.tokens.shape[0]} rows.")
            if bool(((logit_positions < 0) | (logit_positions >= batch.lengths)).any()):
                raise InvalidInput("A logit position lies outside its row's tokens.")
        mask = batch.attention_mask if batch.padded else None
        with torch.set_grad_enabled(grad or grad_of is not None):
            out = self._forward(batch.tokens, attention_mask=mask, read=reads, edit=edits, stop_after=stop,
                                grad=grad, grad_of=grad_of, logit_positions=logit_positions)
        out.batch = batch
        return out

    def activations(self, prompts: Prompts | TokenBatch, site: Site | str) -> torch.Tensor:
        """One site's activation ``[batch, pos, ...]`` (float32), the forward pass stopped as soon as it exists (an
        SAE trainer reads ``blocks.2.hook_resid_pre`` at the cost of the embedding and two blocks)."""
        site = Site.parse(site)
        return self.run(prompts, read=[site], stop_after=site).acts[site].to(torch.float32)

    def logits(self, prompts: Prompts | TokenBatch, **kw: Any) -> torch.Tensor:
        """``[batch, pos, d_vocab]`` of a plain no-grad forward pass."""
        out = self.run(prompts, **kw).logits
        assert out is not None
        return out

    def __repr__(self) -> str:
        i = self.info
        return (f"{type(self).__name__}({i.name!r}, {i.n_layers} layers x {i.n_heads} heads, d_model {i.d_model}, "
                f"backend {i.backend})")


def local_gradients(metric_fn: Callable[[torch.Tensor], torch.Tensor], logits: torch.Tensor,
                    acts: dict[Site, torch.Tensor], keep_graph: bool) -> tuple[dict[Site, torch.Tensor],
                                                                                 dict[Site, torch.Tensor],
                                                                                 torch.Tensor]:
    """``(grads, acts, logits)`` for an in-process backend: d metric(logits) / d activation at every read site,
    computed by autograd on the graph of the forward pass that produced ``acts`` (detached unless ``keep_graph``)."""
    metric = metric_fn(logits)
    if not isinstance(metric, torch.Tensor) or metric.ndim != 0:
        raise InvalidInput("grad_of must return one number (a 0-d tensor), e.g. a mean over the batch.")
    if not metric.requires_grad:
        raise InvalidInput("grad_of's number does not depend on the logits (was it detached?), so it has no gradient.")
    order = list(acts)
    found = torch.autograd.grad(metric, [acts[s] for s in order], allow_unused=True, retain_graph=keep_graph)
    grads: dict[Site, torch.Tensor] = {}
    for site, g in zip(order, found):
        if g is None:
            raise InvalidInput(f"No gradient reached {site}: the metric does not depend on it.")
        grads[site] = g.detach()
    if not keep_graph:
        acts = {s: a.detach() for s, a in acts.items()}
        logits = logits.detach()
    return grads, acts, logits
