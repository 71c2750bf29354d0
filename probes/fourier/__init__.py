"""Fourier analyses of modular-arithmetic models (grokking)."""
