"""Same seed on CPU -> byte-identical metrics.json; another seed -> different metrics (the seeding matters)."""
import pytest

from experiments.core import runner


@pytest.mark.slow
def test_same_seed_gives_byte_identical_metrics_and_another_seed_differs(ci_text_lm, tmp_path):
    """train-text-lm's ci preset depends on the seed (initial weights, batch order, dropout), so deleting the
    seeding would fail this test; timings are kept out of metrics.json, so the bytes must match exactly."""
    _, first, _ = ci_text_lm
    same = runner.run_experiment("train-text-lm", out=tmp_path / "same", preset="ci",
                                 overrides={"out_model": str(tmp_path / "m-same")})
    other = runner.run_experiment("train-text-lm", out=tmp_path / "other", preset="ci",
                                  overrides={"out_model": str(tmp_path / "m-other"), "seed": "1"})
    assert not same.skipped and not other.skipped
    assert (tmp_path / "same" / "metrics.json").read_bytes() == (first / "metrics.json").read_bytes()
    assert other.metrics["eval_loss"] != same.metrics["eval_loss"]
