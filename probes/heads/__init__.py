"""Attention heads: detector scores, ablation, and the per-model head report."""
