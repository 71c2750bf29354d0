"""gpt2-space-probe: offline it says "not checked"; its logic recovers planted coordinates on a tiny model."""
import json

import numpy as np
import torch

from experiments.core import runner
from interp import load_model


def test_offline_gpt2_is_not_checked(tmp_path):
    out = tmp_path / "r"
    runner.run_experiment("gpt2-space-probe", out=out, preset="ci")
    m = json.loads((out / "metrics.json").read_text())
    assert m["verdict"]["status"] == "not checked"
    assert "Hub" in m["verdict"]["reason"] and "error" in m
    assert "Could not load" in (out / "summary.md").read_text()


def test_recovers_planted_coordinates_on_a_tiny_model(tiny_gpt2_dir, tmp_path):
    handle = load_model(tiny_gpt2_dir)
    words = {w.lstrip("Ġ") for w in handle.tokenizer.get_vocab()}
    texts = sorted(w for w in words if w.isalpha())  # more distinct inputs than d_model (32) dimensions
    cap = handle.run(texts, read=["blocks.0.hook_resid_pre"])
    last = cap.batch.lengths - 1
    act = cap["blocks.0.hook_resid_pre"][torch.arange(len(texts)), last].numpy()  # [n, d]: embeddings only
    rng = np.random.default_rng(0)
    lat = act @ rng.normal(size=act.shape[1]) * 20
    lon = act @ rng.normal(size=act.shape[1]) * 50
    csv = tmp_path / "places.csv"
    rows = "".join(f'"{t}",{a:.6f},{o:.6f}\n' for t, a, o in zip(texts, lat, lon))
    csv.write_text("text,latitude,longitude\n" + rows)
    out = tmp_path / "r"
    runner.run_experiment("gpt2-space-probe", out=out, model=str(tiny_gpt2_dir), dataset=str(csv))
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_places"] == len(texts) > 100
    assert m["r2_by_layer"][0] > 0.95, m["r2_by_layer"]  # planted in the embedding output
    assert m["random_init_best_r2"] < 0.5
    assert m["verdict"]["status"] == "reproduced"
    assert (out / "figures" / "r2_by_layer.html").is_file()
