"""Generated bad (and borderline good) inputs to the surfaces added in the last rounds: prompt pairs and patching,
SAE folders, training settings, experiment settings (bounds, list items), output folders, unknown tokens, and the
older residue (attention-result indices, token batches, load dtypes, probe helpers, configs over other weights).

Every family is generated from a table of values crossed with the arguments or fields it applies to (a value
spec names a kind of value: ``"float:2.5"``, ``"big"``, ``"nan"``...), and the expected outcome is computed from
what the argument accepts, never listed by hand per case. See tests/fuzz/__init__.py for the shape of a case.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tests.fuzz import Case, Outcome, judge

PART = "surface"

# ----------------------------------------------------------------------------- values


#: Whole-number arguments (counts, lengths, seeds): value spec -> the value.
INT_SPECS = ("int:0", "int:1", "int:3", "int:-1", "np64:2", "torch:2", "float:2.5", "float:2.0", "npf:2.0",
             "big:2**70", "int:4294967296", "none", "str:3", "bool:true", "nan", "inf", "list:2")


def value(spec: str) -> Any:
    kind, _, arg = spec.partition(":")
    return {
        "int": lambda: int(arg), "np64": lambda: np.int64(arg), "torch": lambda: torch.tensor(int(arg)),
        "float": lambda: float(arg), "npf": lambda: np.float64(arg), "big": lambda: 2**70, "none": lambda: None,
        "str": lambda: arg, "bool": lambda: arg == "true", "nan": lambda: float("nan"), "inf": lambda: float("inf"),
        "list": lambda: [int(arg)],
    }[kind]()


def int_ok(spec: str, low: int, high: int) -> bool:
    """Whether an integer argument with range low..high must accept ``spec`` (ints only: no floats, no bools)."""
    kind, _, arg = spec.partition(":")
    if kind in ("int", "np64", "torch"):
        return low <= int(arg) <= high
    return False


# ----------------------------------------------------------------------------- shared fixtures (per process)


@functools.lru_cache(maxsize=1)
def handle():
    from tests.fuzz.library_cases import handle as h

    return h()  # 2 layers x 4 heads, d_vocab 400, n_ctx 64


@functools.lru_cache(maxsize=1)
def gpt2_tokenizer():
    from transformers import AutoTokenizer

    from tests.conftest import GPT2_TOKENIZER

    return AutoTokenizer.from_pretrained(str(GPT2_TOKENIZER)) if (GPT2_TOKENIZER / "vocab.json").is_file() else None


@functools.lru_cache(maxsize=1)
def scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="workbench-surface-"))


@functools.lru_cache(maxsize=4)
def bundled(name: str):
    from interp import load_model

    return load_model(name)


def good_pair():
    """A pair the tiny model encodes: repeated numbered-token text is awkward for its BPE, so plain words."""
    from tasks.pairs import PromptPair

    return PromptPair("the cat sat on the mat and the cat", "the dog sat on the mat and the dog", " sat", " mat")


@functools.lru_cache(maxsize=1)
def good_batch():
    from tasks.pairs import repeated_sequence_pairs

    return repeated_sequence_pairs(handle(), 2, 5, seed=0)


# ----------------------------------------------------------------------------- the cases


def cases() -> Iterator[Case]:
    yield from _generator_cases()
    yield from _pair_field_cases()
    yield from _pair_container_cases()
    yield from _pair_token_cases()
    yield from _select_cases()
    yield from _patching_cases()
    yield from _no_gap_cases()
    yield from _sae_cfg_cases()
    yield from _sae_file_cases()
    yield from _trainer_cases()
    yield from _experiment_setting_cases()
    yield from _output_cases()
    yield from _unknown_token_cases()
    yield from _attention_index_cases()
    yield from _token_batch_cases()
    yield from _load_cases()
    yield from _probe_helper_cases()


def _c(group: str, case_name: str, expect: str, fast: bool = False, isolate: bool = False,
       timeout_s: float = 120.0, **params: Any) -> Case:
    return Case(PART, group, case_name, expect, params, isolate=isolate, timeout_s=timeout_s,  # type: ignore
                fast=fast)


# --- prompt-pair generators: every whole-number argument x every integer-ish value

GENERATORS = {  # name -> {argument: (low, high)} (seq_len's high: the tiny model's n_ctx 64 // 2)
    "repeated": {"n_pairs": (1, 100_000), "seq_len": (3, 32), "seed": (0, 2**32 - 1)},
    "copy": {"n": (1, 100_000), "seed": (0, 2**32 - 1)},
    "ioi": {"n": (1, 100_000), "seed": (0, 2**32 - 1)},
}


def _generator_cases() -> Iterator[Case]:
    for gen, args in GENERATORS.items():
        for arg, (low, high) in args.items():
            for spec in INT_SPECS:
                ok = int_ok(spec, low, high)
                yield _c("pairs.generate", f"pairs.generate.{gen}.{arg}.{spec}", "ok" if ok else "InvalidInput",
                         fast=spec in ("float:2.5", "big:2**70") and gen == "repeated", gen=gen, arg=arg, spec=spec)


def _build_generator(case: Case):
    from tasks.copy import copy_task_pairs
    from tasks.ioi import ioi_pairs
    from tasks.pairs import repeated_sequence_pairs

    p = case.params
    v = value(p["spec"])
    kw = {p["arg"]: v}
    if p["gen"] == "repeated":
        base = {"n_pairs": 2, "seq_len": 5, "seed": 0}
        base.update(kw)
        n, seq = base.pop("n_pairs"), base.pop("seq_len")
        return (lambda: repeated_sequence_pairs(handle(), n, seq, **base)), _check_batch
    tok = gpt2_tokenizer()
    if tok is None:
        return (lambda: (_ for _ in ()).throw(__import__("pytest").skip.Exception("no GPT-2 tokenizer"))), None
    base = {"n": 2, "seed": 0}
    base.update(kw)
    n = base.pop("n")
    fn = copy_task_pairs if p["gen"] == "copy" else ioi_pairs
    return (lambda: fn(tok, n, **base)), lambda r: None if len(r) == n else f"{len(r)} pairs for n={n}"


def _check_batch(b) -> str | None:
    if not (b.lengths <= b.clean.shape[1]).all() or b.clean.shape != b.corrupted.shape:
        return "a malformed batch"
    return None


# --- prompt pair fields: every field x every bad text value

TEXT_SPECS: dict[str, Any] = {
    "none": None, "int": 5, "float_nan": float("nan"), "bytes": b" mat", "empty": "", "spaces": "   ",
    "surrogate": "x\ud800", "list": [" mat"], "dict": {"a": 1}, "tuple": (" mat",), "bool": True,
}


def _pair_field_cases() -> Iterator[Case]:
    for field in ("clean", "corrupted", "answer", "wrong"):
        for spec in TEXT_SPECS:
            ok = field == "wrong" and spec == "none"  # no wrong answer: fine with the prob metric
            yield _c("pairs.field", f"pairs.field.{field}.{spec}", "ok" if ok else "InvalidInput",
                     fast=field == "answer" and spec in ("none", "surrogate"), field=field, spec=spec)
    for field, text in (("answer", " two tokens here"), ("wrong", " zq unknown words")):
        yield _c("pairs.field", f"pairs.field.{field}.multi.{ascii(text)[:20]}", "InvalidInput", field=field,
                 literal=text)


def _build_pair_field(case: Case):
    from tasks.pairs import encode_pairs

    p = case.params
    v = p["literal"] if "literal" in p else TEXT_SPECS[p["spec"]]
    pair = dataclasses.replace(good_pair(), **{p["field"]: v})
    metric_needs_wrong = p["field"] != "wrong" or v is not None
    return (lambda: encode_pairs(handle(), [pair], need_wrong=metric_needs_wrong)), _check_batch


CONTAINERS: dict[str, Callable[[], Any]] = {
    "bare_pair": lambda: good_pair(), "str": lambda: "a|b|c|d", "dict": lambda: {"clean": "a"},
    "list_of_tuples": lambda: [("a b", "c d", " b", " d")], "list_with_none": lambda: [good_pair(), None],
    "empty": lambda: [], "generator": lambda: (good_pair() for _ in range(2)), "none": lambda: None,
    "too_many": lambda: [good_pair()] * 100_001, "nested": lambda: [[good_pair()]], "int": lambda: 3,
    "one_good": lambda: [good_pair()], "tuple_of_pairs": lambda: (good_pair(), good_pair()),
}


def _pair_container_cases() -> Iterator[Case]:
    for name in CONTAINERS:
        ok = name in ("one_good", "tuple_of_pairs")
        yield _c("pairs.container", f"pairs.container.{name}", "ok" if ok else "InvalidInput",
                 fast=name == "bare_pair", key=name)


def _build_pair_container(case: Case):
    from tasks.pairs import encode_pairs

    return (lambda: encode_pairs(handle(), CONTAINERS[case.params["key"]]())), _check_batch


# --- pairs from token tensors

TOKEN_PAIRS = {
    "wrong_eq_vocab": "InvalidInput", "wrong_negative_2": "InvalidInput", "wrong_minus_1": "ok",
    "answer_float": "InvalidInput", "answer_2d": "InvalidInput", "clean_bool": "InvalidInput",
    "clean_float": "InvalidInput", "shape_mismatch": "InvalidInput", "one_d": "InvalidInput",
    "zero_rows": "InvalidInput", "zero_cols": "InvalidInput", "too_long": "InvalidInput",
    "answer_over_vocab": "InvalidInput", "clean_negative": "InvalidInput", "answer_list": "InvalidInput",
    "wrong_wrong_length": "InvalidInput", "ok": "ok",
}


def _pair_token_cases() -> Iterator[Case]:
    for name, expect in TOKEN_PAIRS.items():
        yield _c("pairs.tokens", f"pairs.tokens.{name}", expect, fast=name == "wrong_eq_vocab", key=name)


def _build_pair_tokens(case: Case):
    from tasks.pairs import pairs_from_tokens

    key = case.params["key"]
    v = handle().info.d_vocab
    clean = torch.tensor([[0, 5, 9, 13], [0, 6, 10, 14]])
    corr = torch.tensor([[0, 7, 9, 13], [0, 8, 10, 14]])
    ans, wrong = torch.tensor([5, 6]), torch.tensor([7, 8])
    changes: dict[str, Any] = {
        "wrong_eq_vocab": {"wrong": torch.tensor([v, 8])}, "wrong_negative_2": {"wrong": torch.tensor([-2, 8])},
        "wrong_minus_1": {"wrong": torch.tensor([-1, 8])}, "answer_float": {"answer": ans.float()},
        "answer_2d": {"answer": ans[:, None]}, "clean_bool": {"clean": clean > 5, "corrupted": corr > 5},
        "clean_float": {"clean": clean.float()}, "shape_mismatch": {"corrupted": corr[:, :3]},
        "one_d": {"clean": clean[0], "corrupted": corr[0]},
        "zero_rows": {"clean": clean[:0], "corrupted": corr[:0], "answer": ans[:0], "wrong": wrong[:0]},
        "zero_cols": {"clean": clean[:, :0], "corrupted": corr[:, :0]},
        "too_long": {"clean": torch.zeros(2, 65, dtype=torch.long), "corrupted": torch.zeros(2, 65, dtype=torch.long)},
        "answer_over_vocab": {"answer": torch.tensor([v + 5, 6])}, "clean_negative": {"clean": clean - 10},
        "answer_list": {"answer": [5, 6]}, "wrong_wrong_length": {"wrong": torch.tensor([7])}, "ok": {},
    }[key]
    args = {"clean": clean, "corrupted": corr, "answer": ans, "wrong": wrong, **changes}
    return (lambda: pairs_from_tokens(handle(), args["clean"], args["corrupted"], args["answer"], args["wrong"])), \
        _check_batch


# --- selecting pairs from a batch

SELECTIONS: dict[str, Any] = {"empty": [], "one": [0], "both": [0, 1], "out": [5], "negative": [-1],
                              "float": [0.5], "str": "0", "none": None, "bool": [True], "np": np.array([1]),
                              "tensor": torch.tensor([0]), "nested": [[0]], "big": [2**70]}


def _select_cases() -> Iterator[Case]:
    for name in SELECTIONS:
        ok = name in ("one", "both", "np", "tensor")
        yield _c("pairs.select", f"pairs.select.{name}", "ok" if ok else "InvalidInput", fast=name == "empty", key=name)


def _build_select(case: Case):
    rows = SELECTIONS[case.params["key"]]
    return (lambda: good_batch().select(rows)), lambda b: None if len(b) >= 1 else "an empty batch returned"


# --- patching calls: each argument x bad values

PATCH_ARGS: dict[str, dict[str, tuple[Any, bool]]] = {  # function -> {argument spec: (value, valid)}
    "run_sweeps.kinds": {"empty": ((), False), "str_ok": ("head_out", True), "unknown": (("nope",), False),
                         "int": ((3,), False), "none": (None, False), "list_ok": (["resid_pre"], True)},
    "run_sweeps.metric": {"bad": ("accuracy", False), "none": (None, False), "int": (1, False), "ok": ("prob", True)},
    "run_sweeps.max_rows": {"zero": (0, False), "neg": (-5, False), "float": (2.5, False), "none": (None, False),
                            "big": (2**70, False), "ok": (3, True)},
    "path_patch.sender": {"ok": ("0.1", True), "last_layer": ("1.0", False), "missing": ("9.9", False),
                          "float": (1.5, False), "none": (None, False), "text": ("x", False),
                          "tuple_bool": ((0, True), False),
                          "tuple_ok": ((0, 2), True), "long": ("1" * 500, False)},
    "path_patch.component": {"bad": ("z", False), "none": (None, False), "upper": ("K", False), "ok": ("v", True)},
    "path_patch.receivers": {"empty": ([], False), "earlier": (["0.0"], False), "bare_str": ("1.1", False),
                             "bad_item": (["1.x"], False), "ok": (["1.1"], True), "none_default": (None, True)},
    "path_patch_senders.receivers": {"empty": ([], False), "layer0": (["0.1"], False), "str": ("1.2", False),
                                     "ok": (["1.2"], True)},
    "path_patch_senders.senders": {"empty": ([], False), "after": (["1.0"], False), "ok": (["0.3"], True)},
    "attribute.kinds": {"empty": ((), False), "unknown": (("z",), False), "ok": (("head_out",), True)},
}


def _patching_cases() -> Iterator[Case]:
    for target, specs in PATCH_ARGS.items():
        for spec, (_, ok) in specs.items():
            yield _c("patching.args", f"patching.{target}.{spec}", "ok" if ok else "InvalidInput",
                     fast=target == "path_patch.receivers" and spec == "empty", target=target, spec=spec)
    for kind in ("llama", "qwen2", "mistral"):  # rotary and grouped-query: q is patched before the rotation (the
        for comp in ("q", "k", "v"):  # model then rotates it, as it would); k and v are shared by heads: refused
            yield _c("patching.rotary", f"patching.rotary.{kind}.{comp}", "ok" if comp == "q" else "InvalidInput",
                     fast=kind == "llama" and comp == "k", kind=kind, comp=comp)
        yield _c("patching.rotary", f"patching.rotary.{kind}.sweep", "ok", kind=kind, comp="sweep")


def _build_patching(case: Case):
    from probes.patching.activation import path_patch, path_patch_senders, run_sweeps
    from probes.patching.attribution import attribute

    if case.group == "patching.rotary":
        from interp import load_model
        from tasks.pairs import repeated_sequence_pairs
        from tests.fuzz.model_dirs import gqa_dir

        def rotary():
            g = load_model(gqa_dir(case.params["kind"]))
            b = repeated_sequence_pairs(g, 2, 5, seed=0)
            if case.params["comp"] == "sweep":
                return run_sweeps(g, b, ("head_out",))["head_out"].normalised()
            return path_patch(g, b, "0.1", case.params["comp"]).normalised()  # NaN: receivers not after the sender

        def finite(r: torch.Tensor) -> str | None:
            real = r[~torch.isnan(r)]
            return None if real.numel() and bool(torch.isfinite(real).all()) else "NaN or empty effects"

        return rotary, finite
    target, spec = case.params["target"], case.params["spec"]
    v = PATCH_ARGS[target][spec][0]
    b, h = good_batch(), handle()
    calls: dict[str, Callable[[], Any]] = {
        "run_sweeps.kinds": lambda: run_sweeps(h, b, v),
        "run_sweeps.metric": lambda: run_sweeps(h, b, ("head_out",), metric=v),
        "run_sweeps.max_rows": lambda: run_sweeps(h, b, ("head_out",), max_rows=v),
        "path_patch.sender": lambda: path_patch(h, b, v, "k"),
        "path_patch.component": lambda: path_patch(h, b, "0.1", v),
        "path_patch.receivers": lambda: path_patch(h, b, "0.1", "k", receivers=v),
        "path_patch_senders.receivers": lambda: path_patch_senders(h, b, v, "q"),
        "path_patch_senders.senders": lambda: path_patch_senders(h, b, ["1.2"], "q", senders=v),
        "attribute.kinds": lambda: attribute(h, b, v),
    }

    def check(r) -> str | None:
        tensors = [x.normalised() for x in r.values()] if isinstance(r, dict) else [
            r.normalised(r.estimates and next(iter(r.estimates))) if hasattr(r, "estimates") else r.normalised()]
        finite = [t[~torch.isnan(t)] for t in tensors]  # path results hold NaN for receivers before the sender
        return None if all(bool(torch.isfinite(t).all()) and t.numel() for t in finite) else "NaN or empty effects"

    return calls[target], check


# --- no clean/corrupted gap: never a NaN table

NO_GAP_FNS = ("run_sweeps", "attribute", "path_patch", "path_patch_senders", "direct_effects", "dataset_effects")


def _no_gap_cases() -> Iterator[Case]:
    for fn in NO_GAP_FNS:
        for metric in ("logit_diff", "prob", "logprob"):
            yield _c("patching.no_gap", f"patching.no_gap.{fn}.{metric}", "InvalidInput",
                     fast=fn == "dataset_effects" and metric == "logit_diff", fn=fn, metric=metric)


def _build_no_gap(case: Case):
    from probes.patching.activation import SweepResult, direct_effects, path_patch, path_patch_senders, run_sweeps
    from probes.patching.attribution import attribute
    from probes.patching.stats import dataset_effects
    from tasks.pairs import PromptPair, encode_pairs

    h, metric = handle(), case.params["metric"]
    same = PromptPair("the cat sat on the mat and the cat", "the cat sat on the mat and the cat", " sat", " mat")
    b = encode_pairs(h, [same, same])
    calls: dict[str, Callable[[], Any]] = {
        "run_sweeps": lambda: run_sweeps(h, b, ("head_out",), metric=metric),
        "attribute": lambda: attribute(h, b, ("head_out",), metric=metric).normalised("head_out"),
        "path_patch": lambda: path_patch(h, b, "0.1", "k", metric=metric).normalised(),
        "path_patch_senders": lambda: path_patch_senders(h, b, ["1.2"], "q", metric=metric).normalised(),
        "direct_effects": lambda: direct_effects(h, b, metric=metric).normalised(),
        "dataset_effects": lambda: dataset_effects(SweepResult("head_out", ("layer", "head"), torch.ones(2, 4, 2),
                                                               torch.ones(2), torch.ones(2), metric)),  # type: ignore
    }
    return calls[case.params["fn"]], None


# --- SAE folders: every cfg.json field x every kind of JSON value

SAE_FIELDS = ("d_in", "d_sae", "hook_name", "architecture", "k", "hook_layer", "context_size", "apply_b_dec_to_input",
              "model_name", "activation_fn_kwargs", "normalize_activations", "workbench", "activation_fn_str")
#: JSON values as text (so NaN and Infinity can be written as Python's json writes them).
JSON_VALUES = {"str": '"abc"', "null": "null", "nan": "NaN", "inf": "Infinity", "neg_inf": "-Infinity",
               "list": "[1]", "dict": "{}", "huge": "1e9", "neg": "-1", "zero": "0", "frac": "1.5",
               "true": "true", "str_false": '"false"', "topk": '"topk"', "int16": "16", "empty_str": '""'}


def sae_value_ok(field: str, name: str) -> bool:
    """Whether the SAE loader must accept cfg.json's ``field`` set to JSON value ``name`` (the base SAE: d_in 8,
    d_sae 16, TopK k 4, weights of those shapes)."""
    accept = {
        "d_in": (), "d_sae": ("int16",),  # any other value breaks the weight shapes, or is not a size
        "hook_name": ("str", "str_false", "topk"), "architecture": ("topk",), "k": ("int16", "null"),
        "hook_layer": ("neg", "zero", "int16", "null"), "context_size": ("zero", "int16", "null"),
        "apply_b_dec_to_input": ("true",), "model_name": ("str", "empty_str", "null", "str_false", "topk"),
        "activation_fn_kwargs": ("dict", "null"), "normalize_activations": ("null",),
        "workbench": ("dict", "null"), "activation_fn_str": ("str", "topk", "null", "empty_str", "str_false"),
    }
    return name in accept[field]


def _sae_cfg_cases() -> Iterator[Case]:
    for field in SAE_FIELDS:
        for name in JSON_VALUES:
            ok = sae_value_ok(field, name)
            yield _c("sae.cfg", f"sae.cfg.{field}.{name}", "ok" if ok else "InvalidInput",
                     fast=(field, name) in (("d_sae", "huge"), ("apply_b_dec_to_input", "str_false")),
                     field=field, name=name)


@functools.lru_cache(maxsize=1)
def good_sae_dir() -> Path:
    from learned.sae import SAEConfig, SparseAutoencoder
    from learned.sae_files import write_sae_dir

    sae = SparseAutoencoder(SAEConfig(d_in=8, d_sae=16, architecture="topk", k=4, hook_name="blocks.0.hook_resid_pre",
                                      hook_layer=0, model_name="tiny"), seed=0)
    cfg, tensors = sae.to_saelens()
    return write_sae_dir(scratch() / "good-sae", cfg, tensors)


def _sae_copy(name: str) -> Path:
    d = scratch() / "sae" / name
    if d.exists():
        shutil.rmtree(d)
    shutil.copytree(good_sae_dir(), d)
    return d


def _build_sae_cfg(case: Case):
    from learned.sae_files import load_sae

    field, name = case.params["field"], case.params["name"]
    d = _sae_copy(f"{field}-{name}")
    cfg = json.loads((d / "cfg.json").read_text())
    cfg[field] = "__PLACEHOLDER__"
    text = json.dumps(cfg).replace('"__PLACEHOLDER__"', JSON_VALUES[name])
    (d / "cfg.json").write_text(text)

    def check(sae) -> str | None:
        if field == "apply_b_dec_to_input" and sae.cfg.apply_b_dec_to_input is not True:
            return "apply_b_dec_to_input read wrong"
        return None

    return (lambda: load_sae(d)), check


SAE_FILES = ("cfg_list", "cfg_null", "cfg_binary", "cfg_empty", "cfg_dir", "weights_missing", "weights_truncated",
             "weights_int", "weights_nan", "weights_missing_key", "weights_extra_key", "weights_shape", "path_nul",
             "path_long", "path_is_file", "path_missing", "cfg_fifo", "path_none", "path_int")


def _sae_file_cases() -> Iterator[Case]:
    for name in SAE_FILES:
        ok = name == "weights_extra_key"  # an extra tensor beside the four is ignored (documented leniency)
        yield _c("sae.files", f"sae.files.{name}", "ok" if ok else "InvalidInput", fast=name == "weights_nan",
                 isolate=name == "cfg_fifo", timeout_s=60, key=name)


def _build_sae_files(case: Case):
    import os

    from safetensors.torch import load_file, save_file

    from learned.sae_files import load_sae

    key = case.params["key"]
    if key in ("path_nul", "path_long", "path_none", "path_int", "path_missing", "path_is_file"):
        f = scratch() / "a-file.txt"
        f.write_text("x")
        path = {"path_nul": "/tmp/a\x00b", "path_long": "/tmp/" + "d" * 5000, "path_none": None, "path_int": 7,
                "path_missing": str(scratch() / "nothing-here"), "path_is_file": str(f)}[key]
        return (lambda: load_sae(path)), None
    d = _sae_copy(key)
    w = d / "sae_weights.safetensors"
    if key.startswith("cfg_"):
        (d / "cfg.json").unlink()
        if key == "cfg_dir":
            (d / "cfg.json").mkdir()
        elif key == "cfg_fifo":
            os.mkfifo(d / "cfg.json")
        else:
            (d / "cfg.json").write_bytes({"cfg_list": b"[1, 2]", "cfg_null": b"null", "cfg_binary": bytes(range(256)),
                                          "cfg_empty": b""}[key])
    elif key == "weights_missing":
        w.unlink()
    elif key == "weights_truncated":
        w.write_bytes(w.read_bytes()[:50])
    else:
        state = load_file(str(w))
        first = sorted(state)[0]
        if key == "weights_int":
            state[first] = state[first].to(torch.int32)
        elif key == "weights_nan":
            state[first] = state[first].clone().fill_(float("nan"))
        elif key == "weights_missing_key":
            del state[first]
        elif key == "weights_extra_key":
            state["extra"] = torch.zeros(2)
        elif key == "weights_shape":
            state[first] = torch.zeros(3, 3)
        save_file(state, str(w))
    return (lambda: load_sae(d)), None


# --- trainers: every settings field x every clearly bad value, refused before any training

BAD_SETTING_VALUES = {"nan": float("nan"), "inf": float("inf"), "neg": -1, "none": None, "text": "1", "bool": True,
                      "huge": 1e300, "frac": 1.5, "big_int": 2**64}


def trainer_fields() -> dict[str, list[tuple[str, str]]]:
    """Trainer -> [(field, "int" | "real" | "other")] of its settings object."""
    from training.grokking import GrokConfig
    from training.induction import InductionTrainConfig
    from training.lm import TrainSettings
    from training.sae import SAETrainSettings
    from training.superposition import ToyTrainConfig

    def kinds(cls, **init) -> list[tuple[str, str]]:
        obj = cls(**init)
        out = []
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            out.append((f.name, "int" if type(v) is int else "real" if type(v) is float else "other"))
        return out

    return {"grokking": kinds(GrokConfig), "lm": kinds(TrainSettings, steps=2, batch_size=2, seq_len=8),
            "sae": kinds(SAETrainSettings), "toy": kinds(ToyTrainConfig), "induction": kinds(InductionTrainConfig),
            "tuned_lens": [("steps", "int"), ("batch_size", "int"), ("lr", "real"), ("weight_decay", "real"),
                           ("seed", "int")]}


def bad_for(kind: str, spec: str) -> bool:
    """Whether ``spec`` is invalid for every field of this kind (so the case's expectation needs no table)."""
    if kind == "other":
        return spec in ("nan", "none", "huge", "big_int")
    if kind == "real":
        return spec in ("nan", "inf", "neg", "none", "text", "bool", "huge")
    return spec in ("nan", "inf", "neg", "none", "text", "bool", "huge", "frac", "big_int")


def _trainer_cases() -> Iterator[Case]:
    for trainer, fields in trainer_fields().items():
        for field, kind in fields:
            for spec in BAD_SETTING_VALUES:
                if not bad_for(kind, spec):
                    continue
                yield _c("train.settings", f"train.{trainer}.{field}.{spec}", "InvalidInput",
                         fast=(field, spec) in (("lr", "nan"), ("log_every", "neg")) and trainer in ("sae", "grokking"),
                         trainer=trainer, field=field, spec=spec)


def _build_trainer(case: Case):
    """The trainer called with one bad field and otherwise tiny settings (a missed check trains for 2 steps and
    is judged silent_wrong)."""
    from training.grokking import GrokConfig, train_grokking
    from training.induction import InductionTrainConfig, train_induction
    from training.lm import TrainSettings, train_causal_lm
    from training.sae import SAETrainSettings, train_sae
    from training.sae_data import SyntheticFeatures
    from training.superposition import ToyTrainConfig, train_toy_models
    from training.tuned_lens import train_tuned_lens

    trainer, field, spec = case.params["trainer"], case.params["field"], case.params["spec"]
    bad = {field: BAD_SETTING_VALUES[spec]}
    work = Path(tempfile.mkdtemp(dir=scratch()))
    if trainer == "grokking":
        c = dataclasses.replace(GrokConfig(p=11, epochs=2, d_model=16, d_mlp=16, log_every=1, snapshot_every=0), **bad)
        return (lambda: train_grokking(c, work_dir=work, log=None)), None
    if trainer == "lm":
        from transformers import GPT2Config, GPT2LMHeadModel

        model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=1, n_head=2))
        s = dataclasses.replace(TrainSettings(steps=2, batch_size=2, seq_len=8, eval_every=1, checkpoint_every=1),
                                **bad)
        toks = np.arange(200, dtype=np.int64) % 50
        return (lambda: train_causal_lm(model, toks, toks, s, checkpoint=work / "c.pt")), None
    if trainer == "sae":
        s = dataclasses.replace(SAETrainSettings(d_sae=16, k=4, steps=2, dead_tokens=10, log_every=1,
                                                 scale_batches=1), **bad)
        data = SyntheticFeatures(d=8, n_features=16, batch_size=32)
        return (lambda: train_sae(data, s, log=None)), None
    if trainer == "toy":
        c = dataclasses.replace(ToyTrainConfig(steps=2, batch_size=8, eval_samples=8), **bad)
        return (lambda: train_toy_models(torch.ones(1, 3), torch.ones(1, 3), 2, c)), None
    if trainer == "induction":
        c = dataclasses.replace(InductionTrainConfig(n_layers=1, d_model=16, n_heads=2, d_vocab=32, seq_len=16,
                                                     batch_size=2, steps=2, seg_min=2, seg_max=4, eval_every=1,
                                                     eval_batch=2, checkpoint_every=1, warmup=0), **bad)
        return (lambda: train_induction(c, work_dir=work)), None
    kw = {"steps": 2, "batch_size": 2, "lr": 1e-3, "weight_decay": 0.0, "seed": 0, **bad}
    toks = torch.randint(1, 100, (4, 8), generator=torch.Generator().manual_seed(0))
    return (lambda: train_tuned_lens(handle(), toks, **kw)), None


# --- experiment settings: every numeric setting above its bound, every list setting with a bad item

def _experiment_setting_cases() -> Iterator[Case]:
    from experiments import all_experiments

    for name, exp in all_experiments().items():
        base = exp.Config()
        for f in dataclasses.fields(base):
            v = getattr(base, f.name)
            meta = f.metadata or {}
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                high = meta.get("high")
                yield _c("settings.bound", f"settings.{name}.{f.name}.huge", "InvalidInput",
                         fast=(name, f.name) == ("toy-superposition", "sweep_features"), experiment=name,
                         setting=f.name, raw="1e15" if isinstance(v, float) else "1000000000000000",
                         declared_high=high)
            if isinstance(v, (list, tuple)) and v and not isinstance(v[0], str):
                first = str(v[0])
                for label, item in (("nan", "nan"), ("inf", "inf"), ("neg", "-7"), ("huge", "1e300"),
                                    ("text", "x")):
                    raw = f"{first},{item}"
                    yield _c("settings.items", f"settings.{name}.{f.name}.item_{label}", "InvalidInput",
                             fast=(name, f.name, label) == ("sae-ground-truth", "size_ratios", "nan"),
                             experiment=name, setting=f.name, raw=raw)


def _build_setting(case: Case):
    from experiments import get_experiment, make_config

    p = case.params
    return (lambda: make_config(get_experiment(p["experiment"]), overrides={p["setting"]: p["raw"]})), None


# --- output folders: every folder-writing setting, and --out, pointed at folders that are not theirs

OUTPUT_SETTINGS = (("grokking", "out_model"), ("train-text-lm", "out_model"), ("train-othello-gpt", "out_model"),
                   ("train-sae", "out"), ("tuned-lens", "lens_dir"), ("induction-phase-change", "out_models"),
                   ("model-anatomy", "--out"), ("logit-lens", "--out"))
OUTPUT_TARGETS = ("unrelated", "other_results", "other_model", "a_file", "empty", "system")


def _output_cases() -> Iterator[Case]:
    for name, setting in OUTPUT_SETTINGS:
        for target in OUTPUT_TARGETS:
            if target == "empty":
                continue  # an empty folder is allowed: writing there would start a run (not a cheap case)
            yield _c("outputs", f"outputs.{name}.{setting.strip('-')}.{target}", "InvalidInput",
                     fast=(name, target) == ("grokking", "unrelated"), experiment=name, setting=setting,
                     target=target)


def _tree(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(str(p.relative_to(folder)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def _build_output(case: Case):
    from experiments.core.runner import run_experiment

    p = case.params
    root = Path(tempfile.mkdtemp(dir=scratch()))
    target = root / "target"
    if p["target"] == "a_file":
        target.write_text("a file\n")
    elif p["target"] == "system":  # never a real system folder's child: only ones that exist (refused as such)
        target = Path("/etc") if p["experiment"] != "induction-phase-change" else Path("/usr/lib/x86_64-linux-gnu")
    else:
        (target / "sub").mkdir(parents=True)
        files = {"unrelated": {"notes.txt": "mine\n", "config.json": '{"mine": 1}'},
                 "other_results": {"metadata.json": json.dumps({"experiment": "no-such-experiment"}),
                                   "config.json": "{}", "metrics.json": "{}"},
                 "other_model": {"README.md": "- Command: `python -m experiments run no-such-builder`\n",
                                 "config.json": "{}"}}[p["target"]]
        for fname, text in files.items():
            (target / fname).write_text(text)
        if p["experiment"] == "induction-phase-change":  # a parent: the model folder inside it is what is written
            shutil.copytree(target, target / "attn-only-2l", ignore=lambda d, names: [n for n in names
                                                                                    if n == "attn-only-2l"])
    before = _tree(target) if target.is_dir() and target != Path("/etc") else None

    def call():
        kw: dict[str, Any] = {"preset": "ci", "force": True}
        if p["setting"] == "--out":
            kw["out"] = target
        else:
            kw["overrides"] = {p["setting"]: str(target)}
            kw["out"] = root / "results"
        return run_experiment(p["experiment"], **kw)

    def judged():
        try:
            return call()
        finally:
            if before is not None and _tree(target) != before:
                raise AssertionError(f"{target} was changed")

    return judged, None


# --- unknown tokens: answers, lens targets and prompts the vocabulary cannot express

UNKNOWN = (("grokking-p113", "answer", "cat"), ("grokking-p113", "lens", "cat"), ("grokking-p113", "lens", "="),
           ("grokking-p113", "answer", "12"), ("attn-only-1l", "answer", " cat"), ("attn-only-1l", "lens", "cat"),
           ("attn-only-1l", "lens", "t5"), ("bos-only", "answer", "hello"), ("bos-only", "lens", "hello"),
           ("othello-gpt", "lens", "Z9"), ("othello-gpt", "lens", "F5"), ("grokking-p113", "prompt", "the cat sat"),
           ("attn-only-1l", "prompt", "The cat sat on the mat"), ("bos-only", "prompt", "hello there"),
           ("grokking-p113", "prompt", "3 5 ="), ("attn-only-1l", "prompt", "t1 t2 t3"))


def _unknown_token_cases() -> Iterator[Case]:
    for model, where, text in UNKNOWN:
        known = (model, text) in (("grokking-p113", "="), ("grokking-p113", "12"), ("attn-only-1l", "t5"),
                                  ("othello-gpt", "F5"))
        expect = "ok" if where == "prompt" or known else "InvalidInput"  # a prompt is counted, not refused
        yield _c("tokens.unknown", f"tokens.unknown.{model}.{where}.{ascii(text)}", expect,
                 fast=(model, where) == ("grokking-p113", "answer"), model=model, where=where, text=text)


def _model(name: str):
    from interp import load_model
    from interp.loading import bundled_models
    from tests.fuzz.model_dirs import bos_only_dir

    if name == "bos-only":
        return load_model(bos_only_dir())
    if name not in bundled_models():
        raise __import__("pytest").skip.Exception(f"bundled {name} absent")
    return bundled(name)


def _build_unknown(case: Case):
    from interp.prompt_check import check_prompt
    from probes.lens.logit import single_token_id
    from tasks.pairs import single_token

    p = case.params
    h = _model(p["model"])
    if p["where"] == "answer":
        return (lambda: single_token(h, p["text"], "answer")), None
    if p["where"] == "lens":
        return (lambda: single_token_id(h, p["text"])), None

    def check(c) -> str | None:  # these are word-level models: a word is unknown when the vocabulary lacks it
        ids = h.tokenizer(p["text"], add_special_tokens=False)["input_ids"]
        vocab = h.tokenizer.get_vocab()
        n_unknown = sum(1 for w in p["text"].split() if w not in vocab)
        if len(c.special_positions) != n_unknown:
            return f"counted {len(c.special_positions)} unknown tokens, there are {n_unknown}"
        warning = c.vocab_warning or ""
        if n_unknown and f"{n_unknown} of the prompt's {len(ids)} tokens" not in warning:
            return f"the warning miscounts: {warning[:80]!r}"
        return None

    return (lambda: check_prompt(h, p["text"])), check


# --- the attention result's indices

ATTN_SPECS = ("int:0", "int:1", "int:3", "int:-1", "int:99", "np64:1", "torch:1", "float:1.5", "float:1.0",
              "none", "str:1", "bool:true", "nan", "list:1", "big:2**70")


def _attention_index_cases() -> Iterator[Case]:
    for target, n in (("head.layer", 2), ("head.head", 4), ("token_scores.index", 5)):
        for spec in ATTN_SPECS:
            ok = int_ok(spec, 0, n - 1)
            yield _c("attention.index", f"attention.{target}.{spec}", "ok" if ok else "InvalidInput",
                     fast=spec == "float:1.5" and target == "head.head", target=target, spec=spec)


@functools.lru_cache(maxsize=1)
def prompt_attention_result():
    from interp.attention import prompt_attention

    return prompt_attention(handle(), "the cat sat")


def _build_attention(case: Case):
    from interp.attention import token_scores

    t, v = case.params["target"], value(case.params["spec"])
    pa = prompt_attention_result()
    if t == "head.layer":
        return (lambda: pa.head(v, 1)), None
    if t == "head.head":
        return (lambda: pa.head(1, v)), None
    pattern = np.tril(np.ones((5, 5), np.float32)) / np.arange(1, 6)[:, None]
    return (lambda: token_scores(pattern, v)), None


# --- token batches given as they are

TOKEN_BATCHES = {"lengths_past_width": "InvalidInput", "lengths_zero": "InvalidInput", "lengths_float": "InvalidInput",
                 "lengths_wrong_count": "InvalidInput", "lengths_negative": "InvalidInput",
                 "ids_over_vocab": "InvalidInput", "ids_float": "InvalidInput", "too_wide": "InvalidInput",
                 "ok": "ok", "ok_padded": "ok"}


def _token_batch_cases() -> Iterator[Case]:
    for name, expect in TOKEN_BATCHES.items():
        for via in ("run", "tokenize"):
            yield _c("tokens.batch", f"tokens.batch.{via}.{name}", expect, fast=name == "lengths_past_width" and
                     via == "run", key=name, via=via)


def _build_token_batch(case: Case):
    from interp.tokens import TokenBatch

    key = case.params["key"]
    t = torch.tensor([[0, 5, 9, 13], [0, 6, 10, 0]])
    lengths = torch.tensor([4, 3])
    tb = {"lengths_past_width": (t, torch.tensor([4, 7])), "lengths_zero": (t, torch.tensor([4, 0])),
          "lengths_float": (t, lengths.float()), "lengths_wrong_count": (t, torch.tensor([4])),
          "lengths_negative": (t, torch.tensor([4, -1])), "ids_over_vocab": (t + 1000, lengths),
          "ids_float": (t.float(), lengths), "too_wide": (torch.zeros(1, 65, dtype=torch.long), torch.tensor([65])),
          "ok": (t, torch.tensor([4, 4])), "ok_padded": (t, lengths)}[key]
    batch = TokenBatch(*tb)
    h = handle()
    if case.params["via"] == "run":
        return (lambda: h.run(batch).logits), lambda lg: None if bool(torch.isfinite(lg).all()) else "NaN logits"
    return (lambda: h.tokenize(batch)), None


# --- loading: dtypes, GPT-Neo's null intermediate_size, a config of another architecture over the weights

LOADS = {"dtype_int8": "InvalidInput", "dtype_torch_int64": "InvalidInput", "dtype_torch_bool": "InvalidInput",
         "dtype_complex": "InvalidInput", "dtype_float8": "InvalidInput", "dtype_int": "InvalidInput",
         "dtype_list": "InvalidInput", "dtype_fp16": "ok", "dtype_torch_bf16": "ok", "dtype_none": "ok",
         "neo_null_intermediate": "ok", "llama_over_gpt2_keys": "ModelUnavailable",
         "mistral_over_gpt2_keys": "ModelUnavailable", "gpt2_over_llama_keys": "ModelUnavailable"}


def _load_cases() -> Iterator[Case]:
    for name, expect in LOADS.items():
        yield _c("loading.more", f"loading.more.{name}", expect, fast=name in ("dtype_torch_int64",
                 "neo_null_intermediate", "llama_over_gpt2_keys"), isolate="over" in name, timeout_s=120, key=name)


def _build_load(case: Case):
    from interp import load_model
    from tests.fuzz import model_dirs as md

    key = case.params["key"]
    if key.startswith("dtype"):
        dt = {"dtype_int8": "int8", "dtype_torch_int64": torch.int64, "dtype_torch_bool": torch.bool,
              "dtype_complex": torch.complex64, "dtype_float8": torch.float8_e4m3fn, "dtype_int": 16,
              "dtype_list": ["float32"], "dtype_fp16": "fp16", "dtype_torch_bf16": torch.bfloat16,
              "dtype_none": None}[key]
        return (lambda: load_model(md.gpt2_dir(), dtype=dt)), None
    if key == "neo_null_intermediate":
        def neo():
            h = load_model(md.neo_dir())
            return h, h.logits(torch.tensor([[0, 5, 9]]))

        return neo, lambda r: None if r[0].info.d_mlp == 128 and bool(torch.isfinite(r[1]).all()) else "bad model"
    if key == "gpt2_over_llama_keys":
        d = md.copy_of(md.gqa_dir("llama"), key)
        md.edit_config(d, architectures=["GPT2LMHeadModel"], model_type="gpt2", n_embd=32, n_layer=2, n_head=4,
                       vocab_size=400, n_positions=64)
        return (lambda: load_model(d)), None
    d = md.copy_of(md.gpt2_dir(), key)
    kind = "llama" if key.startswith("llama") else "mistral"
    md.edit_config(d, architectures=[f"{kind.title()}ForCausalLM"], model_type=kind, hidden_size=32,
                   intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, vocab_size=400,
                   max_position_embeddings=64)
    return (lambda: load_model(d)), None


# --- probe helpers: NaN groups, text or empty labels, empty metric inputs, long CSV fields, zero batch sizes

PROBE_HELPERS = {
    "split.groups_nan": "InvalidInput", "split.groups_none": "InvalidInput", "split.groups_objects": "InvalidInput",
    "split.groups_text": "ok", "split.groups_frac": "InvalidInput",
    "metrics.empty": "InvalidInput", "metrics.text_labels": "InvalidInput", "metrics.length_mismatch": "InvalidInput",
    "metrics.nan": "InvalidInput", "metrics.ok": "ok", "r2.empty": "InvalidInput", "r2.nan": "InvalidInput",
    "r2.inf": "InvalidInput", "r2.ok": "ok", "majority.empty": "InvalidInput", "majority.text": "InvalidInput",
    "control.empty": "InvalidInput", "control.text": "InvalidInput", "selectivity.nan": "InvalidInput",
    "ridge.labels_nan": "InvalidInput", "ridge.labels_inf": "InvalidInput",
    "csv.field_200k": "InvalidInput", "csv.regression_nan": "InvalidInput", "csv.regression_inf": "InvalidInput",
    "csv.not_text": "InvalidInput", "csv.nul_byte": "ok",  # a NUL in a text is text (as in prompts)
    "capture.batch_zero": "InvalidInput", "capture.batch_float": "InvalidInput", "capture.one_string": "InvalidInput",
    "stream.batch_zero": "InvalidInput", "stream.batch_none": "InvalidInput",
}


def _probe_helper_cases() -> Iterator[Case]:
    for name, expect in PROBE_HELPERS.items():
        yield _c("probe.helpers", f"probe.helpers.{name}", expect, fast=name in ("split.groups_nan", "csv.field_200k"),
                 key=name)


def _build_probe_helper(case: Case):
    from interp.streaming import stream_activations
    from probes.probing.layers import capture_texts
    from probes.probing.linear import (
        classification_metrics,
        control_labels,
        fit_ridge,
        majority_baseline,
        r2_score,
        selectivity,
        split_indices,
    )
    from tasks.labelled import parse_labelled_csv

    key = case.params["key"]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype(np.float32)
    s = split_indices(60, seed=0)
    y_nan = x[:, 0].astype(np.float64).copy()
    y_nan[3] = np.nan
    y_inf = x[:, 0].astype(np.float64).copy()
    y_inf[3] = np.inf
    groups = {"split.groups_nan": np.array([1.0, np.nan] * 30), "split.groups_none": [None] * 60,
              "split.groups_objects": np.array([object()] * 60), "split.groups_text": np.array(list("abcdefghij") * 6),
              "split.groups_frac": np.arange(60) / 2}
    if key in groups:
        return (lambda: split_indices(60, groups=groups[key])), lambda r: None if len(r.train) else "empty split"
    tmp = Path(tempfile.mkdtemp(dir=scratch()))
    calls: dict[str, Callable[[], Any]] = {
        "metrics.empty": lambda: classification_metrics(np.array([], np.int64), np.array([], np.int64)),
        "metrics.text_labels": lambda: classification_metrics(np.array(["a", "b"]), np.array(["a", "a"])),
        "metrics.length_mismatch": lambda: classification_metrics(np.array([0, 1, 1]), np.array([0, 1])),
        "metrics.nan": lambda: classification_metrics(np.array([0.0, np.nan]), np.array([0, 1])),
        "metrics.ok": lambda: classification_metrics(np.array([0, 1, 1]), np.array([0, 1, 0])),
        "r2.empty": lambda: r2_score(np.array([]), np.array([])),
        "r2.nan": lambda: r2_score(np.array([1.0, np.nan]), np.array([1.0, 2.0])),
        "r2.inf": lambda: r2_score(np.array([1.0, 2.0]), np.array([np.inf, 2.0])),
        "r2.ok": lambda: r2_score(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.5, 3.0])),
        "majority.empty": lambda: majority_baseline(np.array([], np.int64), s),
        "majority.text": lambda: majority_baseline(np.array(["a"] * 60), s),
        "control.empty": lambda: control_labels(np.array([], np.int64), np.array([], np.int64)),
        "control.text": lambda: control_labels(np.arange(3), np.array(["a", "b", "a"])),
        "selectivity.nan": lambda: selectivity(float("nan"), 0.5),
        "ridge.labels_nan": lambda: fit_ridge(x, y_nan, s),
        "ridge.labels_inf": lambda: fit_ridge(x, y_inf, s),
        "csv.field_200k": lambda: parse_labelled_csv("text,label\n" + "x" * 200_000 + ",a\nb,c\n"),
        "csv.regression_nan": lambda: parse_labelled_csv("text,label\na,1\nb,nan\n", task="regression"),
        "csv.regression_inf": lambda: parse_labelled_csv("text,label\na,1\nb,inf\n", task="regression"),
        "csv.not_text": lambda: parse_labelled_csv(12345),  # type: ignore[arg-type]
        "csv.nul_byte": lambda: parse_labelled_csv("text,label\na\x00b,x\nc,y\n"),
        "capture.batch_zero": lambda: capture_texts(handle(), ["a b", "c d"], batch_size=0),
        "capture.batch_float": lambda: capture_texts(handle(), ["a b", "c d"], batch_size=1.5),  # type: ignore
        "capture.one_string": lambda: capture_texts(handle(), "a b c"),
        "stream.batch_zero": lambda: stream_activations(handle(), torch.zeros(2, 3, dtype=torch.long),
                                                        ["blocks.0.hook_resid_pre"], tmp, batch_size=0),
        "stream.batch_none": lambda: stream_activations(handle(), torch.zeros(2, 3, dtype=torch.long),
                                                        ["blocks.0.hook_resid_pre"], tmp, batch_size=None),
    }

    def check(r) -> str | None:
        if isinstance(r, dict):
            bad = [k for k, v in r.items() if isinstance(v, float) and not math.isfinite(v)]
            return f"non-finite {bad}" if bad else None
        if isinstance(r, float) and not math.isfinite(r):
            return "a non-finite number"
        return None

    return calls[key], check


# ----------------------------------------------------------------------------- running one case


BUILDERS: dict[str, Callable[[Case], tuple[Callable[[], Any], Callable[[Any], str | None] | None]]] = {
    "pairs.generate": _build_generator, "pairs.field": _build_pair_field, "pairs.container": _build_pair_container,
    "pairs.tokens": _build_pair_tokens, "pairs.select": _build_select, "patching.args": _build_patching,
    "patching.rotary": _build_patching, "patching.no_gap": _build_no_gap, "sae.cfg": _build_sae_cfg,
    "sae.files": _build_sae_files, "train.settings": _build_trainer, "settings.bound": _build_setting,
    "settings.items": _build_setting, "outputs": _build_output, "tokens.unknown": _build_unknown,
    "attention.index": _build_attention, "tokens.batch": _build_token_batch, "loading.more": _build_load,
    "probe.helpers": _build_probe_helper,
}


def run_case(case: Case) -> Outcome:
    import pytest

    try:
        fn, check = BUILDERS[case.group](case)
    except pytest.skip.Exception as e:
        return Outcome(case, "pass", f"skipped: {e}")
    try:
        return judge(case, fn, check)
    except pytest.skip.Exception as e:
        return Outcome(case, "pass", f"skipped: {e}")
