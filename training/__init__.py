"""Training loops and their data: every model and lens this project trains, with one checkpoint mechanism.

``experiments/`` calls these to make the bundled models; the app's Train page drives the same loops live.
Imports ``probes/`` (for evaluation) and ``interp/``; never plots, the UI or experiments.
"""
