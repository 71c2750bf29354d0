"""The learner's walkthrough: one forward pass recomputed by hand from the weights, each step checked live against
the model's own activation (:func:`walk`), and the hand-written pieces it is made of (:mod:`.hand`)."""
from probes.walkthrough.walk import (
    BLOCK_STEPS,
    MAX_TEMPERATURE,
    TOLERANCE,
    Check,
    Shown,
    Step,
    StepKey,
    TopToken,
    Walkthrough,
    visible,
    walk,
)

__all__ = ["BLOCK_STEPS", "MAX_TEMPERATURE", "TOLERANCE", "Check", "Shown", "Step", "StepKey", "TopToken",
           "Walkthrough", "visible", "walk"]
