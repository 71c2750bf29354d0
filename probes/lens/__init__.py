"""Lenses: decode each layer's residual stream (logit lens, tuned lens)."""
