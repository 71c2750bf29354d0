"""Feature dashboards of a transcoder set: each feature's top-activating contexts on a held-out sample, its firing
density, and the tokens its decoder promotes and suppresses through the unembedding (the graph page's cards).

Built once per transcoder (a pass over the sample keeping a running top-n per feature, so memory stays
``[layers, features, n]``); the arrays round-trip through :meth:`FeatureDashboard.to_arrays` so the app can cache
them on disk.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from interp.errors import InvalidInput
from interp.model import Model
from learned.transcoder import Transcoder
from probes.features.latents import Context
from probes.graph.replacement import check_fits, mlp_io


@dataclass
class FeatureDashboard:
    top_value: np.ndarray  # [layer, feature, n] activations, descending (0 where fewer occurrences)
    top_seq: np.ndarray  # [layer, feature, n] row of the sample
    top_pos: np.ndarray  # [layer, feature, n] position in that row
    density: np.ndarray  # [layer, feature] share of sample tokens where the feature is active
    tokens: np.ndarray  # [n_seq, pos] the sample

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in ("top_value", "top_seq", "top_pos", "density", "tokens")}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> FeatureDashboard:
        return cls(**{k: np.asarray(arrays[k]) for k in ("top_value", "top_seq", "top_pos", "density", "tokens")})

    def contexts(self, layer: int, feature: int, tokenizer: Any, window: int = 12) -> list[Context]:
        """The feature's top-activating contexts: ``window`` tokens before each peak and 3 after; the feature's
        activation is known at the peak only (the others are shown unshaded)."""
        L, f = self.density.shape
        if not (0 <= layer < L and 0 <= feature < f):
            raise InvalidInput(f"No feature {feature} at layer {layer} (layers 0..{L - 1}, features 0..{f - 1}).")
        out = []
        for v, s, p in zip(self.top_value[layer, feature], self.top_seq[layer, feature], self.top_pos[layer, feature]):
            if v <= 0:
                break
            lo, hi = max(0, int(p) - window), min(self.tokens.shape[1], int(p) + 4)
            ids = self.tokens[int(s), lo:hi].tolist()
            acts = [float(v) if lo + i == int(p) else 0.0 for i in range(len(ids))]
            out.append(Context(int(s), int(p), float(v), [tokenizer.decode([t]) for t in ids], acts, int(p) - lo))
        return out


@torch.no_grad()
def build_dashboard(model: Model, tc: Transcoder, tokens: torch.Tensor, n_top: int = 8,
                    batch_size: int = 16) -> FeatureDashboard:
    """Run ``tokens`` [n_seq, pos] through the model and the transcoders, keeping each feature's ``n_top`` highest
    activations (at most one per row, so the contexts differ)."""
    check_fits(model, tc)
    if tokens.ndim != 2 or tokens.shape[0] < 1:
        raise InvalidInput("A dashboard is built on tokens [n_seq, pos].")
    L, f = tc.cfg.n_layers, tc.cfg.d_transcoder
    best_v = torch.zeros(L, f, 0)
    best_s = torch.zeros(L, f, 0, dtype=torch.int64)
    best_p = torch.zeros(L, f, 0, dtype=torch.int64)
    fires = torch.zeros(L, f)
    for start in range(0, tokens.shape[0], batch_size):
        tok = tokens[start:start + batch_size]
        x, _ = mlp_io(model, tok.to(model.device), tc)
        acts = tc.encode(x).cpu()  # [b, pos, L, f]
        fires += (acts > 0).float().sum(dim=(0, 1))
        peak, where = acts.max(dim=1)  # [b, L, f]: each row's peak
        v = torch.cat([best_v, peak.permute(1, 2, 0)], dim=2)  # [L, f, n + b]
        s = torch.cat([best_s, (torch.arange(tok.shape[0]) + start)[None, None].expand(L, f, -1)], dim=2)
        p = torch.cat([best_p, where.permute(1, 2, 0)], dim=2)
        top = v.topk(min(n_top, v.shape[2]), dim=2)
        best_v, best_s, best_p = top.values, s.gather(2, top.indices), p.gather(2, top.indices)
    return FeatureDashboard(best_v.numpy(), best_s.numpy(), best_p.numpy(),
                            (fires / (tokens.shape[0] * tokens.shape[1])).numpy(), tokens.cpu().numpy())


def feature_logit_effects(model: Model, tc: Transcoder, layer: int, feature: int,
                          n: int = 8) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(promoted, suppressed): tokens whose logits the feature's decoder (summed over the layers it writes) raises and
    lowers most through the unembedding, per unit activation, centred over the vocabulary (the direct path)."""
    if not (0 <= layer < tc.cfg.n_layers and 0 <= feature < tc.cfg.d_transcoder):
        raise InvalidInput(f"No feature {feature} at layer {layer}.")
    vec = tc.W_dec[layer][feature].detach().sum(0)  # [d]
    v = vec @ model.weights().W_U.float()  # [vocab]
    v = (v - v.mean()).numpy()
    order = np.argsort(-v, kind="stable")
    tok = model.tokenizer
    return ([(tok.decode([int(i)]), float(v[i])) for i in order[:n]],
            [(tok.decode([int(i)]), float(v[i])) for i in order[::-1][:n]])
