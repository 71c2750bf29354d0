"""Causal tracing: activation and path patching, attribution patching, DLA, dataset statistics."""
