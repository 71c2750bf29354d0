"""Features: SAE splicing metrics, latent statistics and contexts, superposition toys."""
