"""Everything the Heads page shows for one model and setting: detector scores, ablation effect, an example pattern.

One call = one batched capture of attention patterns (``scan_heads``), one ablation sweep batched per layer
(``ablate_heads``, optional) on the same BOS + A + A rows, and the attention patterns of the first of those rows
(one single-row forward pass) so any head can be drawn without running the model again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from interp import validate
from interp.errors import InvalidInput
from interp.model import Model
from interp.tokens import tokenize
from interp.types import Progress
from probes.heads.ablation import AblationMode, ablate_heads
from probes.heads.detectors import HeadScores, capture_patterns, repeated_batch, scan_heads

ABLATION_MODES = ("mean", "zero", "off")
#: Column shown for the ablation: rise of the second-copy loss (tokens L+2..2L, nats) when the head is ablated
#: (> 0: the head helped the model copy). See probes.heads.ablation for why position L+1 is left out.
ABLATION_SCORE = "ablation_effect"
#: Second ablation column: rise of the ICL score (second-copy minus first-copy loss) when the head is ablated.
ICL_SCORE = "ablation_icl_effect"
#: An ablation effect within this many standard errors (over the scan's rows) of zero is noise (~95%).
NOISE_SE = 2.0


@dataclass
class HeadReport:
    """Per-head scores (detectors + ``ablation_effect`` unless off) and one example sequence's patterns."""
    scores: HeadScores
    example_tokens: list[str]  # the example BOS + A + A row, one readable string per position
    example_patterns: np.ndarray  # [layer, head, query_pos, key_pos] float16
    seq_len: int  # length of A; the copy starts at position seq_len + 1
    ablation_mode: AblationMode | Literal["off"]
    baseline_icl: float | None  # ICL score (second-copy minus first-copy loss) with nothing ablated
    baseline_second_loss: float | None = None  # mean loss on tokens L+2..2L with nothing ablated (nats)
    #: score -> its noise floor (nats): NOISE_SE standard errors of the noisiest head's effect over the rows;
    #: effects smaller than that are within the noise of this scan's rows.
    noise: dict[str, float] = field(default_factory=dict)

    def pattern(self, layer: int, head: int) -> np.ndarray:  # [query_pos, key_pos] float32
        """One head's pattern on the example row; InvalidInput names the valid range for a wrong L.H."""
        n_layers, n_heads = self.example_patterns.shape[:2]
        layer, head = validate.integer(layer, "Layer"), validate.integer(head, "Head")
        if not (0 <= layer < n_layers and 0 <= head < n_heads):
            raise InvalidInput(f"Head {layer}.{head} does not exist: layers 0..{n_layers - 1}, "
                               f"heads 0..{n_heads - 1}.")
        return self.example_patterns[layer, head].astype(np.float32)


def head_report(handle: Model, *, seq_len: int = 50, n_batch: int = 10, seed: int = 0,
                ablation: str = "mean", progress: Progress | None = None) -> HeadReport:
    """Score every head of ``handle`` on seeded repeated random tokens; ``progress`` gets (fraction, message).

    Columns of ``report.scores.table()``: the detectors, then (unless ablation is off) ``ablation_effect``
    (second-copy loss rise, the ranking measure) and ``ablation_icl_effect`` (ICL score rise)."""
    if not isinstance(ablation, str) or ablation not in ABLATION_MODES:
        raise InvalidInput(f"Ablation must be one of {', '.join(ABLATION_MODES)}, got {ablation!r}.")
    report = progress or (lambda f, m: None)
    report(0.0, "capturing attention patterns")
    scores = scan_heads(handle, seq_len=seq_len, n_batch=n_batch, seed=seed)  # validates seq_len, n_batch
    rep = repeated_batch(handle, n_batch, seq_len, seed=seed)  # [n_batch, 1 + 2 * seq_len], the scan's rows
    baseline = baseline_second = None
    noise: dict[str, float] = {}
    if ablation != "off":
        report(0.2, f"{ablation}-ablating every head")
        res = ablate_heads(handle, rep, seq_len, mode=ablation,
                           progress=lambda f, m: report(0.2 + 0.75 * f, m))
        scores = scores.with_scores(**{ABLATION_SCORE: res.effect, ICL_SCORE: res.icl_effect})
        baseline, baseline_second = res.baseline_icl, res.baseline_second
        for name, se in ((ABLATION_SCORE, res.effect_se), (ICL_SCORE, res.icl_effect_se)):
            if se is not None and bool(torch.isfinite(se).any()):
                noise[name] = NOISE_SE * float(torch.nan_to_num(se, nan=0.0).max())
    example = rep[:1].to(handle.device)  # [1, 1 + 2 * seq_len]
    pats = capture_patterns(handle, tokenize(handle, example))[:, 0]  # [layer, head, q, k]
    scores.settings.update(ablation=ablation)
    report(1.0, "done")
    return HeadReport(scores, handle.to_str_tokens(example[0]), pats.cpu().numpy().astype(np.float16), seq_len,
                      ablation, baseline, baseline_second, noise)
