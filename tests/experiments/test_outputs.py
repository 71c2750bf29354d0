"""The one output rule: an experiment writes only into a new (or empty) folder or one holding an earlier result of
the same experiment (replaced with --force); any other existing folder is refused before work starts and is left
byte-identical."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from experiments.core.outputs import check_output_dir, writer_of
from experiments.core.runner import run_experiment
from interp.errors import InvalidInput
from learned.sidecars import write_sidecar


def _tree(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file (and the folder's own names): equal trees are byte-identical."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


@pytest.fixture
def unrelated(tmp_path) -> Path:
    d = tmp_path / "my-documents"
    (d / "sub").mkdir(parents=True)
    (d / "config.json").write_text('{"mine": true}\n')
    (d / "README.md").write_text("my notes\n")
    (d / "sub" / "data.bin").write_bytes(bytes(range(256)))
    return d


@pytest.mark.parametrize("name, setting", [("grokking", "out_model"), ("train-text-lm", "out_model"),
                                           ("train-othello-gpt", "out_model"), ("train-sae", "out"),
                                           ("tuned-lens", "lens_dir"), ("induction-phase-change", "out_models")])
def test_an_existing_unrelated_folder_is_refused_before_any_work_and_left_byte_identical(name, setting, unrelated,
                                                                                        tmp_path):
    target = unrelated
    if name == "induction-phase-change":  # a parent: the rule applies to the model folder written in it
        (unrelated / "attn-only-2l").mkdir()
        (unrelated / "attn-only-2l" / "notes.txt").write_text("not a model\n")
    before = _tree(unrelated)
    with pytest.raises(InvalidInput, match="already exists and holds files the workbench did not write"):
        run_experiment(name, preset="ci", overrides={setting: str(target)}, out=tmp_path / "r", force=True)
    assert _tree(unrelated) == before
    assert not (tmp_path / "r").exists()  # refused before the run: no results folder either


def test_an_earlier_artefact_of_the_same_experiment_is_replaced_only_with_force(tmp_path):
    model = tmp_path / "grokking-p23"
    model.mkdir()
    (model / "README.md").write_text("- Command: `python -m experiments run grokking --set p=23`\n")
    assert writer_of(model) == "grokking"
    with pytest.raises(InvalidInput, match="(?s)earlier result of grokking.*--force"):
        check_output_dir(model, "grokking", "Setting out_model", force=False)
    assert check_output_dir(model, "grokking", "Setting out_model", force=True) is True
    with pytest.raises(InvalidInput, match="holds a result of grokking"):  # another experiment's model: never
        check_output_dir(model, "train-text-lm", "Setting out_model", force=True)
    assert check_output_dir(tmp_path / "new", "grokking", "x", force=False) is False
    (tmp_path / "empty").mkdir()
    assert check_output_dir(tmp_path / "empty", "grokking", "x", force=False) is False


def test_the_results_folder_follows_the_same_rule(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "metadata.json").write_text(json.dumps({"experiment": "model-anatomy"}))
    with pytest.raises(InvalidInput, match="holds a result of model-anatomy"):
        run_experiment("logit-lens", preset="ci", out=other, force=True)


def test_the_bundled_artefacts_are_recognised_as_their_experiments_results():
    from interp.loading import BUNDLED_DIR, bundled_models

    want = {"stdlib-gpt2": "train-text-lm", "code-gpt2": "train-text-lm", "grokking-p113": "grokking",
            "attn-only-2l": "induction-phase-change", "othello-gpt": "train-othello-gpt"}
    for model, experiment in want.items():
        if model in bundled_models():
            assert writer_of(BUNDLED_DIR / model) == experiment, model
    for sae in sorted(BUNDLED_DIR.glob("*/saes/*")):
        assert writer_of(sae) == "train-sae", sae


def test_train_sae_inside_models_obeys_its_own_folder_rule():
    from experiments.builds.train_sae import check_sae_out
    from interp.loading import BUNDLED_DIR

    for bad in ("saes/x", "stdlib-gpt2/oops", "stdlib-gpt2/saes/a/b", "no-such-model/saes/x", "code-gpt2/saes/x"):
        with pytest.raises(InvalidInput, match="models/stdlib-gpt2/saes/<name>|models/stdlib-gpt2/saes"):
            check_sae_out(BUNDLED_DIR / bad, "stdlib-gpt2")
    check_sae_out(BUNDLED_DIR / "stdlib-gpt2" / "saes" / "new-sae", "stdlib-gpt2")
    check_sae_out(Path("/tmp/anywhere/sae"), "stdlib-gpt2")  # outside models/: only the output rule


def test_a_sidecar_never_replaces_a_folder_that_is_not_one(unrelated, tmp_path):
    before = _tree(unrelated)
    with pytest.raises(InvalidInput, match="not a cfg.json \\+ w.safetensors folder"):
        write_sidecar(unrelated, {"a": 1}, {"w": torch.zeros(2)}, "w.safetensors", config_file="cfg.json")
    assert _tree(unrelated) == before
    first = write_sidecar(tmp_path / "lens", {"a": 1}, {"w": torch.zeros(2)}, "w.safetensors", config_file="cfg.json")
    write_sidecar(first, {"a": 2}, {"w": torch.ones(2)}, "w.safetensors", config_file="cfg.json")  # its own kind
    assert json.loads((first / "cfg.json").read_text()) == {"a": 2}
