"""Trainable modules that read or replace parts of a model, and their file formats (SAE, tuned lens)."""
