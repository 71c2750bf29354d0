"""Named, configured, seeded experiments that write a results folder; `python -m experiments --help`."""
from .registry import (NOT_CHECKED, NOT_REPRODUCED, REPRODUCED, Check, Experiment, Finding, RunResult, Verdict,
                       all_experiments, get_experiment, make_config, register)

__all__ = ["NOT_CHECKED", "NOT_REPRODUCED", "REPRODUCED", "Check", "Experiment", "Finding", "RunResult", "Verdict",
           "all_experiments", "get_experiment", "make_config", "register"]
