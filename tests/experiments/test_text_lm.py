"""train-text-lm ci preset: trains, writes a loadable model directory, beats the unigram baseline."""
import json

import pytest

import interp
from experiments import runner


@pytest.mark.slow
def test_ci_preset_trains_a_loadable_model(tmp_path):
    out = tmp_path / "r"
    res = runner.run_experiment("train-text-lm", out=out, preset="ci", out_model=str(tmp_path / "m"))
    assert not res.skipped
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["verdict"]["status"] in ("reproduced", "not reproduced")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["bos_token_id"] is not None
    handle = interp.load_model(str(tmp_path / "m"))
    assert handle.info.n_layers == 2 and handle.info.d_vocab == 512
