"""Backends behind :class:`interp.model.Model`: ``bridge`` (TransformerLens's TransformerBridge, the default)."""
