"""SAE folders in SAELens format: round trip, validation, damaged files, the SAEs beside a model."""
from __future__ import annotations

import json

import pytest
import torch

from interp.errors import InvalidInput
from learned.sae_files import CFG_FILE, WEIGHTS_FILE, list_saes, read_sae_dir, write_sae_dir


def _weights(d_in=4, d_sae=6):
    return {"W_enc": torch.randn(d_in, d_sae), "b_enc": torch.zeros(d_sae), "W_dec": torch.randn(d_sae, d_in),
            "b_dec": torch.zeros(d_in)}


def test_round_trip_and_listing(tmp_path):
    cfg = {"d_in": 4, "d_sae": 6, "hook_name": "blocks.0.hook_resid_pre", "architecture": "standard"}
    w = _weights()
    write_sae_dir(tmp_path / "saes" / "a", cfg, w, card="# card\n")
    got_cfg, got_w = read_sae_dir(tmp_path / "saes" / "a")
    assert got_cfg == cfg and all(torch.equal(got_w[k], w[k]) for k in w)
    assert json.loads((tmp_path / "saes" / "a" / CFG_FILE).read_text())["d_sae"] == 6
    assert (tmp_path / "saes" / "a" / "README.md").read_text() == "# card\n"
    assert [p.name for p in list_saes(tmp_path)] == ["a"]
    assert list_saes(tmp_path / "nowhere") == []
    assert not list((tmp_path / "saes" / "a").glob(".*tmp*"))  # no temporary files left behind


def test_inconsistent_or_damaged_folders_are_refused(tmp_path):
    cfg = {"d_in": 4, "d_sae": 6, "hook_name": "h"}
    with pytest.raises(InvalidInput, match="W_dec"):
        write_sae_dir(tmp_path / "x", cfg, dict(_weights(), W_dec=torch.zeros(5, 4)))
    with pytest.raises(InvalidInput, match="NaN"):
        write_sae_dir(tmp_path / "x", cfg, dict(_weights(), b_dec=torch.full((4,), float("nan"))))
    with pytest.raises(InvalidInput, match="not an SAE folder"):
        read_sae_dir(tmp_path / "missing")
    write_sae_dir(tmp_path / "y", cfg, _weights())
    (tmp_path / "y" / WEIGHTS_FILE).write_bytes(b"not safetensors")
    with pytest.raises(InvalidInput, match="damaged|corrupt"):
        read_sae_dir(tmp_path / "y")


@pytest.mark.parametrize("field, value, needle", [
    ("d_sae", "6", "d_sae"), ("d_sae", None, "d_sae"), ("d_sae", 1e9, "d_sae"), ("d_sae", 10**9, "d_sae"),
    ("d_in", [4], "d_in"), ("d_in", float("nan"), "d_in"), ("hook_name", 3, "hook_name"),
    ("apply_b_dec_to_input", "false", "apply_b_dec_to_input"), ("k", "4", "k"),
    ("architecture", "jumprelu", "jumprelu"),
    ("hook_layer", float("inf"), "hook_layer"), ("workbench", [1], "workbench"),
])
def test_cfg_fields_of_the_wrong_type_or_size_are_named_before_any_allocation(tmp_path, field, value, needle):
    cfg = {"d_in": 4, "d_sae": 6, "hook_name": "blocks.0.hook_resid_pre", "architecture": "topk", "k": 2}
    write_sae_dir(tmp_path / "ok", cfg, _weights())
    bad = dict(cfg, **{field: value})
    (tmp_path / "ok" / CFG_FILE).write_text(json.dumps(bad))
    with pytest.raises(InvalidInput, match=needle):
        read_sae_dir(tmp_path / "ok")


def test_a_fifo_in_place_of_the_weights_is_never_opened(tmp_path):
    import os

    cfg = {"d_in": 4, "d_sae": 6, "hook_name": "blocks.0.hook_resid_pre"}
    write_sae_dir(tmp_path / "f", cfg, _weights())
    (tmp_path / "f" / WEIGHTS_FILE).unlink()
    os.mkfifo(tmp_path / "f" / WEIGHTS_FILE)
    with pytest.raises(InvalidInput):
        read_sae_dir(tmp_path / "f")
