"""The experiment framework: registry, typed settings, run context, atomic runner, results, CLI.

Every plain module of ``experiments/`` (not this package) is one experiment and is discovered by importing it.
"""
