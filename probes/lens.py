"""Logit lens: decode every layer's residual stream through the final norm and unembedding (nostalgebraist 2020)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from interp.capture import run_with_capture
from interp.handle import ModelHandle


@dataclass
class LensResult:
    """Per layer (resid_pre of each block, then the final residual) and position metrics for one prompt."""

    layer_names: list[str]
    topk_ids: torch.Tensor  # [layers, pos, k]
    topk_probs: torch.Tensor  # [layers, pos, k]
    target_prob: torch.Tensor  # [layers, pos]
    target_rank: torch.Tensor  # [layers, pos] (0 = top-1)
    target_logit: torch.Tensor  # [layers, pos]
    kl_to_final: torch.Tensor  # [layers, pos] KL(final || layer), nats
    entropy: torch.Tensor  # [layers, pos] nats


def residual_stack(handle: ModelHandle, tokens: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
    """resid_pre of every block plus the final resid_post: ([layers+1, pos, d_model], names) for one sequence."""
    n = handle.cfg.n_layers
    names = [f"blocks.{l}.hook_resid_pre" for l in range(n)] + [f"blocks.{n - 1}.hook_resid_post"]
    cap = run_with_capture(handle, tokens, names)
    stack = torch.stack([cap.cache[name][0] for name in names])  # [layers+1, pos, d_model]
    return stack, names


def decode(handle: ModelHandle, resid: torch.Tensor) -> torch.Tensor:
    """Final norm then unembedding: [..., d_model] -> logits [..., d_vocab]."""
    with torch.no_grad():
        return handle.bridge.unembed(handle.bridge.ln_final(resid))


def lens_metrics(logits: torch.Tensor, final_logits: torch.Tensor, targets: torch.Tensor, k: int = 5) -> dict:
    """Metrics for lens logits [L, pos, vocab] against the final logits [pos, vocab] and targets [pos]."""
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


def logit_lens(handle: ModelHandle, tokens: torch.Tensor, targets: torch.Tensor | None = None, k: int = 5,
               translators=None) -> LensResult:
    """Logit (or, with ``translators`` per layer, tuned) lens for one token sequence [pos]; target = next token."""
    tokens = tokens.view(1, -1)
    stack, names = residual_stack(handle, tokens)  # [L, pos, d_model]
    if translators is not None:
        with torch.no_grad():
            stack = torch.stack([translators[i](stack[i]) if i < len(translators) else stack[i]
                                 for i in range(stack.shape[0])])
    if targets is None:
        targets = torch.cat([tokens[0, 1:], tokens[0, -1:]])  # last position: itself (no next token)
    per_layer = [lens_metrics(decode(handle, stack[i]).unsqueeze(0), decode(handle, stack[-1]), targets, k)
                 for i in range(stack.shape[0])]  # one layer at a time: never [L, pos, vocab] whole
    merged = {key: torch.cat([m[key] for m in per_layer]) for key in per_layer[0]}
    return LensResult(layer_names=names, **merged)
