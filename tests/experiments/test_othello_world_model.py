"""Othello experiments: the trainer writes a loadable Othello-GPT; the world-model ci preset reproduces the
findings on the shipped model and refuses models that are not Othello-GPTs."""
import json

import numpy as np
import pytest
import torch

import interp
from experiments.core import runner
from interp.errors import InvalidInput
from tasks.othello import random_games
from training.othello import SEQ_LEN, legal_top1, othello_tokenizer


def test_tokenizer_maps_square_names():
    tok = othello_tokenizer()
    ids = tok("C4 D3 <pad> A1 H8", add_special_tokens=False)["input_ids"]
    # C4 = square 19 -> token 20; D3 = square 26 -> token 27 (no centre square precedes either); H8 -> 60
    assert ids == [20, 27, 0, 1, 60]
    assert len(tok) == 61 and tok.pad_token_id == 0


def test_legal_top1_counts_only_live_positions():
    g = random_games(4, seed=0)
    legal = g.legal()[:, :SEQ_LEN]
    logits = torch.full((4, SEQ_LEN, 61), -5.0)
    assert legal_top1(logits, legal) == 0.0  # argmax = pad everywhere: never a legal square
    from tasks.othello import squares_to_tokens
    first_legal = np.where(legal.any(-1), legal.argmax(-1), 0)
    logits.scatter_(-1, torch.from_numpy(squares_to_tokens(first_legal))[..., None], 5.0)
    assert legal_top1(logits, legal) == 1.0


@pytest.mark.slow
def test_train_ci_preset_writes_a_loadable_model(tmp_path):
    res = runner.run_experiment("train-othello-gpt", out=tmp_path / "r", preset="ci", out_model=str(tmp_path / "m"))
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert 0.0 <= metrics["legal_top1_final_2000_games"] <= 1.0 and metrics["games_seen"] == 40 * 32
    handle = interp.load_model(str(tmp_path / "m"))
    assert handle.info.d_vocab == 61 and handle.info.n_layers == 2
    assert (tmp_path / "m" / "README.md").read_text().startswith("# othello-gpt")
    assert not res.skipped


@pytest.mark.slow
def test_world_model_ci_preset_on_the_shipped_model(tmp_path):
    if "othello-gpt" not in interp.bundled_models():
        pytest.skip("models/othello-gpt is not present")
    out = tmp_path / "r"
    runner.run_experiment("othello-world-model", out=out, preset="ci")
    m = json.loads((out / "metrics.json").read_text())
    # the shipped CPU-trained model reproduces the ordering (relative > absolute > majority, far above a
    # random-init copy); the published ~99% level and the interventions are judged by the full run
    checks = {c["claim"]: c["passed"] for c in m["verdict"]["checks"]}
    assert checks["relative encoding beats absolute (black/white) at their best layers"] is True, m["verdict"]
    assert m["best_relative_accuracy"] > m["best_absolute_accuracy"] > m["majority_accuracy"]
    assert m["best_relative_accuracy"] > m["random_init_best_relative_accuracy"] + 0.05
    n_layers = interp.load_model("othello-gpt").info.n_layers
    assert len(m["relative_accuracy_by_layer"]) == len(m["layers"]) == n_layers + 1
    for name in ("probe_accuracy_by_layer", "board_by_layer", "intervention_example"):
        assert (out / "figures" / f"{name}.html").is_file()
    iv = m["intervention"]
    assert iv["n"] > 0 and 0 <= iv["shift_positive_rate"] <= 1 and 0 <= iv["control_shift_positive_rate"] <= 1


def test_shift_toward_counts_mass_moved_to_the_edited_boards_moves():
    from probes.probing.board_edits import shift_toward

    before = np.zeros(64)
    before[[1, 2, 3]] = [0.5, 0.3, 0.2]
    after = before.copy()
    after[[1, 2, 3]] = [0.2, 0.3, 0.5]  # 0.3 moved from square 1 (now illegal) to square 3 (newly legal)
    assert shift_toward(before, after, gained=[3], lost=[1]) == pytest.approx(0.6)
    assert shift_toward(after, before, gained=[3], lost=[1]) == pytest.approx(-0.6)
    assert shift_toward(before, after, gained=[], lost=[]) == 0.0


def test_world_model_refuses_a_text_model(tiny_gpt2_dir, tmp_path):
    with pytest.raises(InvalidInput, match="not an Othello-GPT"):
        runner.run_experiment("othello-world-model", out=tmp_path / "r", preset="ci", model=str(tiny_gpt2_dir))
