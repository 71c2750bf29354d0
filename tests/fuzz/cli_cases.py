"""The CLI part of the sweep: generated bad invocations of ``python -m experiments``, each run as a subprocess
with a timeout. A bad input must end with exit status 2 and one line on stderr saying what to do (no traceback,
no terminal escapes); ``run NAME --help`` and ``show`` of a summary with escapes must work and print clean text.

Cases are generated from the registry: every experiment's numeric settings get values below and above their
declared range and non-numbers, its closed-set settings an unknown choice, its path settings missing or wrong
paths; plus ``--out``/``--seed``/``--device``/name/preset/``--set`` syntax cases and ``show`` on broken folders.
Placeholders in arguments (``{tmp}``, ``{file}``, ``{ro}``, ``{damaged}``, ...) are made fresh per case in a temp
folder by :func:`run_case`; nothing is written outside it.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.fuzz import ROOT, Case, Outcome, cap

TIMEOUT_S = 120.0
#: Cases in the test suite's fast subset (one per family; each costs one interpreter start).
FAST = {"out.file", "out.read_only", "out.name_300", "out.damaged_result", "seed.flag.-1", "seed.flag.2^40",
        "set.train-text-lm.steps.below", "set.train-text-lm.eval_every.below",
        "set.induction-phase-change.n_heads.below", "cross.seg_min_gt_seg_max", "path.train-text-lm.init_from.etc",
        "set.train-text-lm.lr.inf", "show.escapes", "help.train-text-lm", "name.unknown", "conflict.seed",
        "backend.unknown", "backend.ndif.no_key", "backend.ndif.offline", "backend.nnsight.native",
        "sweep.grid.no_equals", "sweep.grid.out_of_range", "sweep.seeds.reversed", "sweep.address.closed_port"}
#: NDIF and the backends: a failure must come within this many seconds of the command starting its work
#: (in-process; a subprocess adds the interpreter's start and imports).
FAIL_FAST_S = 5.0
#: Per experiment: how many numeric settings get values below/above their range, and how many also get
#: non-numbers, inf/nan and fractions (each case starts an interpreter: ~2.5 s of CPU).
RANGE_PROBES, TYPE_PROBES = 4, 1
#: Which numeric settings are probed first (then the rest in declaration order).
PRIORITY = ("steps", "lr", "eval_every", "n_heads", "n_head", "seg_min", "seq_len", "n_ctx", "batch_size", "d_model",
            "n_embd", "n_layer", "n_layers")


def _experiments() -> dict[str, type]:
    from experiments import all_experiments

    return all_experiments()


def _num_fields(exp) -> Iterator[tuple[str, Any, dict]]:
    for f in dataclasses.fields(exp.Config):
        default = getattr(exp.Config(), f.name)
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            yield f.name, default, dict(f.metadata or {})


def _run(name: str, *args: str) -> list[str]:
    return ["run", name, "--quiet", *args]


def cases() -> list[Case]:
    """Deterministic: the same names and params on every call."""
    out: list[Case] = []

    def add(group: str, name: str, argv: list[str], expect: str = "exit2", **params: Any) -> None:
        out.append(Case("cli", group, name, expect, {"argv": argv, **params}, timeout_s=TIMEOUT_S,
                        fast=name in FAST))

    exps = _experiments()
    # --- the output folder
    cheap = "model-anatomy"
    add("out", "out.file", _run(cheap, "--out", "{file}"))
    add("out", "out.read_only", _run(cheap, "--out", "{ro}/result"))
    add("out", "out.read_only_itself", _run(cheap, "--out", "{ro}"))
    add("out", "out.name_300", _run(cheap, "--out", "{tmp}/" + "n" * 300))
    add("out", "out.name_230", _run(cheap, "--out", "{tmp}/" + "n" * 230))
    add("out", "out.path_5000", _run(cheap, "--out", "{tmp}/" + "/".join(["d" * 200] * 25)))
    add("out", "out.under_a_file", _run(cheap, "--out", "{file}/result"))
    add("out", "out.damaged_result", _run(cheap, "--out", "{damaged}"))
    add("out", "out.metrics_a_list", _run(cheap, "--out", "{metrics_list}"))
    add("out", "out.not_results", _run(cheap, "--out", "{notes}"))
    add("out", "out.empty_string", _run(cheap, "--out", ""))
    add("out", "out.dev_null", _run(cheap, "--out", "/dev/null"))
    add("out", "out.proc", _run(cheap, "--out", "/proc/self/result"))
    # --- seeds
    for v in ("-1", "4294967296", "1099511627776", "1.5", "abc", "", "0x10", "1e3"):
        label = {"1099511627776": "2^40", "4294967296": "2^32", "": "empty"}.get(v, v)
        add("seed", f"seed.flag.{label}", _run(cheap, "--seed", v))
    for v in ("-1", "4294967296", "1e20", "nan", "inf", "1.5", "abc", "", "true"):
        add("seed", f"seed.set.{v or 'empty'}", _run(cheap, "--set", f"seed={v}"))
    add("conflict", "conflict.seed", _run(cheap, "--seed", "3", "--set", "seed=4"))
    add("conflict", "conflict.device", _run(cheap, "--device", "cpu", "--set", "device=cuda"))
    add("conflict", "conflict.model", _run(cheap, "--model", "a", "--set", "model=b"))
    add("conflict", "conflict.set_twice", _run(cheap, "--set", "seed=1", "--set", "seed=2"))
    # --- devices
    for v in ("cuda", "cuda:0", "cuda:x", "mps", "tpu", "", "cpu:0", "d" * 500, "\x1b[31mcpu"):
        label = {"": "empty", "d" * 500: "long", "\x1b[31mcpu": "escape"}.get(v, v)
        add("device", f"device.{label}", _run(cheap, "--device", v))
    # --- backends (bridge, nnsight, ndif); NDIF is never reachable here: every failure is one line, in seconds
    hosted = "openai-community/gpt2"
    no_key = {"NDIF_API_KEY": None, "NDIF_HOST": None}
    offline = {"NDIF_API_KEY": "not-a-real-key", "NDIF_HOST": "http://127.0.0.1:9"}  # nothing listens there
    for v in ("nnsite", "NDIF", "", "bridge;rm", "\x1b[31mndif"):
        label = {"": "empty", "nnsite": "unknown", "\x1b[31mndif": "escape"}.get(v, v)
        add("backend", f"backend.{label}", _run(cheap, "--backend", v))
    add("backend", "backend.conflict", _run(cheap, "--backend", "nnsight", "--set", "backend=bridge"))
    add("backend", "backend.ndif.no_key", _run(cheap, "--backend", "ndif", "--model", hosted), env=no_key,
        fail_fast=True, says="NDIF_API_KEY")
    add("backend", "backend.ndif.offline", _run(cheap, "--backend", "ndif", "--model", hosted), env=offline,
        fail_fast=True, says="cannot be reached")
    add("backend", "backend.ndif.bad_host", _run(cheap, "--backend", "ndif", "--model", hosted),
        env={"NDIF_API_KEY": "k", "NDIF_HOST": "ftp://example.org"}, fail_fast=True, says="NDIF_HOST")
    add("backend", "backend.ndif.local_model", _run(cheap, "--backend", "ndif"), env=offline, fail_fast=True,
        says="Hub id")
    add("backend", "backend.ndif.a_directory", _run(cheap, "--backend", "ndif", "--model", "{tmp}"), env=offline,
        fail_fast=True)
    add("backend", "backend.ndif.bad_hub_name", _run(cheap, "--backend", "ndif", "--model", "a/b/c"), env=offline,
        fail_fast=True)
    add("backend", "backend.nnsight.native", _run(cheap, "--backend", "nnsight", "--model", "attn-only-1l"),
        says="TransformerLens-native")
    # --- names, presets, --set syntax
    add("name", "name.unknown", ["run", "no-such-experiment"])
    add("name", "name.300", ["run", "x" * 300])
    add("name", "name.escape", ["run", "\x1b[2Jevil"])
    add("name", "name.missing", ["run"])
    add("name", "name.command", ["frobnicate"])
    add("name", "name.no_command", [])
    add("name", "preset.unknown", _run(cheap, "--preset", "huge"))
    add("name", "preset.empty", _run(cheap, "--preset", ""))
    add("syntax", "set.no_equals", _run(cheap, "--set", "seed"))
    add("syntax", "set.no_key", _run(cheap, "--set", "=5"))
    add("syntax", "set.unknown_key", _run(cheap, "--set", "nope=1"))
    add("syntax", "set.key_300", _run(cheap, "--set", "k" * 300 + "=1"))
    add("syntax", "flag.unknown", _run(cheap, "--bogus"))
    add("syntax", "model.not_taken", _run("train-text-lm", "--model", "gpt2"))
    add("model", "model.missing_dir", _run(cheap, "--model", "{tmp}/no-such-model"))
    add("model", "model.dir_without_weights", _run(cheap, "--model", "{tmp}"))
    add("model", "model.a_file", _run(cheap, "--model", "{file}"))
    add("model", "model.etc", _run(cheap, "--model", "/etc"))
    # --- every experiment's numeric settings: below / above the range, not numbers
    for name, exp in exps.items():
        fields = [f for f in _num_fields(exp) if f[0] not in ("seed", "threads")]
        fields.sort(key=lambda f: PRIORITY.index(f[0]) if f[0] in PRIORITY else len(PRIORITY))
        for i, (field, default, meta) in enumerate(fields):
            low, high = (meta.get("low"), meta.get("high")) if i < RANGE_PROBES or field == "lr" else (None, None)
            if meta.get("positive") and low is None and (i < RANGE_PROBES or field == "lr"):
                add("set", f"set.{name}.{field}.zero", _run(name, "--set", f"{field}=0"))
            if low is not None:
                below = low - 1 if isinstance(default, int) else low - abs(low) - 1.0
                add("set", f"set.{name}.{field}.below", _run(name, "--set", f"{field}={below:g}"))
            if high is not None:
                above = high + 1 if isinstance(default, int) else high * 2 + 1
                add("set", f"set.{name}.{field}.above", _run(name, "--set", f"{field}={above:.17g}"))
            if i >= TYPE_PROBES and field != "lr":
                continue
            add("set", f"set.{name}.{field}.text", _run(name, "--set", f"{field}=many"))
            if isinstance(default, float):
                add("set", f"set.{name}.{field}.inf", _run(name, "--set", f"{field}=inf"))
                add("set", f"set.{name}.{field}.nan", _run(name, "--set", f"{field}=nan"))
            else:
                add("set", f"set.{name}.{field}.fraction", _run(name, "--set", f"{field}=2.5"))
        for f in dataclasses.fields(exp.Config):
            meta = f.metadata or {}
            default = getattr(exp.Config(), f.name)
            if meta.get("choices"):
                add("choice", f"choice.{name}.{f.name}", _run(name, "--set", f"{f.name}=no-such-choice"))
            if isinstance(default, bool):
                add("bool", f"bool.{name}.{f.name}", _run(name, "--set", f"{f.name}=maybe"))
            kind = meta.get("path")
            if kind in ("dir", "file", "model_dir"):
                add("path", f"path.{name}.{f.name}.missing", _run(name, "--set", f"{f.name}={{tmp}}/missing"))
            if kind == "model_dir":
                add("path", f"path.{name}.{f.name}.etc", _run(name, "--set", f"{f.name}=/etc"))
            if kind == "dir":
                add("path", f"path.{name}.{f.name}.a_file", _run(name, "--set", f"{f.name}={{file}}"))
            if kind == "out":
                add("path", f"path.{name}.{f.name}.a_file", _run(name, "--set", f"{f.name}={{file}}"))
                add("path", f"path.{name}.{f.name}.read_only", _run(name, "--set", f"{f.name}={{ro}}/x"))
    # --- rules that tie settings together
    add("cross", "cross.seg_min_gt_seg_max", _run("induction-phase-change", "--set", "seg_min=9", "--set",
                                                  "seg_max=3"))
    add("cross", "cross.seg_max_ge_seq_len", _run("induction-phase-change", "--set", "seg_max=200"))
    add("cross", "cross.phase_heads_divide", _run("induction-phase-change", "--set", "n_heads=3"))
    add("cross", "cross.text_heads_divide", _run("train-text-lm", "--set", "n_head=5"))
    add("cross", "cross.othello_heads_divide", _run("train-othello-gpt", "--set", "n_head=7"))
    add("cross", "cross.copy_shares", _run("train-text-lm", "--set", "copy_share=0.6", "--set", "random_share=0.6"))
    add("cross", "cross.bad_head", _run("gpt2-induction-heads", "--set", "expected_induction=5.x"))
    add("cross", "cross.template", _run("gpt2-space-probe", "--set", "template={nome}"))
    add("cross", "cross.no_prompts", _run(cheap, "--set", "prompts="))
    add("cross", "cross.l2_zero", _run("othello-world-model", "--set", "l2_grid=0"))
    # --- the one output rule: a folder-writing setting pointed at the user's own folder is refused, untouched
    for name, setting in (("grokking", "out_model"), ("train-text-lm", "out_model"), ("train-othello-gpt", "out_model"),
                          ("train-sae", "out"), ("tuned-lens", "lens_dir"), ("induction-phase-change", "out_models")):
        target = "{tmp}/parent" if setting == "out_models" else "{notes}"
        add("outputs", f"outputs.{name}.{setting}.existing", _run(name, "--preset", "ci", "--force", "--set",
                                                                  f"{setting}={target}"), keep=True)
        add("outputs", f"outputs.{name}.{setting}.system", _run(name, "--preset", "ci", "--set", f"{setting}=/etc"))
    add("outputs", "outputs.train-sae.out.models_saes", _run("train-sae", "--set", "out=models/saes/x"))
    add("outputs", "outputs.train-sae.out.other_model", _run("train-sae", "--set", "out=models/code-gpt2/saes/x"))
    add("outputs", "outputs.out.another_experiment", _run(cheap, "--out", "{other_result}"))
    # --- list settings are checked item by item; every number has an upper bound
    for name, setting, raw in (("sae-ground-truth", "size_ratios", "1,nan"),
                               ("sae-ground-truth", "size_ratios", "1,100"),
                               ("othello-world-model", "l2_grid", "0.001,-1"),
                               ("attribution-vs-activation-patching", "edge_ks", "10,0"),
                               ("toy-superposition", "sweep_features", "200000"),
                               ("sae-ground-truth", "n_features", "1e9"), ("train-sae", "lr", "nan"),
                               ("grokking", "weight_decay", "-1"), ("grokking", "seed", "4294967296")):
        add("items", f"items.{name}.{setting}.{raw}", _run(name, "--set", f"{setting}={raw}"))
    # --- sweeps: grids, seed ranges, addresses, cluster sizes (all refused before any Ray cluster starts)
    for name, argv in _sweep_cases().items():
        add("sweep", name, argv)
    # --- show
    add("show", "show.missing", ["show", "{tmp}/nothing"])
    add("show", "show.a_file", ["show", "{file}"])
    add("show", "show.metadata_list", ["show", "{metadata_list}"])
    add("show", "show.binary_config", ["show", "{binary_config}"])
    add("show", "show.no_summary", ["show", "{no_summary}"], ok_if="missing")  # exit 2, or a note saying so
    add("show", "show.escapes", ["show", "{escapes}"], expect="ok", check="clean_summary")
    # --- help for every experiment: every setting listed
    for name in exps:
        add("help", f"help.{name}", ["run", name, "--help"], expect="ok", check="help", experiment=name)
    return out


def _sweep_cases() -> dict[str, list[str]]:
    """Bad ``sweep`` invocations of the ICL cell experiment: each must be refused in one line, before Ray starts."""
    cell = ["sweep", "icl-emergence-cell", "--quiet"]
    ok = ["--grid", "repeat_share=0,1", "--seeds", "0-1"]
    out = {
        "sweep.grid.no_equals": cell + ["--grid", "repeat_share"],
        "sweep.grid.no_key": cell + ["--grid", "=0,1"],
        "sweep.grid.empty_value": cell + ["--grid", "repeat_share=0,,1"],
        "sweep.grid.trailing_comma": cell + ["--grid", "repeat_share=0,1,"],
        "sweep.grid.value_twice": cell + ["--grid", "repeat_share=1,1"],
        "sweep.grid.key_twice": cell + ["--grid", "steps=1", "--grid", "steps=2"],
        "sweep.grid.unknown_key": cell + ["--grid", "nope=1,2"],
        "sweep.grid.seed": cell + ["--grid", "seed=0,1"],
        "sweep.grid.out_of_range": cell + ["--grid", "repeat_share=0,2"],
        "sweep.grid.not_a_number": cell + ["--grid", "steps=a,b"],
        "sweep.grid.fraction": cell + ["--grid", "steps=10,2.5"],
        "sweep.grid.cross_rule": cell + ["--grid", "span_len=4,40"],
        "sweep.grid.also_set": cell + ["--grid", "steps=1,2", "--set", "steps=3"],
        "sweep.grid.list_setting": ["sweep", "icl-emergence-vs-structure", "--grid", "shares=0"],
        "sweep.grid.too_many_cells": cell + ["--grid", "steps=" + ",".join(map(str, range(1, 201))), "--seeds",
                                             "0-99"],
        "sweep.grid.escape": cell + ["--grid", "\x1b[2Jrepeat_share=0"],
        "sweep.grid.key_300": cell + ["--grid", "k" * 300 + "=1"],
        "sweep.set.seed": cell + ok[:2] + ["--set", "seed=3"],
        "sweep.name.unknown": ["sweep", "no-such-experiment", *ok],
        "sweep.name.missing": ["sweep"],
        "sweep.preset.unknown": cell + ok + ["--preset", "huge"],
        "sweep.out.file": cell + ok + ["--out", "{file}"],
        "sweep.out.not_a_sweep": cell + ok + ["--out", "{notes}"],
        "sweep.out.read_only": cell + ok + ["--out", "{ro}/sweep"],
        "sweep.out.empty": cell + ok + ["--out", ""],
        "sweep.cpus.zero": cell + ok + ["--cpus", "0"],
        "sweep.cpus.text": cell + ok + ["--cpus", "two"],
        "sweep.cpus.with_address": cell + ok + ["--cpus", "2", "--address", "auto"],
        "sweep.cpus_per_cell.zero": cell + ok + ["--cpus-per-cell", "0"],
        "sweep.cpus_per_cell.huge": cell + ok + ["--cpus-per-cell", "100000"],
    }
    for label, text in {"empty": "", "blank": "   ", "reversed": "4-0", "negative": "-1", "letters": "a-b",
                        "2^32": "4294967296", "too_many": "0-5000", "twice": "1,1", "fraction": "1.5",
                        "open_range": "0-", "dash": "-", "escape": "\x1b[31m0"}.items():
        out[f"sweep.seeds.{label}"] = cell + ["--grid", "repeat_share=0,1", "--seeds", text]
    for label, text in {"empty": "", "blank": "  ", "no_port": "localhost", "http": "http://127.0.0.1:6379",
                        "port_99999": "127.0.0.1:99999", "bad_ipv6": "[zz::1]:6379", "closed_port": "127.0.0.1:1",
                        "unknown_host": "no-such-host.invalid:6379", "long": "h" * 5000 + ":6379",
                        "escape": "\x1b[2J:6379"}.items():
        out[f"sweep.address.{label}"] = cell + ok + ["--address", text]
    return out


# ----------------------------------------------------------------------------- fixtures and judging


def _fixtures(tmp: Path) -> dict[str, str]:
    """The placeholders' files and folders, made fresh in ``tmp``."""
    (tmp / "file").write_text("a plain file\n")
    ro = tmp / "ro"
    ro.mkdir()
    ro.chmod(0o555)

    def result_dir(name: str, **files: bytes | str) -> str:
        d = tmp / name
        d.mkdir()
        base = {"config.json": "{}", "metrics.json": "{}", "metadata.json": "{}", "summary.md": "# ok\n"}
        for fname, data in {**base, **files}.items():
            if data is None:
                continue
            path = d / fname
            path.write_bytes(data) if isinstance(data, bytes) else path.write_text(data)
        return str(d)

    notes = tmp / "notes"
    notes.mkdir()
    (notes / "mine.txt").write_text("keep me")
    (notes / "README.md").write_text("my notes\n")
    for sub in ("attn-only-2l", "attn-only-1l"):  # a parent whose model folders are the user's own
        (tmp / "parent" / sub).mkdir(parents=True)
        (tmp / "parent" / sub / "mine.txt").write_text("keep me")
    other = tmp / "other_result"
    other.mkdir()
    (other / "metadata.json").write_text('{"experiment": "logit-lens"}')
    return {
        "tmp": str(tmp), "file": str(tmp / "file"), "ro": str(ro), "notes": str(notes), "other_result": str(other),
        "damaged": result_dir("damaged", **{"config.json": "{not json"}),
        "metrics_list": result_dir("metrics_list", **{"metrics.json": "[1, 2]"}),
        "metadata_list": result_dir("metadata_list", **{"metadata.json": "[]"}),
        "binary_config": result_dir("binary_config", **{"config.json": b"\xff\xfe\x00garbage"}),
        "no_summary": result_dir("no_summary", **{"summary.md": None}),
        "escapes": result_dir("escapes", **{"summary.md": "# T\x1b[2J\x1b]0;title\x07 \x1b[31mred\x1b[0m\n"}),
    }


def _fill(arg: str, fx: dict[str, str]) -> str:
    for key, value in fx.items():
        arg = arg.replace("{" + key + "}", value)
    return arg


def _check(case: Case, stdout: str) -> str | None:
    if case.params.get("check") == "clean_summary":
        if "\x1b" in stdout or "\x07" in stdout:
            return "escape sequences reached the terminal"
        return None if "red" in stdout else "summary text missing"
    if case.params.get("check") == "help":
        exp = _experiments()[case.params["experiment"]]
        missing = [f.name for f in dataclasses.fields(exp.Config) if f"  {f.name} (" not in stdout]
        return f"help lacks settings {missing}" if missing else None
    return None


def judge_process(case: Case, rc: int, stdout: str, stderr: str, seconds: float) -> Outcome:
    """Exit 2 with one clean stderr line for a bad input; 0 with the case's check for a good one."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    if rc < 0:
        return Outcome(case, "crash", f"killed by signal {-rc}", seconds)
    if "Traceback" in stderr or "Traceback" in stdout:
        return Outcome(case, "raw_exception", cap(stderr[-300:]), seconds)
    if case.expect == "ok":
        if rc != 0:
            return Outcome(case, "wrong_error", cap(f"exit {rc}: {stderr}"), seconds)
        why = _check(case, stdout)
        return Outcome(case, "silent_wrong" if why else "pass", why or "", seconds)
    if rc == 0 and case.params.get("ok_if") and case.params["ok_if"] in stdout.lower():
        return Outcome(case, "pass", cap(stdout), seconds)  # shown with a note saying what is wrong
    if rc == 0:
        return Outcome(case, "silent_wrong", cap(f"accepted (exit 0): {stdout[-200:]}"), seconds)
    if rc != 2:
        status = "raw_exception" if "internal error" in stderr else "wrong_error"
        return Outcome(case, status, cap(f"exit {rc}: {stderr}"), seconds)
    if len(lines) != 1:
        return Outcome(case, "wrong_error", cap(f"{len(lines)} lines on stderr: {stderr}"), seconds)
    if "\x1b" in stderr:
        return Outcome(case, "wrong_error", "an escape sequence in the message", seconds)
    if case.params.get("says") and case.params["says"] not in lines[0]:
        return Outcome(case, "wrong_error", cap(f"the message does not say {case.params['says']!r}: {lines[0]}"),
                       seconds)
    return Outcome(case, "pass", cap(lines[0]), seconds)


def _case_env(case: Case) -> dict[str, str | None]:
    return dict(case.params.get("env") or {})


def run_case(case: Case) -> Outcome:
    """One invocation in a subprocess, in a fresh temp folder (results and caches go there too).

    ``WORKBENCH_CLI_SWEEP=inprocess`` runs it through :func:`run_case_in_process` instead: each subprocess pays
    ~2.5 s of CPU for imports, so on a loaded machine the whole sweep in subprocesses takes long; in-process
    sees the same exit status and messages but cannot see crashes or hangs."""
    if os.environ.get("WORKBENCH_CLI_SWEEP") == "inprocess":
        return run_case_in_process(case)
    return _run_subprocess(case)


def _run_subprocess(case: Case) -> Outcome:
    tmp = Path(tempfile.mkdtemp(prefix="workbench-cli-case-"))
    try:
        fx = _fixtures(tmp)
        argv = [_fill(a, fx) for a in case.params["argv"]]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "WORKBENCH_RESULTS": str(tmp / "results"),
               "WORKBENCH_CACHE": str(tmp / "cache"), "PYTHONWARNINGS": "ignore"}
        env.pop("WORKBENCH_DEBUG", None)
        for key, value in _case_env(case).items():
            env.pop(key, None) if value is None else env.__setitem__(key, value)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, "-m", "experiments", *argv], cwd=ROOT, env=env,
                                  capture_output=True, text=True, errors="replace", timeout=case.timeout_s)
        except subprocess.TimeoutExpired:
            return Outcome(case, "hang", f"no answer after {case.timeout_s:.0f} s", time.perf_counter() - t0)
        outcome = judge_process(case, proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - t0)
        return _kept(case, tmp, outcome)
    finally:
        (tmp / "ro").chmod(0o755) if (tmp / "ro").exists() else None
        shutil.rmtree(tmp, ignore_errors=True)


def _kept(case: Case, tmp: Path, outcome: Outcome) -> Outcome:
    """A case that points an output at the user's own folders must leave them byte-identical."""
    if case.name == "out.not_results" or case.params.get("keep"):
        files = [tmp / "notes" / "mine.txt", tmp / "notes" / "README.md"] + [
            tmp / "parent" / s / "mine.txt" for s in ("attn-only-2l", "attn-only-1l")]
        changed = [str(f) for f in files if f.read_text() not in ("keep me", "my notes\n")]
        extra = [p.name for p in (tmp / "notes").iterdir() if p.name not in ("mine.txt", "README.md")]
        if changed or extra:
            return Outcome(case, "silent_wrong", cap(f"the user's folder was changed: {changed or extra}"),
                           outcome.seconds)
    return outcome


def summary_json(outcomes: list[Outcome]) -> str:
    """Counts per status, for reports."""
    from tests.fuzz import counts

    return json.dumps(counts(outcomes))


def run_case_in_process(case: Case) -> Outcome:
    """The same case through ``experiments.core.cli.main`` in this process (no interpreter start: the test
    suite's fast subset). Cannot see crashes or hangs; :func:`run_case` can."""
    import contextlib
    import io

    from experiments.core import cli

    if "experiments.core.runner" not in sys.modules:  # results and caches of a case that got through: scratch
        scratch = Path(tempfile.mkdtemp(prefix="workbench-cli-sweep-"))
        os.environ.setdefault("WORKBENCH_RESULTS", str(scratch / "results"))
        os.environ.setdefault("WORKBENCH_CACHE", str(scratch / "cache"))
    tmp = Path(tempfile.mkdtemp(prefix="workbench-cli-case-"))
    try:
        fx = _fixtures(tmp)
        argv = [_fill(a, fx) for a in case.params["argv"]]
        out, err = io.StringIO(), io.StringIO()
        saved = {k: os.environ.get(k) for k in _case_env(case)}
        for key, value in _case_env(case).items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
        t0 = time.perf_counter()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = cli.main(argv)
        except BaseException as e:  # noqa: BLE001 - anything escaping main() is a raw exception
            return Outcome(case, "raw_exception", cap(f"{type(e).__name__}: {e}"), time.perf_counter() - t0)
        finally:
            for key, value in saved.items():
                os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
        seconds = time.perf_counter() - t0
        outcome = judge_process(case, rc, out.getvalue(), err.getvalue(), seconds)
        if outcome.status == "pass" and case.params.get("fail_fast") and seconds > FAIL_FAST_S:
            return Outcome(case, "hang", f"took {seconds:.1f} s to fail (at most {FAIL_FAST_S:.0f} s)", seconds)
        return _kept(case, tmp, outcome)
    finally:
        (tmp / "ro").chmod(0o755) if (tmp / "ro").exists() else None
        shutil.rmtree(tmp, ignore_errors=True)
