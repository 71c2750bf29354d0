"""Analyses that take a model handle (or captured activations) and return plain results; no file I/O, no UI."""
from probes.heads.ablation import AblationResult, ablate_heads, copy_losses, icl_score, per_copy_icl
from probes.heads.detectors import HeadScores, detector_scores, k_composition_scores, scan_heads
from tasks.repeats import random_tokens_with_repeats, repeated_random_tokens, tiled_random_segments

__all__ = ["AblationResult", "HeadScores", "ablate_heads", "copy_losses", "detector_scores", "icl_score",
           "k_composition_scores", "per_copy_icl", "random_tokens_with_repeats", "repeated_random_tokens",
           "scan_heads", "tiled_random_segments"]
