"""The experiment runner: atomic results under kills, skip/force, determinism, config overrides, CLI errors."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import experiments.core.runner as runner
from experiments import all_experiments, make_config
from experiments.core.registry import parse_sets
from experiments.core.results import list_results, read_result
from interp import InvalidInput

ROOT = Path(__file__).resolve().parents[2]
FILES = ("config.json", "metrics.json", "summary.md", "metadata.json")


def _assert_complete(out: Path) -> dict:
    for f in FILES:
        assert (out / f).is_file(), f"{f} missing from {out}"
    for f in ("config.json", "metrics.json", "metadata.json"):
        json.loads((out / f).read_text())  # parses: not half-written
    return json.loads((out / "metrics.json").read_text())


def test_model_anatomy_writes_complete_folder(tiny_gpt2_dir, tmp_path):
    out = tmp_path / "anatomy"
    res = runner.run_experiment("model-anatomy", model=str(tiny_gpt2_dir), out=out, preset="ci")
    assert not res.skipped
    metrics = _assert_complete(out)
    assert len(metrics["resid_norm"]) == 3 and len(metrics["attn_entropy"]) == 2
    assert metrics["verdict"]["status"] in ("smoke test passed", "smoke test failed")
    meta = json.loads((out / "metadata.json").read_text())
    for key in ("python", "torch", "transformer_lens", "git_commit", "seed", "device", "wall_time_s", "models"):
        assert key in meta
    from importlib import metadata
    assert meta["transformer_lens"] == metadata.version("transformer-lens")  # the installed one, never "unknown"
    assert meta["models"][0]["sha256"] and meta["models"][0]["name"] == str(tiny_gpt2_dir)
    assert (out / "figures" / "resid_norm.html").is_file() and (out / "figures" / "attn_entropy.html").is_file()
    assert "Verdict" in (out / "summary.md").read_text()
    assert read_result(out).verdict == metrics["verdict"]
    assert [r.path for r in list_results(tmp_path)] == [out]


def test_skip_then_force(tiny_gpt2_dir, tmp_path):
    out = tmp_path / "r"
    first = runner.run_experiment("model-anatomy", model=str(tiny_gpt2_dir), out=out, preset="ci")
    (out / "marker").write_text("written after the first run")
    again = runner.run_experiment("model-anatomy", model=str(tiny_gpt2_dir), out=out, preset="ci")
    assert again.skipped and "already exists" in again.message and again.verdict == first.verdict
    assert (out / "marker").is_file()  # skipped: the folder was not touched
    forced = runner.run_experiment("model-anatomy", model=str(tiny_gpt2_dir), out=out, preset="ci", force=True)
    assert not forced.skipped
    assert not (out / "marker").exists()  # a new folder was swapped in
    with pytest.raises(InvalidInput, match="different config"):
        runner.run_experiment("model-anatomy", model=str(tiny_gpt2_dir), out=out)  # not the ci preset


def test_same_seed_gives_identical_metrics(tiny_gpt2_dir, tmp_path):
    a = runner.run_experiment("model-anatomy", model=str(tiny_gpt2_dir), out=tmp_path / "a", preset="ci")
    b = runner.run_experiment("model-anatomy", model=str(tiny_gpt2_dir), out=tmp_path / "b", preset="ci")
    assert a.metrics == b.metrics


def test_crash_while_writing_keeps_previous_result(tiny_gpt2_dir, tmp_path, monkeypatch):
    out = tmp_path / "r"
    runner.run_experiment("model-anatomy", model=str(tiny_gpt2_dir), out=out, preset="ci")
    before = {f: (out / f).read_bytes() for f in FILES}

    def boom(*a, **k):
        raise RuntimeError("simulated crash after metrics.json, before summary.md")

    monkeypatch.setattr(runner, "_summary", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        runner.run_experiment("model-anatomy", model=str(tiny_gpt2_dir), out=out, preset="ci", force=True)
    assert {f: (out / f).read_bytes() for f in FILES} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging debris


def test_killed_between_renames_restores_previous(tiny_gpt2_dir, tmp_path):
    out = tmp_path / "r"
    runner.run_experiment("model-anatomy", model=str(tiny_gpt2_dir), out=out, preset="ci")
    dead_pid = 2 ** 22 + 12345  # above pid_max: certainly not alive
    os.replace(out, tmp_path / f".r.old-{dead_pid}")  # as if killed right after moving the old result aside
    res = runner.run_experiment("model-anatomy", model=str(tiny_gpt2_dir), out=out, preset="ci")
    assert res.skipped  # the previous complete result was restored, then found
    _assert_complete(out)


@pytest.mark.slow
def test_sigkill_at_any_moment_leaves_previous_or_complete(tiny_gpt2_dir, tmp_path):
    out = tmp_path / "r"
    cmd = [sys.executable, "-m", "experiments", "run", "model-anatomy", "--model", str(tiny_gpt2_dir),
           "--out", str(out), "--preset", "ci", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    baseline = _assert_complete(out)
    for delay in (0.5, 2.0, 4.0, 5.0, 6.0, 7.0, 9.0):
        proc = subprocess.Popen(cmd + ["--force"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        runner._clean_stale_staging(out)  # what the next run does first
        metrics = _assert_complete(out)
        assert metrics == baseline  # same seed: a finished re-run has the same numbers
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_config_overrides_and_presets():
    exp = all_experiments()["model-anatomy"]
    cfg = make_config(exp, preset="ci", overrides=parse_sets(["seed=7", "device=cpu"]), model="m")
    assert (cfg.seed, cfg.device, cfg.model, len(cfg.prompts)) == (7, "cpu", "m", 3)
    with pytest.raises(InvalidInput, match="no setting"):
        make_config(exp, overrides={"nope": "1"})
    with pytest.raises(InvalidInput, match="expected a whole number"):
        make_config(exp, overrides={"seed": "abc"})
    with pytest.raises(InvalidInput, match="no preset"):
        make_config(exp, preset="huge")
    with pytest.raises(InvalidInput, match="key=value"):
        parse_sets(["seed"])


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "experiments", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_cli_list_and_errors_without_traceback(tmp_path):
    listed = _cli("list")
    assert listed.returncode == 0 and "model-anatomy" in listed.stdout
    for args, needle in [(("run", "no-such-experiment"), "No experiment named"),
                         (("run", "model-anatomy", "--model", "gpt2", "--out", str(tmp_path / "x"), "--quiet"),
                          "cannot be reached"),
                         (("show", str(tmp_path)), "not a complete results folder")]:
        res = _cli(*args)
        assert res.returncode == 2, res.stderr
        assert needle in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "x").exists()
