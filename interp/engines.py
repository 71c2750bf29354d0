"""TransformerLens's engines that the analyses build on, re-exported so that only ``interp`` imports it.

- Patch setters (pure tensor functions): how one cell of an activation-patching grid is copied in.
- Statistics: percentile bootstrap, paired sign-flip permutation test, derived generators.
- Edge attribution patching and its faithfulness check (Syed et al. 2023): TransformerLens's edge graph needs the
  bridge itself, so these run on the bridge backend only and say so in one line elsewhere.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from transformer_lens.patching import (
    layer_head_vector_patch_setter,
    layer_pos_head_vector_patch_setter,
    layer_pos_patch_setter,
)
from transformer_lens.tools.analysis.attribution_patching import (
    EdgeAttributionConfig,
    FaithfulnessConfig,
    attribution_patch,
    faithfulness,
)
from transformer_lens.utilities.statistics import bootstrap_ci, derive_generator, sign_flip_permutation_pvalue

from interp.backends.bridge import bridge_of
from interp.model import Model

__all__ = ["bootstrap_ci", "derive_generator", "edge_attribution_run", "layer_head_vector_patch_setter",
           "layer_pos_head_vector_patch_setter", "layer_pos_patch_setter", "sign_flip_permutation_pvalue"]


def edge_attribution_run(model: Model, clean: torch.Tensor, corrupted: torch.Tensor,
                         metric: Callable[[torch.Tensor], torch.Tensor], ks: tuple[int, ...]
                         ) -> tuple[dict[tuple[Any, Any], float], dict[int, float]]:
    """TransformerLens's edge attribution patching of one pair (2 forwards + 1 backward) and the faithfulness
    (fraction of the clean-corrupted gap recovered, exact) of its top-k edges for each k in ``ks``.

    Returns ``(edge -> score, k -> recovered)``; an edge is a pair of TransformerLens node objects (``kind``,
    ``layer``, ``head``, ``position``). Needs the bridge backend (InvalidInput otherwise)."""
    bridge = bridge_of(model)
    res = attribution_patch(bridge, clean, corrupted, metric, EdgeAttributionConfig(granularity="edge"))
    ranked = res.top_edges(max(ks))
    recovered = {k: float(faithfulness(bridge, clean, corrupted, metric, ranked[:k], FaithfulnessConfig()).recovered)
                 for k in ks}
    return dict(res.edge_scores), recovered
