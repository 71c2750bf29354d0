"""Each training experiment's ci run, SIGKILLed at random moments and run again, ends with the metrics.json of an
uninterrupted run: every checkpoint and cache is written atomically and resumes (or is rebuilt) after a kill."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.builders import TINY_TEXT_LM

ROOT = Path(__file__).resolve().parents[2]
#: Every experiment that trains (and so checkpoints); those not registered in this checkout are skipped.
TRAINING_EXPERIMENTS = ("train-text-lm", "train-othello-gpt", "induction-phase-change", "grokking", "train-sae",
                        "toy-superposition")
#: The ci preset made smaller still where one run costs more than ~10 s of CPU: the test runs each experiment up to
#: five times (one reference, three killed, one resumed), and resuming to the same bytes does not depend on size.
SMALLER = {
    "train-text-lm": TINY_TEXT_LM,
    "train-othello-gpt": {"steps": "20", "eval_every": "10", "eval_games": "20", "batch_size": "8"},
    "induction-phase-change": {"steps": "30", "eval_every": "10", "batch_size": "4"},
    "grokking": {"epochs": "400"},
    "train-sae": {"steps": "16", "max_chars": "60000", "batch_seqs": "2", "eval_seqs": "2"},
}


def _cmd(name: str, out: Path) -> list[str]:
    sets = [a for k, v in SMALLER.get(name, {}).items() for a in ("--set", f"{k}={v}")]
    return [sys.executable, "-m", "experiments", "run", name, "--preset", "ci", "--out", str(out), "--quiet", *sets]


def _env(tmp: Path, cache: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "WORKBENCH_CACHE": str(tmp / cache),
            "WORKBENCH_RESULTS": str(tmp / "results")}


@pytest.mark.slow
@pytest.mark.parametrize("name", TRAINING_EXPERIMENTS)
def test_sigkill_at_random_moments_resumes_to_the_uninterrupted_result(name, tmp_path):
    from experiments import all_experiments

    if "ci" not in all_experiments().get(name, type("None", (), {"presets": {}})).presets:
        pytest.skip(f"{name} is not registered with a ci preset")
    t0 = time.monotonic()
    subprocess.run(_cmd(name, tmp_path / "a"), cwd=ROOT, env=_env(tmp_path, "cache-a"), check=True,
                   capture_output=True, timeout=1800)
    whole = time.monotonic() - t0
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    delays = [rng.uniform(0.15 * whole, 0.9 * whole) for _ in range(3)]
    env_b = _env(tmp_path, "cache-b")  # its own cache: nothing is shared with the uninterrupted run
    for delay in delays:
        proc = subprocess.Popen(_cmd(name, tmp_path / "b"), cwd=ROOT, env=env_b, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    final = subprocess.run(_cmd(name, tmp_path / "b"), cwd=ROOT, env=env_b, capture_output=True, text=True,
                           timeout=1800)
    why = f"killed after {', '.join(f'{d:.1f}' for d in delays)} s (random seed {seed}); {final.stderr[-2000:]}"
    assert final.returncode == 0, why
    assert (tmp_path / "b" / "metrics.json").read_bytes() == (tmp_path / "a" / "metrics.json").read_bytes(), why
