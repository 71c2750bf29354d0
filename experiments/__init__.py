"""Named, configured, seeded experiments that write a results folder; `python -m experiments --help`.

Every plain module here is one registered experiment; the framework (registry, settings, runner, CLI) is
``experiments.core``.
"""
from experiments.core.registry import (
                            NOT_CHECKED,
                            NOT_REPRODUCED,
                            REPRODUCED,
                            Check,
                            Experiment,
                            Finding,
                            RunResult,
                            Verdict,
                            all_experiments,
                            get_experiment,
                            make_config,
                            register,
)

__all__ = ["NOT_CHECKED", "NOT_REPRODUCED", "REPRODUCED", "Check", "Experiment", "Finding", "RunResult", "Verdict",
           "all_experiments", "get_experiment", "make_config", "register"]
