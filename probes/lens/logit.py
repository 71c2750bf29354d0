"""Logit lens: decode every layer's residual stream through the final norm and unembedding (nostalgebraist 2020).

The stack of residual streams is resid_pre of every block, then the final resid_post (TransformerLens's
``accumulated_resid``), read in one pass. Decoding is the model interface's ``readout``: the model's own final
norm and unembedding (on the bridge backend: its ``ln_final`` module, the one ``apply_ln_to_stack(recompute_ln=
True)`` and TL's ``logit_lens`` call, ``W_U``, ``b_U`` and the adapter's output transform), so the last entry
reproduces the model's logits exactly (tested). The compatibility mode is not needed for these numerics: on a
bridge in compatibility mode (folded norm, centred unembedding) probabilities, ranks, KL and entropy agree to
~1e-5 and ``target_logit`` moves by a per-position constant (tested).

Why not ``transformer_lens.tools.analysis.logit_lens`` itself: it takes one selector per call (``top_k`` *or*
``targets``) and has no KL to the final distribution, so top-k + target + KL + entropy would cost two or three
full-vocabulary unembeddings per row, or the whole ``[layers, pos, d_vocab]`` tensor. :func:`lens_readout`
computes every metric from one unembedding per (layer, position), in position chunks, and keeps only
top-k and per-row numbers: peak extra memory is a few ``[chunk, d_vocab]`` tensors.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import torch

from interp import validate
from interp.errors import InvalidInput
from interp.model import Model
from interp.prompt_check import refuse_unknown
from interp.sites import Site

LensKind = Literal["logit", "tuned"]  # decode each layer as is, or through a trained affine translator

#: A lens translator: ``(resid [rows, d_model], stack index) -> resid``; None = the logit lens (identity).
Translator = Callable[[torch.Tensor, int], torch.Tensor]
#: Elements of one ``[chunk, d_vocab]`` logits tensor (float32: 16 MiB); a few of these are the peak memory.
CHUNK_ELEMENTS = 1 << 22


# ----------------------------------------------------------------------------- the residual stack


def lens_sites(n_layers: int) -> list[Site]:
    """Sites the lens reads: resid_pre of every block, then the last block's resid_post."""
    return [Site("resid_pre", i) for i in range(n_layers)] + [Site("resid_post", n_layers - 1)]


def layer_labels(n_layers: int) -> list[str]:
    """Readable names of the lens layers, as in results and figures: resid_pre 0 .. resid_post n-1."""
    return [f"resid_pre {i}" for i in range(n_layers)] + [f"resid_post {n_layers - 1}"]


@dataclass
class ResidStack:
    """One prompt's residual stream at every lens layer (one forward pass): what every lens reads."""
    resid: torch.Tensor  # [layers, pos, d_model]; layers = n_layers + 1 (last: final resid_post)
    sites: list[Site]
    token_ids: torch.Tensor  # [pos]
    tokens: list[str]  # readable input tokens

    @property
    def labels(self) -> list[str]:
        return layer_labels(self.resid.shape[0] - 1)

    @property
    def n_pos(self) -> int:
        return self.resid.shape[1]


def batch_residual_stack(handle: Model, tokens: torch.Tensor) -> torch.Tensor:
    """Residual streams of a token batch [batch, pos] at every lens layer -> [layers, batch, pos, d_model]."""
    sites = lens_sites(handle.info.n_layers)
    run = handle.run(tokens, read=sites, stop_after=sites[-1])
    return torch.stack([run.acts[s] for s in sites])  # [layers, batch, pos, d_model]


def residual_stack(handle: Model, prompt: str | torch.Tensor, *, prepend_bos: bool = True) -> ResidStack:
    """One forward pass over a prompt (text or 1-D token ids) capturing only the lens hooks."""
    batch = handle.tokenize(prompt, prepend_bos=prepend_bos)
    if batch.tokens.shape[0] != 1:
        raise InvalidInput(f"The lens reads one prompt at a time, got {batch.tokens.shape[0]}.")
    ids = batch.tokens[0]  # [pos]
    stack = batch_residual_stack(handle, batch.tokens)[:, 0]  # [layers, pos, d_model]
    return ResidStack(stack, lens_sites(handle.info.n_layers), ids.cpu(), handle.to_str_tokens(ids))


# ----------------------------------------------------------------------------- decoding


def decode(handle: Model, resid: torch.Tensor) -> torch.Tensor:
    """Final norm then unembedding: [..., d_model] -> logits [..., d_vocab] (no grad; small inputs only)."""
    with torch.no_grad():
        return handle.readout(resid)


def lens_metrics(logits: torch.Tensor, final_logits: torch.Tensor, targets: torch.Tensor, k: int = 5) -> dict:
    """Metrics of lens logits [L, pos, vocab] against final logits [pos, vocab] and targets [pos] (reference)."""
    logp = logits.float().log_softmax(-1)  # [L, pos, vocab]
    final_logp = final_logits.float().log_softmax(-1)  # [pos, vocab]
    probs = logp.exp()
    top_p, top_i = probs.topk(k, dim=-1)  # [L, pos, k]
    idx = targets.view(1, -1, 1).expand(logits.shape[0], -1, 1)
    t_logit = logits.gather(-1, idx).squeeze(-1)  # [L, pos]
    return {
        "topk_ids": top_i, "topk_probs": top_p,
        "target_prob": probs.gather(-1, idx).squeeze(-1),
        "target_rank": (logits > t_logit.unsqueeze(-1)).sum(-1),
        "target_logit": t_logit,
        "kl_to_final": (final_logp.exp() * (final_logp - logp)).sum(-1),
        "entropy": -(probs * logp).sum(-1),
    }


def _chunk_metrics(logits: torch.Tensor, final_p: torch.Tensor, final_neg_h: torch.Tensor,
                   targets: torch.Tensor, k: int) -> dict[str, torch.Tensor]:
    """All metrics of one chunk of logits [rows, vocab] in a few passes; nothing of size vocab survives.

    One exp pass (unnormalised probabilities), two dot products and a compare: entropy and KL are written with
    the log-normaliser ``lse`` so that log-probabilities are never materialised.
    """
    logits = logits.float()
    peak = logits.amax(-1, keepdim=True)  # [rows, 1]
    e = (logits - peak).exp_()  # [rows, vocab] unnormalised probabilities
    z = e.sum(-1)  # [rows]
    lse = peak[:, 0] + z.log()  # [rows] log-normaliser
    t_logit = logits.gather(-1, targets[:, None])  # [rows, 1]
    out = {
        "target_logit": t_logit[:, 0],
        "target_prob": (t_logit[:, 0] - lse).exp(),
        "target_rank": (logits > t_logit).sum(-1, dtype=torch.int32).long(),
        # KL(final || lens) = sum pf log pf - sum pf (logits - lse), as sum pf = 1; clamped: >= 0 up to rounding
        "kl_to_final": (final_neg_h - (torch.linalg.vecdot(final_p, logits) - lse)).clamp_min_(0),
        "entropy": lse - torch.linalg.vecdot(e, logits) / z,  # H = lse - E_p[logits]
    }
    if k:
        top_v, top_i = logits.topk(k, dim=-1)  # [rows, k]
        out["topk_ids"], out["topk_probs"] = top_i, (top_v - lse[:, None]).exp()
    return out


def lens_readout(handle: Model, resid: torch.Tensor, targets: torch.Tensor, *, k: int = 5,
                 lens: Translator | None = None, chunk_elements: int = CHUNK_ELEMENTS) -> dict[str, torch.Tensor]:
    """Metrics for every lens layer and row of ``resid`` [layers, rows, d_model] (last layer = the final stream).

    Returns ``topk_ids``/``topk_probs`` [layers, rows, k] and ``target_prob``/``target_rank`` (0 = top-1)/
    ``target_logit``/``kl_to_final`` (KL(final || layer), nats)/``entropy`` (nats) [layers, rows].
    Rows are processed in chunks of ``chunk_elements // d_vocab``; ``lens`` translates every layer but the last.
    """
    n_layers, n_rows, _ = resid.shape
    targets = targets.reshape(-1).to(resid.device)
    if targets.shape[0] != n_rows:
        raise InvalidInput(f"{targets.shape[0]} targets for {n_rows} positions.")
    d_vocab = handle.info.d_vocab
    if n_rows and (int(targets.min()) < 0 or int(targets.max()) >= d_vocab):
        raise InvalidInput(f"Target token ids must lie in 0..{d_vocab - 1}.")
    readout = handle.readout
    chunk = max(1, chunk_elements // d_vocab)
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for start in range(0, n_rows, chunk):
            rows = slice(start, min(start + chunk, n_rows))
            final = readout(resid[-1, rows]).float()  # [chunk, vocab]
            final_lse = torch.logsumexp(final, -1)  # [chunk]
            final_p = (final - final_lse[:, None]).exp_()  # [chunk, vocab]
            final_neg_h = torch.linalg.vecdot(final_p, final) - final_lse  # [chunk] sum pf log pf
            for layer in range(n_layers):
                if layer == n_layers - 1:
                    logits = final
                else:
                    h = resid[layer, rows]
                    logits = readout(lens(h, layer) if lens is not None else h)
                m = _chunk_metrics(logits, final_p, final_neg_h, targets[rows], k)
                for key, value in m.items():
                    if key not in out:
                        out[key] = torch.empty((n_layers, n_rows, *value.shape[1:]), dtype=value.dtype)
                    out[key][layer, rows] = value.cpu()
    return out


# ----------------------------------------------------------------------------- tokens


def token_strings(handle: Model, ids: torch.Tensor) -> np.ndarray:
    """Readable strings for a tensor of token ids (any shape), decoding each distinct id once."""
    flat = ids.reshape(-1).tolist()
    table = {i: handle.tokenizer.decode([i]) for i in set(flat)}
    return np.array([table[i] for i in flat], dtype=object).reshape(tuple(ids.shape))


def single_token_id(handle: Model, token: str | int) -> int:
    """A token id from an id or from text that is exactly one token; InvalidInput otherwise."""
    d_vocab = handle.info.d_vocab
    if isinstance(token, (int, np.integer)) and not isinstance(token, bool):
        if not 0 <= int(token) < d_vocab:
            raise InvalidInput(f"Token id {token} does not exist: {handle.info.name} has ids 0..{d_vocab - 1}.")
        return int(token)
    if not isinstance(token, str) or token == "":
        raise InvalidInput("No token given.", "Type one token, e.g. ' return' (leading spaces count).")
    try:
        token.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("The token holds a character that is not valid Unicode text (a lone surrogate).") from None
    ids = handle.tokenizer(token, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        pieces = ", ".join(repr(handle.tokenizer.decode([i])) for i in ids[:8])
        raise InvalidInput(f"{token[:40]!r} is {len(ids)} tokens for {handle.info.name} ({pieces}), not one.",
                           "Type a single token, e.g. its first piece; leading spaces are part of a token.")
    return refuse_unknown(handle, token, int(ids[0]), "token")


# ----------------------------------------------------------------------------- results


@dataclass
class LensResult:
    """Per lens layer (resid_pre of each block, then the final residual) and position metrics for one prompt."""
    lens: LensKind
    layer_names: list[str]  # hook per lens layer
    layer_labels: list[str]
    positions: list[int]  # prompt positions analysed
    tokens: list[str]  # input token at each analysed position
    targets: torch.Tensor  # [pos] target token id
    target_tokens: list[str]
    target_is_next: torch.Tensor  # [pos] bool: the target is the actual next token
    topk_ids: torch.Tensor  # [layers, pos, k]
    topk_probs: torch.Tensor  # [layers, pos, k]
    target_prob: torch.Tensor  # [layers, pos]
    target_rank: torch.Tensor  # [layers, pos] (0 = top-1)
    target_logit: torch.Tensor  # [layers, pos]
    kl_to_final: torch.Tensor  # [layers, pos] KL(final || layer), nats
    entropy: torch.Tensor  # [layers, pos] nats
    topk_tokens: np.ndarray = field(repr=False, default_factory=lambda: np.empty((0, 0, 0), dtype=object))

    def mean_kl(self, skip_first: bool = True) -> torch.Tensor:  # [layers]
        """Mean KL to the final distribution per layer over the analysed positions (by default without position 0:
        BOS, or a token without context)."""
        drop = skip_first and self.positions[0] == 0 and len(self.positions) > 1
        kl = self.kl_to_final[:, 1:] if drop else self.kl_to_final
        return kl.mean(1)

    def table(self):
        """One row per (layer, position): the numbers behind the grid, for CSV download. ``target_rank`` is
        1-based here (1 = top-1), as everywhere on screen; the tensors keep TransformerLens's 0-based ranks."""
        n_layers, n_pos = self.target_prob.shape
        lay, pos = np.meshgrid(np.arange(n_layers), np.arange(n_pos), indexing="ij")
        top1 = self.topk_tokens[..., 0] if self.topk_tokens.size else np.full((n_layers, n_pos), "")
        return pd.DataFrame({
            "lens": self.lens, "layer": np.array(self.layer_labels)[lay.ravel()],
            "position": np.array(self.positions)[pos.ravel()],
            "token": np.array(self.tokens, dtype=object)[pos.ravel()],
            "target": np.array(self.target_tokens, dtype=object)[pos.ravel()],
            "target_prob": self.target_prob.ravel().numpy(), "target_rank": self.target_rank.ravel().numpy() + 1,
            "target_logit": self.target_logit.ravel().numpy(), "kl_to_final": self.kl_to_final.ravel().numpy(),
            "entropy": self.entropy.ravel().numpy(), "top1": top1.ravel(),
            "top1_prob": self.topk_probs[..., 0].ravel().numpy() if self.topk_probs.numel() else np.nan,
        })


def _positions(n_pos: int, positions: Sequence[int] | None) -> list[int]:
    if positions is None:
        return list(range(n_pos))
    out = []
    for p in validate.scalar_or_list(positions):
        p = validate.integer(p, "Position")
        q = p + n_pos if p < 0 else p
        if not 0 <= q < n_pos:
            raise InvalidInput(f"Position {p} does not exist: the prompt has {n_pos} tokens (0..{n_pos - 1}).")
        out.append(q)
    if not out:
        raise InvalidInput("No positions given.")
    return out


def default_targets(stack: ResidStack, handle: Model) -> tuple[torch.Tensor, torch.Tensor]:
    """Next token at every position, the model's own top-1 at the last (no next token): (ids [pos], is_next [pos])."""
    ids = stack.token_ids
    last = decode(handle, stack.resid[-1, -1:]).argmax(-1).cpu()  # [1]
    targets = torch.cat([ids[1:], last])
    is_next = torch.ones(len(ids), dtype=torch.bool)
    is_next[-1] = False
    return targets, is_next


def lens_from_stack(handle: Model, stack: ResidStack, *, targets: torch.Tensor | int | str | None = None,
                    k: int = 5, positions: Sequence[int] | None = None, lens: Translator | None = None,
                    lens_name: str | None = None) -> LensResult:
    """Lens metrics for a captured prompt; ``targets``: None (next token), one token (id/text) or ids [pos]."""
    n_pos = stack.n_pos
    pos = _positions(n_pos, positions)
    k = validate.integer(k, "k")
    if not 0 <= k <= handle.info.d_vocab:
        raise InvalidInput(f"k must lie in 0..{handle.info.d_vocab}, got {k}.")
    if isinstance(targets, np.ndarray):
        targets = torch.from_numpy(targets) if targets.ndim else targets.item()
    if isinstance(targets, torch.Tensor):
        if targets.ndim > 1:
            raise InvalidInput(f"Targets must be one token or one id per position (1-D), got shape "
                               f"{tuple(targets.shape)}.", "Pass a 1-D tensor of length "
                               f"{n_pos}, a single id, or a single token's text.")
        if targets.dtype.is_floating_point or targets.dtype.is_complex or targets.dtype == torch.bool:
            raise InvalidInput(f"Target token ids must be integers, got dtype "
                               f"{str(targets.dtype).replace('torch.', '')}.")
    elif targets is not None and not isinstance(targets, (str, int, np.integer)) or isinstance(targets, bool):
        raise InvalidInput(f"Targets must be a token (text or id) or a 1-D tensor of ids, got "
                           f"{type(targets).__name__}.")
    if targets is None:
        tgt, is_next = default_targets(stack, handle)
    elif isinstance(targets, torch.Tensor) and targets.ndim == 1:
        if targets.shape[0] != n_pos:
            raise InvalidInput(f"Per-position targets need {n_pos} ids (one per token), got {targets.shape[0]}.")
        tgt, is_next = targets.long().cpu(), targets.cpu() == torch.cat([stack.token_ids[1:], torch.tensor([-1])])
        if int(tgt.min()) < 0 or int(tgt.max()) >= handle.info.d_vocab:
            raise InvalidInput(f"Target token ids must lie in 0..{handle.info.d_vocab - 1}.")
    else:
        tid = single_token_id(handle, targets.item() if isinstance(targets, torch.Tensor) else targets)
        tgt = torch.full((n_pos,), tid, dtype=torch.long)
        is_next = tgt == torch.cat([stack.token_ids[1:], torch.tensor([-1])])
    idx = torch.tensor(pos)
    m = lens_readout(handle, stack.resid[:, idx], tgt[idx], k=int(k), lens=lens)
    topk = m.pop("topk_ids", torch.empty((stack.resid.shape[0], len(pos), 0), dtype=torch.long))
    probs = m.pop("topk_probs", torch.empty(topk.shape))
    return LensResult(
        lens=lens_name or ("logit" if lens is None else "tuned"), layer_names=[str(x) for x in stack.sites],
        layer_labels=stack.labels, positions=pos, tokens=[stack.tokens[p] for p in pos], targets=tgt[idx],
        target_tokens=list(token_strings(handle, tgt[idx])), target_is_next=is_next[idx], topk_ids=topk,
        topk_probs=probs, topk_tokens=token_strings(handle, topk), **m)


def logit_lens(handle: Model, prompt: str | torch.Tensor, targets: torch.Tensor | int | str | None = None,
               k: int = 5, *, positions: Sequence[int] | None = None, translators: Translator | None = None,
               prepend_bos: bool = True) -> LensResult:
    """Logit lens (or, with a translator such as a TunedLens, a tuned lens) for one prompt: one forward pass."""
    stack = residual_stack(handle, prompt, prepend_bos=prepend_bos)
    return lens_from_stack(handle, stack, targets=targets, k=k, positions=positions, lens=translators)


# ----------------------------------------------------------------------------- one token across layers


@dataclass
class TokenTrajectory:
    """One token's probability, rank and logit at one position across the lens layers."""
    lens: str
    position: int
    token_id: int
    token: str
    layer_labels: list[str]
    prob: torch.Tensor  # [layers]
    rank: torch.Tensor  # [layers] (0 = top-1)
    logit: torch.Tensor  # [layers]


def token_trajectory(handle: Model, stack: ResidStack, position: int, token: int | str,
                     lens: Translator | None = None, lens_name: str | None = None) -> TokenTrajectory:
    """Decode one position at every layer for one token: no forward pass (reads the captured stack)."""
    (pos,) = _positions(stack.n_pos, [position])
    tid = single_token_id(handle, token)
    m = lens_readout(handle, stack.resid[:, pos:pos + 1], torch.tensor([tid]), k=0, lens=lens)
    return TokenTrajectory(lens=lens_name or ("logit" if lens is None else "tuned"), position=pos, token_id=tid,
                           token=handle.tokenizer.decode([tid]), layer_labels=stack.labels,
                           prob=m["target_prob"][:, 0], rank=m["target_rank"][:, 0], logit=m["target_logit"][:, 0])
