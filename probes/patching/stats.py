"""Over a dataset of pairs: each component's mean normalised effect with a bootstrap CI and a permutation p-value.

Per pair the effect is (patched - corrupted) / (mean clean - mean corrupted), so the mean over pairs is the
sweep's normalised effect and one pair with a tiny clean-corrupted gap cannot blow up the average. The
interval is TransformerLens's percentile bootstrap (``utilities.statistics.bootstrap_ci``) and the p-value its
paired sign-flip permutation test (``sign_flip_permutation_pvalue``, exact up to 12 pairs) against "no effect".
"""
from __future__ import annotations

import pandas as pd

from interp.engines import bootstrap_ci, derive_generator, sign_flip_permutation_pvalue
from interp.errors import InvalidInput
from probes.patching.activation import SweepResult, component_label


def dataset_effects(result: SweepResult, *, confidence: float = 0.95, n_resamples: int = 1000,
                    n_permutations: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per cell: component, mean effect, ci_low, ci_high, p_value, n_pairs; sorted by |mean|."""
    eff = result.effects().double()  # [*cells, batch]
    n = eff.shape[-1]
    if n < 2:
        raise InvalidInput("A confidence interval needs at least 2 pairs.", "Add more prompt pairs.")
    flat = eff.reshape(-1, n)  # [cells, batch]
    low, high = bootstrap_ci(flat, dim=-1, confidence=confidence, n_resamples=n_resamples,
                             generator=derive_generator(seed, "bootstrap", result.kind))
    p = sign_flip_permutation_pvalue(flat, dim=-1, n_permutations=n_permutations,
                                     generator=derive_generator(seed, "permutation", result.kind))
    shape = eff.shape[:-1]
    rows = []
    for i in range(flat.shape[0]):
        idx, rest = [], i
        for s in reversed(shape):
            idx.append(rest % s)
            rest //= s
        cell = dict(zip(result.axes, reversed(idx)))
        rows.append({"component": component_label(result.kind, cell), **cell, "mean": float(flat[i].mean()),
                     "ci_low": float(low[i]), "ci_high": float(high[i]), "p_value": float(p[i]), "n_pairs": n})
    df = pd.DataFrame(rows)
    return df.reindex(df["mean"].abs().sort_values(ascending=False, kind="stable").index).reset_index(drop=True)
