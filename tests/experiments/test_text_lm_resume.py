"""A train-text-lm run stopped mid-training and resumed equals an uninterrupted one, byte for byte."""
from __future__ import annotations

import threading

import pytest

from experiments.core import runner
from experiments.core.context import Cancelled
from tests.builders import TINY_TEXT_LM


@pytest.mark.slow
def test_resumed_train_text_lm_equals_an_uninterrupted_run(tiny_text_lm, tmp_path):
    """Stopped after step 15 (checkpoints every 10 steps: the last is step 10), then run again: the second run
    resumes at step 11 (dropout's RNG state comes from the checkpoint) and writes the same metrics.json bytes as
    the fixture's uninterrupted run."""
    _, uninterrupted, _ = tiny_text_lm
    stop = threading.Event()

    def stop_after_15(fraction: float, message: str) -> None:
        if message.startswith("step 15/"):
            stop.set()

    kwargs = dict(out=tmp_path / "r", preset="ci", overrides={**TINY_TEXT_LM, "out_model": str(tmp_path / "m")})
    with pytest.raises(Cancelled):
        runner.run_experiment("train-text-lm", progress=stop_after_15, cancel_event=stop, **kwargs)
    assert not (tmp_path / "r").exists()  # nothing half-written
    messages: list[str] = []
    resumed = runner.run_experiment("train-text-lm", progress=lambda f, m: messages.append(m), **kwargs)
    assert not resumed.skipped
    assert next(m for m in messages if m.startswith("step ")).startswith("step 11/24")  # resumed, not restarted
    assert (tmp_path / "r" / "metrics.json").read_bytes() == (uninterrupted / "metrics.json").read_bytes()
