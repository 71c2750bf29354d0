"""Builds: experiments that train and save a bundled artefact (models, SAEs)."""
