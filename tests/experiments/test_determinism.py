"""Same seed on CPU -> byte-identical metrics.json; another seed -> different metrics (the seeding matters)."""
import pytest

from experiments.core import runner
from tests.builders import TINY_TEXT_LM


@pytest.mark.slow
def test_same_seed_gives_byte_identical_metrics_and_another_seed_differs(tiny_text_lm, tmp_path):
    """train-text-lm depends on the seed (initial weights, batch order, dropout), so deleting the seeding would fail
    this test; timings are kept out of metrics.json, so the bytes must match exactly. Toy size, so it runs in
    seconds; the property does not depend on the size."""
    _, first, _ = tiny_text_lm
    same = runner.run_experiment("train-text-lm", out=tmp_path / "same", preset="ci",
                                 overrides={**TINY_TEXT_LM, "out_model": str(tmp_path / "m-same")})
    other = runner.run_experiment("train-text-lm", out=tmp_path / "other", preset="ci",
                                  overrides={**TINY_TEXT_LM, "out_model": str(tmp_path / "m-other"), "seed": "1"})
    assert not same.skipped and not other.skipped
    assert (tmp_path / "same" / "metrics.json").read_bytes() == (first / "metrics.json").read_bytes()
    assert other.metrics["eval_loss"] != same.metrics["eval_loss"]
