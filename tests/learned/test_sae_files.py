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
    with pytest.raises(InvalidInput, match="damaged"):
        read_sae_dir(tmp_path / "y")
