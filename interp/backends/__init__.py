"""Backends behind :class:`interp.model.Model`: ``bridge`` (TransformerLens's TransformerBridge, the default) and
``nnsight`` (nnsight over a Hugging Face causal LM, here or on NDIF: ``nnsight``, ``ndif``, ``hf_sites``)."""
import os
from pathlib import Path

# nnsight reads its settings once, at import: ours, not the home directory's (see nnsight.yaml).
os.environ.setdefault("NNSIGHT_CONFIG", str(Path(__file__).with_name("nnsight.yaml")))
