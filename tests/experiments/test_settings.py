"""Typed run settings: every field documented and range-checked, cross-field rules, CLI help and one-line errors,
the runner restoring seed and threads, duplicate names refused, escape sequences stripped by `show`."""
from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
import torch

from experiments import all_experiments, make_config
from experiments.core import cli, runner
from experiments.core.registry import Experiment, RunResult, Verdict, parse_sets, register
from experiments.core.settings import RunSettings, field_help, setting, validate
from interp import InvalidInput


def test_every_setting_of_every_experiment_is_documented_and_its_defaults_valid():
    for name, exp in all_experiments().items():
        assert issubclass(exp.Config, RunSettings), f"{name}.Config does not subclass RunSettings"
        for field, _default, help_, _range in field_help(exp.Config):
            assert help_.strip(), f"{name}: setting {field} has no help"
        validate(exp.Config())  # the published defaults are valid
        for preset in exp.presets:
            make_config(exp, preset=preset)  # and so is every preset


@pytest.mark.parametrize("name, sets, needle", [
    ("train-text-lm", {"steps": "0"}, "steps=0"),
    ("train-text-lm", {"eval_every": "0"}, "eval_every=0"),
    ("train-text-lm", {"lr": "inf"}, "lr=inf"),
    ("train-text-lm", {"lr": "nan"}, "lr=nan"),
    ("train-text-lm", {"lr": "-1e-3"}, "lr=-0.001"),
    ("train-text-lm", {"n_head": "5"}, "n_head must divide n_embd"),
    ("train-text-lm", {"init_from": "/etc"}, "not a model directory"),
    ("train-text-lm", {"init_from": "/no/such/dir"}, "no such folder"),
    ("train-text-lm", {"data_dir": "/no/such/dir"}, "no such folder"),
    ("train-text-lm", {"copy_share": "0.7", "random_share": "0.7"}, "more than 1"),
    ("train-othello-gpt", {"n_head": "0"}, "n_head=0"),
    ("induction-phase-change", {"n_heads": "0"}, "n_heads=0"),
    ("induction-phase-change", {"n_heads": "3"}, "not divisible by n_heads"),
    ("induction-phase-change", {"seg_min": "9", "seg_max": "3"}, "seg_min 9 is larger than seg_max 3"),
    ("induction-phase-change", {"data": "wiki"}, "one of tiled-random, stdlib"),
    ("model-anatomy", {"seed": "-1"}, "0 .. 4294967295"),
    ("model-anatomy", {"seed": str(2**40)}, "0 .. 4294967295"),
    ("model-anatomy", {"seed": "1.5"}, "whole number"),
    ("model-anatomy", {"seed": "1e400"}, "whole number"),
    ("model-anatomy", {"device": "cuda:7"}, "device"),
    ("model-anatomy", {"device": "tpu"}, "not a device"),
    ("model-anatomy", {"threads": "-2"}, "threads=-2"),
    ("model-anatomy", {"prompts": ""}, "at least one non-empty prompt"),
    ("gpt2-induction-heads", {"expected_induction": "5.x"}, "not a head"),
    ("gpt2-induction-heads", {"ablation_mode": "resample"}, "one of zero, mean"),
    ("gpt2-space-probe", {"template": "{nome}"}, "not a template"),
    ("gpt2-space-probe", {"dataset": "/no/such.csv"}, "no such file"),
    ("othello-world-model", {"l2_grid": "0"}, "l2_grid"),
    ("tuned-lens", {"lens_dir": "/proc/version/x"}, "lens_dir"),
])
def test_bad_settings_are_refused_naming_the_field(name, sets, needle):
    with pytest.raises(InvalidInput, match=None) as err:
        make_config(all_experiments()[name], overrides=sets)
    assert needle in str(err.value), str(err.value)


def test_flag_and_set_must_agree_and_a_key_is_set_once():
    exp = all_experiments()["model-anatomy"]
    with pytest.raises(InvalidInput, match="disagree"):
        make_config(exp, overrides={"seed": "4"}, seed=3)
    assert make_config(exp, overrides={"seed": "3"}, seed=3).seed == 3  # the same value twice is no conflict
    with pytest.raises(InvalidInput, match="given twice"):
        parse_sets(["seed=1", "seed=2"])


def test_cross_field_rule_and_ranges_on_a_custom_config():
    @dataclasses.dataclass
    class C(RunSettings):
        lo: int = setting(1, "low end", low=0)
        hi: int = setting(2, "high end", low=0)
        rate: float = setting(0.1, "a rate", positive=True)

        def check(self) -> None:
            super().check()
            if self.lo > self.hi:
                raise InvalidInput("lo must be <= hi")

    validate(C())
    for bad in (C(lo=3, hi=2), C(rate=0.0), C(rate=float("inf")), C(lo=-1), C(seed=2**32), C(lo=True)):
        with pytest.raises(InvalidInput):
            validate(bad)
    rows = {name: (default, rng) for name, default, _h, rng in field_help(C)}
    assert rows["seed"] == (0, "0 .. 4294967295") and rows["rate"][1] == "> 0" and rows["lo"][1] == ">= 0"


def test_register_refuses_a_second_experiment_of_the_same_name():
    taken = next(iter(all_experiments()))
    with pytest.raises(ValueError, match="Two experiments are named"):
        @register
        class Impostor(Experiment):  # noqa: F841 - the decorator is what is tested
            name = taken
            title = "impostor"
            Config = RunSettings


class _Leaky(Experiment):
    """Not registered: changes the global RNG state and the thread count, as an experiment might."""

    name, title, Config = "leaky-test", "test", RunSettings
    seen: dict = {}

    def run(self, config, ctx):
        self.seen.update(threads=torch.get_num_threads(), draw=torch.rand(1).item(), np=np.random.rand())
        torch.set_num_threads(1)
        np.random.seed(123)
        return RunResult({"x": 1}, Verdict.not_checked("test"), "")


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def _draws() -> tuple[float, float, float]:
    return torch.rand(1).item(), float(np.random.rand()), random.random()


def test_runner_applies_and_restores_seed_and_threads(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "get_experiment", lambda name: _Leaky)
    before_threads = torch.get_num_threads()
    want_threads = 2 if before_threads != 2 else 3
    _seed_all(999)
    runner.run_experiment("leaky-test", out=tmp_path / "r", overrides={"threads": str(want_threads), "seed": "5"})
    after = _draws()
    assert torch.get_num_threads() == before_threads  # restored, although run() set 1
    _seed_all(999)
    assert after == _draws()  # the caller's RNG states are as they were (run() reseeded numpy)
    assert _Leaky.seen["threads"] == want_threads  # applied during run()
    torch.manual_seed(5)
    assert _Leaky.seen["draw"] == torch.rand(1).item()  # run() saw torch seeded from config.seed


def test_out_checks_happen_before_any_work(tmp_path, monkeypatch):
    called = []
    monkeypatch.setattr(_Leaky, "run", lambda self, c, ctx: called.append(1))
    monkeypatch.setattr(runner, "get_experiment", lambda name: _Leaky)
    (tmp_path / "file").write_text("x")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "metadata.json").write_text("{}")
    (damaged / "config.json").write_text("{not json")
    (damaged / "metrics.json").write_text("{}")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    for out, needle in [(tmp_path / "file", "is a file"), (tmp_path / ("a" * 300), "too long"),
                        (damaged, "damaged result"), (other, "files the workbench did not write"),
                        (ro / "x", "cannot write")]:
        with pytest.raises(InvalidInput, match=needle):
            runner.run_experiment("leaky-test", out=out)
    assert not called and (other / "notes.txt").read_text() == "mine"


def test_cli_help_lists_every_setting_with_help_default_and_range(capsys):
    exp = all_experiments()["train-text-lm"]
    assert cli.main(["run", "train-text-lm", "--help"]) == 0
    out = capsys.readouterr().out
    for name, _default, help_, _rng in field_help(exp.Config):
        assert f"  {name} (" in out and help_.split()[0] in out
    assert "steps (int, default 2000, 1 .. 10000000)" in out
    assert cli.main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "steps=2000" in listed and "run train-text-lm --help" in listed


@pytest.mark.parametrize("argv, needle", [
    (["run", "train-text-lm", "--set", "steps=0", "--quiet"], "steps=0"),
    (["run", "model-anatomy", "--seed", "-1", "--quiet"], "seed=-1"),
    (["run", "model-anatomy", "--seed", "3", "--set", "seed=4", "--quiet"], "disagree"),
    (["run", "model-anatomy", "--seed", "x"], "invalid int value"),
    (["run", "no-such-experiment"], "No experiment named"),
    (["run"], "required"),
    (["frobnicate"], "invalid choice"),
])
def test_cli_errors_are_one_line_exit_2(argv, needle, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_show_strips_terminal_escape_sequences(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    for name in ("config.json", "metrics.json", "metadata.json"):
        (out / name).write_text("{}")
    (out / "summary.md").write_text("# Title\x1b[2J\x1b]0;pwned\x07 red:\x1b[31mX\x1b[0m bell\x07 \x9b1m\ttab\nnext\n")
    assert cli.main(["show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert shown == "# Title red:X bell 1m\ttab\nnext\n\n"
    assert "\x1b" not in shown and "\x07" not in shown
