"""Generated bad (and borderline good) inputs to the library: indices, prompts, token tensors, hook names, lens and
probe arguments, scan settings, and broken model directories. Each case says what must happen: a typed error
(``InvalidInput`` / ``ModelUnavailable``) or a correct result (checked). See tests/fuzz/__init__.py."""
from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from interp.backends.bridge import bridge_of
from tests.fuzz import Case, Outcome, graph_cases, judge

PART = "library"

# ----------------------------------------------------------------------------- values, as JSON-able specs

#: index value spec -> (kind of answer for a valid index 0..n-1)
INDEX_SPECS = ["int:1", "int:0", "np64:1", "np32:0", "npu8:1", "torch:1", "torch32:0", "int:-1", "int:99",
               "np64:-3", "float:1.5", "float:1.0", "npf:1.0", "torchf:1.0", "bool:true", "bool:false",
               "npbool:true", "none", "nan", "inf", "str:1", "str:a", "list:1", "tuple:1", "bytes:1",
               "torchvec:1", "complex:1", "big:99999999999999999999"]


def value(spec: str) -> Any:
    kind, _, arg = spec.partition(":")
    return {
        "int": lambda: int(arg), "np64": lambda: np.int64(arg), "np32": lambda: np.int32(arg),
        "npu8": lambda: np.uint8(arg), "torch": lambda: torch.tensor(int(arg)),
        "torch32": lambda: torch.tensor(int(arg), dtype=torch.int32), "float": lambda: float(arg),
        "npf": lambda: np.float64(arg), "torchf": lambda: torch.tensor(float(arg)), "bool": lambda: arg == "true",
        "npbool": lambda: np.bool_(arg == "true"), "none": lambda: None, "nan": lambda: float("nan"),
        "inf": lambda: float("inf"), "str": lambda: arg, "list": lambda: [int(arg)], "tuple": lambda: (int(arg),),
        "bytes": lambda: arg.encode(), "torchvec": lambda: torch.tensor([int(arg)]), "complex": lambda: complex(arg),
        "big": lambda: int(arg),
    }[kind]()


def valid_index(spec: str, n: int) -> int | None:
    """The index a spec names if the library must accept it for a range 0..n-1, else None."""
    kind, _, arg = spec.partition(":")
    if kind in ("int", "np64", "np32", "npu8", "torch", "torch32", "big") and 0 <= int(arg) < n:
        return int(arg)
    return None


# ----------------------------------------------------------------------------- shared fixtures (per process)


@functools.lru_cache(maxsize=1)
def handle():
    torch.set_num_threads(1)
    from interp import load_model
    from tests.fuzz.model_dirs import gpt2_dir

    return load_model(gpt2_dir())  # 2 layers x 4 heads, d_vocab 400, n_ctx 64


@functools.lru_cache(maxsize=1)
def report():
    from probes.heads.report import head_report

    return head_report(handle(), seq_len=4, n_batch=2, ablation="off")


def planted(n: int = 200, d: int = 6, seed: int = 0, offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x[:, 0] + 0.3 * x[:, 1] > 0).astype(np.int64)
    return x + offset, y


# ----------------------------------------------------------------------------- the cases


def cases() -> Iterator[Case]:
    yield from _index_cases()
    yield from _prompt_cases()
    yield from _token_cases()
    yield from _hook_cases()
    yield from _lens_cases()
    yield from _probe_cases()
    yield from _scan_cases()
    yield from _loading_cases()
    yield from _fourier_cases()
    yield from _backend_cases()
    yield from _emergence_cases()
    yield from graph_cases.cases()  # transcoder files, graphs, graph JSON, routes
    yield from _learner_cases()


def _c(group: str, name: str, expect: str, fast: bool = False, isolate: bool = False, timeout_s: float = 120.0,
       **params: Any) -> Case:
    return Case(PART, group, name, expect, params, isolate=isolate, timeout_s=timeout_s, fast=fast)  # type: ignore


def _index_cases() -> Iterator[Case]:
    for target, spec in itertools.product(("check_layer", "check_head.layer", "check_head.head", "hook_layers",
                                           "pattern.layer", "pattern.head"), INDEX_SPECS):
        n = 4 if target.endswith("head") else 2
        ok = valid_index(spec, n) is not None
        if target == "hook_layers" and spec in ("none", "list:1", "tuple:1", "torchvec:1"):
            ok = True  # None = every layer; a list of layers is what the argument takes
        fast = spec in ("np64:1", "float:1.5", "bool:true", "none", "nan", "str:1") and target == "check_head.head"
        yield _c("index", f"index.{target}.{spec}", "ok" if ok else "InvalidInput", fast, target=target, spec=spec)


BAD_PROMPTS: dict[str, Any] = {
    "empty": "", "spaces": "   ", "newlines": "\n\t\n", "lone_high_surrogate": "abc\ud800def",
    "lone_low_surrogate": "\udfff", "surrogate_in_list": ["fine", "x\udc80"], "none": None, "int": 5,
    "bytes": b"hello", "empty_list": [], "list_with_empty": ["a", ""], "list_with_none": ["a", None],
    "dict": {"a": 1}, "too_long": "word " * 200, "nested_list": [["a"]], "float": 1.5,
}
GOOD_PROMPTS: dict[str, Any] = {
    "nul_char": "a\x00b", "emoji": "hi 🙂 there", "rtl": "שלום עולם", "tuple": ("one", "two words"),
    "combining": "e\u0301te", "long_truncated": "word " * 200, "single_char": "x",
}


def _prompt_cases() -> Iterator[Case]:
    for name in BAD_PROMPTS:
        yield _c("prompt", f"prompt.bad.{name}", "InvalidInput", name in ("lone_high_surrogate", "empty"), key=name)
    for name in GOOD_PROMPTS:
        yield _c("prompt", f"prompt.good.{name}", "ok", name == "emoji", key=name)


TOKEN_SPECS = {
    "zero_rows": ("InvalidInput", lambda: torch.zeros(0, 5, dtype=torch.long)),
    "zero_cols": ("InvalidInput", lambda: torch.zeros(1, 0, dtype=torch.long)),
    "id_eq_vocab": ("InvalidInput", lambda: torch.tensor([[0, handle().info.d_vocab]])),
    "id_huge": ("InvalidInput", lambda: torch.tensor([[0, 2**40]])),
    "negative": ("InvalidInput", lambda: torch.tensor([[0, -1]])),
    "float": ("InvalidInput", lambda: torch.tensor([[0.0, 1.5]])),
    "float_whole": ("InvalidInput", lambda: torch.tensor([[0.0, 1.0]])),
    "bool": ("InvalidInput", lambda: torch.tensor([[True, False]])),
    "three_d": ("InvalidInput", lambda: torch.zeros(1, 2, 3, dtype=torch.long)),
    "zero_d": ("InvalidInput", lambda: torch.tensor(3)),
    "numpy_float": ("InvalidInput", lambda: np.array([[0.5, 1.0]])),
    "complex": ("InvalidInput", lambda: torch.tensor([[1 + 1j]])),
    "too_long": ("InvalidInput", lambda: torch.zeros(1, 65, dtype=torch.long)),
    "numpy_int": ("ok", lambda: np.array([[0, 5, 9]])),
    "int32": ("ok", lambda: torch.tensor([[0, 5, 9]], dtype=torch.int32)),
    "one_d": ("ok", lambda: torch.tensor([0, 5, 9])),
    "max_id": ("ok", lambda: torch.tensor([[0, handle().info.d_vocab - 1]])),
}


def _token_cases() -> Iterator[Case]:
    for name, (expect, _) in TOKEN_SPECS.items():
        for via in ("tokenize", "run", "ablate"):
            if via == "ablate" and expect == "ok":
                continue
            yield _c("tokens", f"tokens.{via}.{name}", expect, via == "tokenize" and name in ("zero_rows", "float"),
                     key=name, via=via)


HOOKS = {
    "bare_valid": ("ok", "blocks.0.hook_resid_pre"), "bare_unknown": ("InvalidInput", "blocks.0.nope"),
    "list_valid": ("ok", ["blocks.1.attn.hook_pattern"]),
    "list_with_int": ("InvalidInput", ["blocks.0.hook_resid_pre", 3]),
    "none": ("InvalidInput", None), "dict": ("InvalidInput", {"blocks.0.hook_resid_pre": 1}),
    "bytes": ("InvalidInput", b"blocks.0.hook_resid_pre"), "int": ("InvalidInput", 7),
    "typo": ("InvalidInput", ["blocks.0.hook_resid_pree"]), "empty_list": ("ok", []),
}


def _hook_cases() -> Iterator[Case]:
    for name, (expect, _) in HOOKS.items():
        yield _c("hooks", f"hooks.{name}", expect, name == "bare_valid", key=name)
    for kind in ("pattern", "nope", "", None):
        yield _c("hooks", f"hooks.kind.{kind}", "ok" if kind == "pattern" else "InvalidInput", key=str(kind),
                 kind=kind)


LENS = {
    "targets_2d": "InvalidInput", "targets_float": "InvalidInput", "targets_bool": "InvalidInput",
    "targets_len_mismatch": "InvalidInput", "targets_multi_token_text": "InvalidInput",
    "targets_out_of_vocab": "InvalidInput",
    "k_negative": "InvalidInput", "k_float": "InvalidInput", "k_too_big": "InvalidInput", "k_none": "InvalidInput",
    "positions_float": "InvalidInput", "positions_out": "InvalidInput", "positions_empty": "InvalidInput",
    "positions_np": "ok", "targets_0d": "ok", "targets_np_1d": "ok", "prompt_two": "InvalidInput",
    "prompt_surrogate": "InvalidInput",
}


def _lens_cases() -> Iterator[Case]:
    for name, expect in LENS.items():
        yield _c("lens", f"lens.{name}", expect, name == "targets_2d", key=name)


PROBE = {
    # fit_logistic
    "log.y_short": "InvalidInput", "log.y_long": "InvalidInput", "log.x_nan": "InvalidInput",
    "log.x_inf": "InvalidInput", "log.x_1d": "InvalidInput", "log.x_0rows": "InvalidInput",
    "log.y_fractional": "InvalidInput", "log.y_strings": "InvalidInput", "log.y_negative": "InvalidInput",
    "log.y_nan": "InvalidInput", "log.y_one_class": "InvalidInput", "log.l2_negative": "InvalidInput",
    "log.l2_nan": "InvalidInput", "log.l2_empty": "InvalidInput", "log.max_iter_0": "InvalidInput",
    "log.max_iter_neg": "InvalidInput", "log.max_iter_float": "InvalidInput", "log.n_classes_small": "InvalidInput",
    "log.x_object": "InvalidInput", "log.x_huge": "InvalidInput", "log.split_out_of_range": "InvalidInput",
    "log.y_integral_float": "ok", "log.y_bool": "ok", "log.list_input": "ok", "log.offset_1e4": "ok",
    # fit_ridge
    "ridge.y_nan": "InvalidInput", "ridge.y_strings": "InvalidInput", "ridge.lambda_negative": "InvalidInput",
    "ridge.x_nan": "InvalidInput", "ridge.y_short": "InvalidInput", "ridge.offset_1e4": "ok",
    # split_indices
    "split.over_one": "InvalidInput", "split.sum_over_one": "InvalidInput", "split.negative": "InvalidInput",
    "split.nan": "InvalidInput", "split.n_zero": "InvalidInput", "split.n_float": "InvalidInput",
    "split.one_fraction": "InvalidInput", "split.groups_short": "InvalidInput", "split.seed_negative": "InvalidInput",
    "split.np_n": "ok",
    # datasets / interventions
    "csv.position_bool": "InvalidInput", "csv.position_float": "InvalidInput", "csv.span_reversed": "InvalidInput",
    "hook.alpha_nan": "InvalidInput", "hook.direction_nan": "InvalidInput", "hook.direction_2d": "InvalidInput",
    "hook.direction_zero": "InvalidInput", "hook.position_float": "InvalidInput", "hook.mode_bad": "InvalidInput",
}


def _probe_cases() -> Iterator[Case]:
    for name, expect in PROBE.items():
        yield _c("probe", f"probe.{name}", expect, name in ("log.y_fractional", "log.x_nan", "split.over_one",
                                                          "ridge.offset_1e4"), key=name)


SCAN = {
    "seq_len_float": "InvalidInput", "seq_len_zero": "InvalidInput", "seq_len_huge": "InvalidInput",
    "seq_len_bool": "InvalidInput", "n_batch_zero": "InvalidInput", "n_batch_none": "InvalidInput",
    "seed_negative": "InvalidInput", "ablation_bad": "InvalidInput", "ablation_none": "InvalidInput",
    "ablate_mode_bad": "InvalidInput", "ablate_head_out": "InvalidInput", "ablate_head_float": "InvalidInput",
    "ablate_head_str": "ok", "ablate_head_np": "ok", "ablate_wrong_len": "InvalidInput",
    "nan_weights_copying": "InvalidInput", "nan_weights_kcomp": "InvalidInput", "zero_ov_kcomp": "ok",
    "gqa.llama": "ok", "gqa.qwen2": "ok", "gqa.mistral": "ok",
}


def _scan_cases() -> Iterator[Case]:
    for name, expect in SCAN.items():
        isolate = name.startswith("nan_weights")  # the unguarded eigvals segfaulted on NaN
        yield _c("scan", f"scan.{name}", expect, name in ("seq_len_float", "gqa.llama"), isolate=isolate, key=name)


LOADING = {
    "truncated_half": "ModelUnavailable", "truncated_header": "ModelUnavailable", "empty_weights": "ModelUnavailable",
    "missing_keys": "ModelUnavailable", "missing_one_key": "ModelUnavailable", "unexpected_key": "ModelUnavailable",
    "n_layer_more": "ModelUnavailable", "n_layer_fewer": "ModelUnavailable", "vocab_mismatch": "ModelUnavailable",
    "n_layer_zero": "ModelUnavailable", "n_layer_negative": "ModelUnavailable", "n_layer_string": "ModelUnavailable",
    "n_layer_float": "ModelUnavailable", "n_layer_bool": "ModelUnavailable", "n_embd_null": "ModelUnavailable",
    "eps_nan_text": "ModelUnavailable", "config_null": "ModelUnavailable", "config_list": "ModelUnavailable",
    "config_binary": "ModelUnavailable", "config_empty": "ModelUnavailable", "config_deep": "ModelUnavailable",
    "config_dir": "ModelUnavailable", "nan_weights": "ModelUnavailable", "inf_weights": "ModelUnavailable",
    "decoy_renamed": "CheckpointRefused", "decoy_beside": "ok", "index_missing_shard": "ModelUnavailable",
    "index_escape": "ModelUnavailable", "weights_is_dir": "ModelUnavailable", "bert": "ModelUnavailable",
    "t5": "ModelUnavailable", "mamba_loads": "ok", "mamba_scan": "InvalidInput", "mamba_report": "InvalidInput",
    "mamba_kcomp": "InvalidInput", "mamba_copying": "InvalidInput", "mamba_detector": "InvalidInput",
    "path_too_long": "InvalidInput", "component_too_long": "InvalidInput", "path_nul": "InvalidInput",
    "name_none": "InvalidInput", "name_int": "InvalidInput", "device_tpu": "InvalidInput",
    "device_garbage": "InvalidInput", "device_cuda_7": "InvalidInput", "device_int": "InvalidInput",
    "dtype_int8": "InvalidInput", "native_missing_key": "ModelUnavailable", "native_n_layers_zero": "ModelUnavailable",
    "native_nan": "ModelUnavailable", "native_fields_null": "ModelUnavailable",
    # dangerous: could block forever or allocate a 7B model
    "fifo_weights": "ModelUnavailable", "fifo_config": "ModelUnavailable", "fifo_tokenizer": "ModelUnavailable",
    "llama7b_over_gpt2": "ModelUnavailable",
    "huge_vocab_config": "ModelUnavailable",
}
DANGEROUS = ("fifo_weights", "fifo_config", "fifo_tokenizer", "llama7b_over_gpt2", "huge_vocab_config")


def _loading_cases() -> Iterator[Case]:
    for name, expect in LOADING.items():
        if expect == "CheckpointRefused":
            expect = "ModelUnavailable"  # CheckpointRefused is a ModelUnavailable
        fast = name in ("missing_keys", "nan_weights", "decoy_beside", "fifo_weights", "config_null", "bert")
        yield _c("loading", f"loading.{name}", expect, fast, isolate=name in DANGEROUS, timeout_s=90, key=name)


FOURIER = {
    "p_even": "InvalidInput", "p_float": "InvalidInput", "p_str": "InvalidInput", "p_none": "InvalidInput",
    "p_over_vocab": "InvalidInput", "layer_out": "InvalidInput", "threshold_nan": "InvalidInput",
    "chunk_zero": "InvalidInput", "mask_float": "InvalidInput", "mask_empty": "InvalidInput",
    "attn_only": "InvalidInput", "nan_embedding": "InvalidInput", "ok_p7": "ok", "ok_np_p": "ok",
}


def _fourier_cases() -> Iterator[Case]:
    for name, expect in FOURIER.items():
        yield _c("fourier", f"fourier.{name}", expect, name in ("p_str", "mask_empty", "ok_p7"), key=name)


#: The nnsight and NDIF backends: bad backend names, broken or unmappable models, bad runs (through nnsight here
#: and through nnsight's serialise-and-run simulation of an NDIF request), and NDIF unreachable (nothing listens
#: on 127.0.0.1:9), without a key, or asked for a local model: a typed error within seconds, or a correct result.
BACKEND = {
    "name_unknown": "InvalidInput", "name_empty": "InvalidInput", "name_none": "InvalidInput",
    "name_int": "InvalidInput", "name_upper": "InvalidInput", "name_space": "InvalidInput", "name_nul": "InvalidInput",
    "nnsight_ok": "ok", "nnsight_llama_ok": "ok", "nnsight_native": "ModelUnavailable",
    "nnsight_bert": "ModelUnavailable", "nnsight_t5": "ModelUnavailable", "nnsight_mamba": "ModelUnavailable",
    "nnsight_missing_keys": "ModelUnavailable", "nnsight_nan_weights": "ModelUnavailable",
    "nnsight_decoy": "ModelUnavailable", "site_unknown": "InvalidInput", "site_not_reached": "InvalidInput",
    "site_layer_out": "InvalidInput", "edit_not_tensor": "InvalidInput", "edit_wrong_shape": "InvalidInput",
    "edit_not_callable": "InvalidInput", "grad_not_scalar": "InvalidInput", "grad_unreached": "InvalidInput",
    "grad_true_remote": "InvalidInput", "local_edit_not_tensor": "InvalidInput",
    "local_edit_wrong_shape": "InvalidInput",
    "local_grad_not_scalar": "InvalidInput", "local_ok": "ok", "local_edit_unpicklable": "InvalidInput",
    "ndif_no_key": "ModelUnavailable", "ndif_offline": "ModelUnavailable", "ndif_bad_host": "InvalidInput",
    "ndif_local_name": "InvalidInput", "ndif_directory": "InvalidInput", "ndif_bad_hub_name": "InvalidInput",
    "ndif_hosted_offline": "ModelUnavailable", "with_remote_ndif": "InvalidInput",
}


def _backend_cases() -> Iterator[Case]:
    fast = ("name_unknown", "nnsight_ok", "nnsight_mamba", "edit_wrong_shape", "local_edit_not_tensor",
            "ndif_no_key", "ndif_offline")
    for name, expect in BACKEND.items():
        yield _c("backend", f"backend.{name}", expect, name in fast, timeout_s=20 if name.startswith("ndif") else 180,
                 key=name)


@functools.lru_cache(maxsize=1)
def nnsight_handle():
    from interp import load_model
    from tests.fuzz.model_dirs import gpt2_dir

    return load_model(gpt2_dir(), backend="nnsight")


def _with_env(fn: Callable[[], Any], **env: str | None) -> Callable[[], Any]:
    """``fn`` run with these environment variables set (None: unset), restored after."""
    import os

    def run():
        saved = {k: os.environ.get(k) for k in env}
        try:
            for k, v in env.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
            return fn()
        finally:
            for k, v in saved.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)

    return run


def _build_backend(case: Case):
    import threading

    from interp import Site, load_model
    from tests.fuzz import model_dirs as md

    key = case.params["key"]
    good = md.gpt2_dir()
    names = {"name_unknown": "nnsite", "name_empty": "", "name_none": None, "name_int": 3, "name_upper": "NDIF",
             "name_space": "bridge ", "name_nul": "nnsight\x00"}
    if key in names:
        return (lambda: load_model(good, backend=names[key])), None
    toks = torch.tensor([[0, 5, 9, 13], [0, 7, 0, 0]])

    def same_as_bridge(h):
        ref = load_model(h.info.path)
        got, want = h.logits(toks), ref.logits(toks)
        return None if torch.allclose(got, want, atol=1e-4) else "logits differ from the bridge's"

    if key == "nnsight_ok":
        return (lambda: load_model(good, backend="nnsight")), same_as_bridge
    if key == "nnsight_llama_ok":
        return (lambda: load_model(md.gqa_dir("llama"), backend="nnsight")), same_as_bridge
    if key == "nnsight_native":
        from interp.loading import BUNDLED_DIR

        return (lambda: load_model(BUNDLED_DIR / "attn-only-1l", backend="nnsight")), None
    dirs = {"nnsight_bert": md.bert_dir, "nnsight_t5": md.t5_dir, "nnsight_mamba": md.mamba_dir}
    if key in dirs:
        return (lambda: load_model(dirs[key](), backend="nnsight")), None
    if key in ("nnsight_missing_keys", "nnsight_nan_weights", "nnsight_decoy"):
        d = md.copy_of(good, key)
        if key == "nnsight_missing_keys":
            md.drop_keys(d, "h.1.attn")
        elif key == "nnsight_nan_weights":
            md.poison(d)
        else:
            md.pickle_decoy(d, rename_safetensors="weights.bin.safetensors.off")
        return (lambda: load_model(d, backend="nnsight")), None
    if key.startswith("ndif"):
        hosted = "openai-community/gpt2"
        env = {"NDIF_API_KEY": "k", "NDIF_HOST": "http://127.0.0.1:9"}
        if key == "ndif_hosted_offline":
            from interp.backends.ndif import hosted_models

            return _with_env(hosted_models, **env), None
        target = {"ndif_local_name": "code-gpt2", "ndif_directory": str(good), "ndif_bad_hub_name": "a/b/c"}.get(
            key, hosted)
        if key == "ndif_no_key":
            env = {"NDIF_API_KEY": None, "NDIF_HOST": None}
        elif key == "ndif_bad_host":
            env = {"NDIF_API_KEY": "k", "NDIF_HOST": "ftp://example.org"}
        return _with_env(lambda: load_model(target, backend="ndif"), **env), None
    h = nnsight_handle()
    local = h.with_remote("local")  # type: ignore[attr-defined]
    if key == "with_remote_ndif":
        return (lambda: h.with_remote("ndif")), None
    lock = threading.Lock()
    runs = {
        "site_unknown": lambda: h.run(toks, read=["blocks.0.attn.hook_patern"]),
        "site_not_reached": lambda: h.run(toks, read=[Site("mlp_in", 0)]),
        "site_layer_out": lambda: h.run(toks, read=[Site("resid_pre", 9)]),
        "edit_not_tensor": lambda: h.run(toks, edit={Site("z", 0): lambda z: 3}),
        "edit_wrong_shape": lambda: h.run(toks, edit={Site("resid_pre", 1): lambda x: x[:, :1]}),
        "edit_not_callable": lambda: h.run(toks, edit={Site("z", 0): 3}),
        "grad_not_scalar": lambda: h.run(toks, read=[Site("z", 0)], grad_of=lambda lg: lg.sum(-1)),
        "grad_unreached": lambda: h.run(toks, read=[Site("resid_post", 1)], grad_of=lambda lg: lg.detach().sum()),
        "grad_true_remote": lambda: local.run(toks, read=[Site("z", 0)], grad=True),
        "local_edit_not_tensor": lambda: local.run(toks, edit={Site("z", 0): lambda z: "x"}),
        "local_edit_wrong_shape": lambda: local.run(toks, edit={Site("pattern", 1): lambda p: p[..., :2]}),
        "local_grad_not_scalar": lambda: local.run(toks, read=[Site("q", 1)], grad_of=lambda lg: lg[0]),
        "local_ok": lambda: local.run(toks, read=[Site("pattern", 1)], edit={Site("v", 0): lambda v: v * 0.5}),
        "local_edit_unpicklable": lambda: local.run(toks, edit={Site("z", 0): lambda z, lk=lock: z if lk else z}),
    }

    def local_ok(run):
        want = h.run(toks, read=[Site("pattern", 1)], edit={Site("v", 0): lambda v: v * 0.5})
        ok = torch.allclose(run.logits, want.logits, atol=1e-5) and torch.allclose(run[Site("pattern", 1)],
                                                                                   want[Site("pattern", 1)])
        return None if ok else "remote='local' differs from the in-process run"

    return runs[key], (local_ok if key == "local_ok" else None)
#: Sweep and emergence inputs: data mixtures, training histories, onset fits, seed ranges, grids, addresses.
EMERGENCE = {
    "share_nan": "InvalidInput", "share_above_one": "InvalidInput", "share_text": "InvalidInput",
    "share_none": "InvalidInput", "share_bool": "InvalidInput", "span_zero": "InvalidInput",
    "span_too_long": "InvalidInput", "span_float": "InvalidInput", "vocab_one": "InvalidInput",
    "ok_share_half": "ok", "history_nan": "InvalidInput", "history_empty": "InvalidInput",
    "history_mismatch": "InvalidInput", "icl_mismatch": "InvalidInput", "ok_history_flat": "ok",
    "fit_one_share": "InvalidInput", "fit_nan_onsets": "InvalidInput", "fit_zero_shares": "InvalidInput",
    "ok_fit": "ok", "ci_empty": "InvalidInput", "ci_nan": "InvalidInput", "ok_ci_one": "ok",
    "seeds_reversed": "InvalidInput", "seeds_huge": "InvalidInput", "ok_seeds_mixed": "ok",
    "grid_dup": "InvalidInput", "grid_seed": "InvalidInput", "address_closed": "InvalidInput",
    "address_garbage": "InvalidInput", "shard_zero": "InvalidInput",
}


def _emergence_cases() -> Iterator[Case]:
    for name, expect in EMERGENCE.items():
        yield _c("emergence", f"emergence.{name}", expect, name in ("share_nan", "history_nan", "ok_fit"), key=name)


# ----------------------------------------------------------------------------- running one case


def run_case(case: Case) -> Outcome:
    fn, check = BUILDERS[case.group](case)
    return judge(case, fn, check)


def _build_index(case: Case):
    h, spec, target = handle(), case.params["spec"], case.params["target"]
    v = value(spec)
    want = valid_index(spec, 4 if target.endswith("head") else 2)
    calls: dict[str, Callable[[], Any]] = {
        "check_layer": lambda: h.check_layer(v),
        "check_head.layer": lambda: h.check_head(v, 0),
        "check_head.head": lambda: h.check_head(1, v),
        "hook_layers": lambda: h.sites("pattern", layers=v),
        "pattern.layer": lambda: report().pattern(v, 0),
        "pattern.head": lambda: report().pattern(1, v),
    }

    def check(r):
        if target == "check_layer":
            return None if r == want and type(r) is int else f"got {r!r}, want int {want}"
        if target.startswith("check_head"):
            exp = (want, 0) if target.endswith("layer") else (1, want)
            return None if tuple(r) == exp and all(type(x) is int for x in r) else f"got {r!r}, want {exp}"
        if target == "hook_layers":
            layers = [0, 1] if spec == "none" else [1] if want is None else [want]
            return None if [str(s) for s in r] == [f"blocks.{i}.attn.hook_pattern" for i in layers] else f"got {r!r}"
        exp = report().example_patterns[(want, 0) if target.endswith("layer") else (1, want)]
        return None if np.array_equal(r, exp.astype(np.float32)) else "wrong pattern"

    return calls[target], check


def _build_prompt(case: Case):
    from interp.tokens import tokenize

    h, key = handle(), case.params["key"]
    if case.name.startswith("prompt.bad."):
        return (lambda: tokenize(h, BAD_PROMPTS[key])), None
    p = GOOD_PROMPTS[key]
    truncate = key == "long_truncated"
    n = 2 if isinstance(p, tuple) else 1

    def check(b):
        if b.tokens.shape[0] != n or b.tokens.dtype != torch.long:
            return f"shape {tuple(b.tokens.shape)}"
        if truncate and not (b.truncated and b.tokens.shape[1] == 64):
            return "not truncated to n_ctx"
        if int(b.tokens.max()) >= h.info.d_vocab:
            return "ids out of range"
        return None

    return (lambda: tokenize(h, p, truncate=truncate)), check


def _build_tokens(case: Case):
    from interp.tokens import tokenize
    from probes.heads.ablation import ablate_heads

    h, key, via = handle(), case.params["key"], case.params["via"]
    t = TOKEN_SPECS[key][1]()
    if via == "tokenize":
        fn = lambda: tokenize(h, t)  # noqa: E731
    elif via == "run":
        fn = lambda: h.run(t, read=["blocks.0.hook_resid_pre"])  # noqa: E731
    else:
        fn = lambda: ablate_heads(h, t, 2, heads=[(0, 0)])  # noqa: E731
    ref = np.asarray(t).reshape(1, -1) if TOKEN_SPECS[key][0] == "ok" else None

    def check(r):
        toks = r.tokens if hasattr(r, "tokens") else r.batch.tokens
        if not np.array_equal(toks.cpu().numpy(), ref):
            return "tokens changed"
        if via == "run" and tuple(r["blocks.0.hook_resid_pre"].shape[:2]) != ref.shape:
            return "wrong capture shape"
        return None

    return fn, check


def _build_hooks(case: Case):
    h, key = handle(), case.params["key"]
    if "kind" in case.params:
        kind = case.params["kind"]
        return (lambda: h.sites(kind)), (lambda r: None if len(r) == 2 else f"got {r}")
    expect, hooks = HOOKS[key]

    def check(cap):
        names = [hooks] if isinstance(hooks, str) else hooks
        got = {str(s) for s in cap.acts}
        ok = got == set(names)
        return None if ok else f"captured {sorted(got)}, asked {names}"

    return (lambda: h.run("hello world", read=hooks)), check


def _build_lens(case: Case):
    from probes.lens.logit import logit_lens

    h, key = handle(), case.params["key"]
    prompt = "the cat sat on the mat"
    n_pos = int(h.tokenizer(prompt, add_special_tokens=False)["input_ids"].__len__()) + 1
    kw: dict[str, Any] = {
        "targets_2d": {"targets": torch.zeros(2, n_pos, dtype=torch.long)},
        "targets_float": {"targets": torch.zeros(n_pos)},
        "targets_bool": {"targets": True},
        "targets_len_mismatch": {"targets": torch.zeros(n_pos + 3, dtype=torch.long)},
        "targets_multi_token_text": {"targets": " the cat sat"},
        "targets_out_of_vocab": {"targets": 10_000},
        "k_negative": {"k": -1}, "k_float": {"k": 2.5}, "k_too_big": {"k": 10_000}, "k_none": {"k": None},
        "positions_float": {"positions": [1.5]}, "positions_out": {"positions": [99]},
        "positions_empty": {"positions": []},
        "positions_np": {"positions": np.array([1, 2])}, "targets_0d": {"targets": torch.tensor(5)},
        "targets_np_1d": {"targets": np.arange(n_pos)},
    }.get(key, {})
    p = {"prompt_two": ["a b", "c d"], "prompt_surrogate": "ab\ud800"}.get(key, prompt)

    def check(r):
        if not all(bool(torch.isfinite(getattr(r, f)).all()) for f in ("kl_to_final", "entropy", "target_prob")):
            return "non-finite lens numbers"
        if key == "positions_np" and r.positions != [1, 2]:
            return f"positions {r.positions}"
        return None

    return (lambda: logit_lens(h, p, **kw)), check


def _build_probe(case: Case):
    from probes.probing import intervention
    from probes.probing.linear import Split, fit_logistic, fit_ridge, split_indices
    from tasks import labelled as datasets

    key = case.params["key"]
    x, y = planted()
    s = split_indices(len(y), seed=0)
    kind, _, what = key.partition(".")
    if kind == "log":
        xx, yy, kw, ss = x, y, {}, s
        if what == "y_short":
            yy = y[:-5]
        elif what == "y_long":
            yy = np.concatenate([y, y[:3]])
        elif what == "x_nan":
            xx = x.copy()
            xx[7, 2] = np.nan
        elif what == "x_inf":
            xx = x.copy()
            xx[3, 0] = -np.inf
        elif what == "x_1d":
            xx = x[:, 0]
        elif what == "x_0rows":
            xx = x[:0]
        elif what == "y_fractional":
            yy = y + 0.5
        elif what == "y_strings":
            yy = np.array(["a", "b"] * (len(y) // 2))
        elif what == "y_negative":
            yy = y - 1
        elif what == "y_nan":
            yy = y.astype(float)
            yy[0] = np.nan
        elif what == "y_one_class":
            yy = np.zeros_like(y)
        elif what == "l2_negative":
            kw = {"l2_grid": (-1e-3,)}
        elif what == "l2_nan":
            kw = {"l2_grid": (float("nan"),)}
        elif what == "l2_empty":
            kw = {"l2_grid": ()}
        elif what == "max_iter_0":
            kw = {"max_iter": 0}
        elif what == "max_iter_neg":
            kw = {"max_iter": -5}
        elif what == "max_iter_float":
            kw = {"max_iter": 10.5}
        elif what == "n_classes_small":
            kw = {"n_classes": 1}
        elif what == "x_object":
            xx = np.array([[None] * 6] * len(y), dtype=object)
        elif what == "x_huge":
            xx = x.astype(np.float64) * 1e300
            xx[0, 0] = np.inf
        elif what == "split_out_of_range":
            ss = Split(np.array([0, 1, 500]), s.val, s.test)
        elif what == "y_integral_float":
            yy = y.astype(np.float64)
        elif what == "y_bool":
            yy = y.astype(bool)
        elif what == "list_input":
            xx = x.tolist()
        elif what == "offset_1e4":
            xx = x + 1e4

        def check(p):
            if not (bool(torch.isfinite(p.weight).all()) and bool(torch.isfinite(p.bias).all())):
                return "NaN weights returned"
            acc = float((p.predict(np.asarray(xx, np.float64))[s.test, 0] == y[s.test]).mean())
            return None if acc > 0.8 else f"test accuracy {acc:.2f}"

        return (lambda: fit_logistic(xx, yy, ss, **kw)), check
    if kind == "ridge":
        yr = x[:, 0] * 2.0 + x[:, 1]
        xx, yy, kw = x, yr, {}
        if what == "y_nan":
            yy = yr.copy()
            yy[4] = np.nan
        elif what == "y_strings":
            yy = np.array(["1.0"] * len(yr))
        elif what == "lambda_negative":
            kw = {"lambdas": (-1.0,)}
        elif what == "x_nan":
            xx = x.copy()
            xx[0, 0] = np.nan
        elif what == "y_short":
            yy = yr[:10]
        elif what == "offset_1e4":
            xx = (x.astype(np.float64) * 1e-2 + 1e4).astype(np.float32)
            yy = (xx.astype(np.float64) - 1e4)[:, 0] * 100.0

        def check_r(p):
            pred = p.predict(xx)[:, 0]
            err = float(np.abs(pred - yy).max())
            tol = 0.05 if what == "offset_1e4" else 0.1
            return None if err < tol else f"max prediction error {err:.3g}"

        return (lambda: fit_ridge(xx, yy, s, **kw)), check_r
    if kind == "split":
        args: dict[str, Any] = {
            "over_one": {"fractions": (1.2, 0.1)}, "sum_over_one": {"fractions": (0.7, 0.4)},
            "negative": {"fractions": (-0.1, 0.5)}, "nan": {"fractions": (float("nan"), 0.1)},
            "n_zero": {"n": 0}, "n_float": {"n": 10.5}, "one_fraction": {"fractions": (0.7,)},
            "groups_short": {"groups": np.arange(5)}, "seed_negative": {"seed": -1}, "np_n": {"n": np.int64(50)},
        }[what]
        n = args.pop("n", 50)

        def check_s(sp):
            allrows = np.sort(np.concatenate([sp.train, sp.val, sp.test]))
            return None if np.array_equal(allrows, np.arange(50)) else "rows lost or repeated"

        return (lambda: split_indices(n, **args)), check_s
    if kind == "csv":
        rule = {"position_bool": True, "position_float": 1.5, "span_reversed": (3, 1)}[what]
        return (lambda: datasets.parse_labelled_csv("text,label\na,x\nb,y\n", position=rule)), None
    d = torch.ones(8)
    kw2: dict[str, Any] = {
        "alpha_nan": {"alpha": float("nan")}, "direction_nan": {"direction": torch.full((8,), float("nan"))},
        "direction_2d": {"direction": torch.ones(2, 8)}, "direction_zero": {"direction": torch.zeros(8)},
        "position_float": {"positions": 1.5}, "mode_bad": {"mode": "multiply"},
    }[what]
    direction = kw2.pop("direction", d)

    def make():
        hook = intervention.direction_edit(direction, **kw2)
        return hook(torch.zeros(2, 3, 8))

    return make, None


def _build_scan(case: Case):
    from probes.heads.ablation import ablate_heads
    from probes.heads.detectors import copying_scores, k_composition_scores, repeated_batch, scan_heads
    from probes.heads.report import head_report

    key = case.params["key"]
    if key.startswith("gqa."):
        from interp import load_model
        from tests.fuzz.model_dirs import gqa_dir

        def gqa():
            g = load_model(gqa_dir(key.split(".")[1]))
            rep = head_report(g, seq_len=5, n_batch=2, ablation="zero")
            return rep, k_composition_scores(g)

        def check_g(r):
            rep, kc = r
            t = rep.scores.table()
            if len(t) != 8 or not t.drop(columns=["head"]).notna().all().all():
                return "missing or NaN head scores"
            return None if kc.shape == (2, 4, 2, 4) and bool(torch.isfinite(kc).all()) else "bad K-composition"

        return gqa, check_g
    h = handle()
    if key.startswith("nan_weights") or key == "zero_ov_kcomp":
        def broken():
            from interp import load_model
            from tests.fuzz.model_dirs import gpt2_dir

            g = load_model(gpt2_dir())  # a fresh copy to break
            with torch.no_grad():
                for name, p in bridge_of(g).named_parameters():
                    if name.startswith("transformer.h.0.") and (".attn.v." in name or "v_proj" in name):
                        p.fill_(float("nan") if key.startswith("nan") else 0.0)
                        break
                else:
                    raise AssertionError("no attention weight found to break")
            return copying_scores(g) if key == "nan_weights_copying" else k_composition_scores(g)

        def check_z(kc):
            return None if bool(torch.isfinite(kc).all()) else "NaN K-composition for an all-zero circuit"

        return broken, check_z
    rows = repeated_batch(h, 2, 4)
    calls: dict[str, Callable[[], Any]] = {
        "seq_len_float": lambda: scan_heads(h, seq_len=4.5), "seq_len_zero": lambda: scan_heads(h, seq_len=0),
        "seq_len_huge": lambda: scan_heads(h, seq_len=10_000), "seq_len_bool": lambda: scan_heads(h, seq_len=True),
        "n_batch_zero": lambda: scan_heads(h, n_batch=0), "n_batch_none": lambda: scan_heads(h, n_batch=None),
        "seed_negative": lambda: scan_heads(h, seed=-1), "ablation_bad": lambda: head_report(h, ablation="resample"),
        "ablation_none": lambda: head_report(h, ablation=None),
        "ablate_mode_bad": lambda: ablate_heads(h, rows, 4, mode="half"),
        "ablate_head_out": lambda: ablate_heads(h, rows, 4, heads=[(2, 0)]),
        "ablate_head_float": lambda: ablate_heads(h, rows, 4, heads=[(1, 1.5)]),
        "ablate_head_str": lambda: ablate_heads(h, rows, 4, heads=["1.2"]),
        "ablate_head_np": lambda: ablate_heads(h, rows, 4, heads=[(np.int64(1), np.int64(2))]),
        "ablate_wrong_len": lambda: ablate_heads(h, rows, 5),
    }

    def check_a(r):
        e = r.effect
        return None if not math.isnan(float(e[1, 2])) and int(torch.isnan(e).sum()) == 7 else "wrong heads ablated"

    return calls[key], check_a


def _build_loading(case: Case):
    import json
    import os

    from interp import load_model
    from tests.fuzz import model_dirs as md

    key = case.params["key"]
    good = md.gpt2_dir()
    if key in ("bert", "t5"):
        d = md.bert_dir() if key == "bert" else md.t5_dir()
        return (lambda: load_model(d)), None
    if key.startswith("mamba"):
        from probes.heads.detectors import copying_scores, detector_scores, k_composition_scores, scan_heads
        from probes.heads.report import head_report

        d = md.mamba_dir()
        fn = {"mamba_loads": lambda: load_model(d), "mamba_scan": lambda: scan_heads(load_model(d), seq_len=4),
              "mamba_report": lambda: head_report(load_model(d), seq_len=4, n_batch=2),
              "mamba_kcomp": lambda: k_composition_scores(load_model(d)),
              "mamba_copying": lambda: copying_scores(load_model(d)),
              "mamba_detector": lambda: detector_scores(load_model(d), ["a b a b"])}[key]
        return fn, (lambda h: None if h.info.n_layers == 2 else "wrong metadata")
    names = {"path_too_long": "/tmp/" + "a/" * 700, "component_too_long": "/tmp/" + "b" * 300,
             "path_nul": "/tmp/a\x00b", "name_none": None, "name_int": 42}
    if key in names:
        return (lambda: load_model(names[key])), None
    devices = {"device_tpu": "tpu", "device_garbage": "c p u!", "device_cuda_7": "cuda:7", "device_int": 3.5}
    if key in devices:
        return (lambda: load_model(good, device=devices[key])), None
    if key == "dtype_int8":
        return (lambda: load_model(good, dtype="int8")), None
    if key.startswith("native"):
        from interp.loading import BUNDLED_DIR

        src = BUNDLED_DIR / "attn-only-1l"
        d = md.copy_of(src, key)
        if key == "native_missing_key":
            keys = list(__import__("safetensors.torch", fromlist=["load_file"]).load_file(
                str(d / "model.safetensors")))
            md.drop_keys(d, keys[-1])
        elif key == "native_n_layers_zero":
            cfg = json.loads((d / "config.json").read_text())
            cfg["workbench_native_config"]["n_layers"] = 0
            (d / "config.json").write_text(json.dumps(cfg))
        elif key == "native_nan":
            md.poison(d)
        elif key == "native_fields_null":
            md.edit_config(d, workbench_native_config=None)
        return (lambda: load_model(d)), None
    d = md.copy_of(good, key)
    if key == "truncated_half":
        md.truncate(d, 0.5)
    elif key == "truncated_header":
        md.truncate(d, 0.001)
    elif key == "empty_weights":
        (d / "model.safetensors").write_bytes(b"")
    elif key == "missing_keys":
        md.drop_keys(d, "h.1.")
    elif key == "missing_one_key":
        md.drop_keys(d, "h.0.ln_1.weight")
    elif key == "unexpected_key":
        md.add_key(d)
    elif key == "n_layer_more":
        md.edit_config(d, n_layer=3)
    elif key == "n_layer_fewer":
        md.edit_config(d, n_layer=1)
    elif key == "vocab_mismatch":
        md.edit_config(d, vocab_size=500)
    elif key == "n_layer_zero":
        md.edit_config(d, n_layer=0)
    elif key == "n_layer_negative":
        md.edit_config(d, n_layer=-2)
    elif key == "n_layer_string":
        md.edit_config(d, n_layer="2")
    elif key == "n_layer_float":
        md.edit_config(d, n_layer=2.5)
    elif key == "n_layer_bool":
        md.edit_config(d, n_layer=True)
    elif key == "n_embd_null":
        md.edit_config(d, n_embd=None)
    elif key == "eps_nan_text":
        text = (d / "config.json").read_text().replace('"layer_norm_epsilon": 1e-05', '"layer_norm_epsilon": NaN')
        if "NaN" not in text:
            text = text[:-1] + ', "layer_norm_epsilon": NaN}'
        (d / "config.json").write_text(text)
    elif key == "config_null":
        md.write_config_bytes(d, b"null")
    elif key == "config_list":
        md.write_config_bytes(d, b"[1, 2, 3]")
    elif key == "config_binary":
        md.write_config_bytes(d, bytes(range(256)) * 4)
    elif key == "config_empty":
        md.write_config_bytes(d, b"")
    elif key == "config_deep":
        md.write_config_bytes(d, b"[" * 100_000 + b"]" * 100_000)
    elif key == "config_dir":
        (d / "config.json").unlink()
        (d / "config.json").mkdir()
    elif key == "nan_weights":
        md.poison(d, float("nan"), "attn.c_attn")
    elif key == "inf_weights":
        md.poison(d, float("inf"), "wte")
    elif key == "decoy_renamed":
        md.pickle_decoy(d, rename_safetensors="other.safetensors")
    elif key == "decoy_beside":
        md.pickle_decoy(d)
    elif key == "index_missing_shard":
        (d / "model.safetensors").rename(d / "model-00001-of-00002.safetensors")
        (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
            "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    elif key == "index_escape":
        (d / "model.safetensors").unlink()
        (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "../../etc/x.safetensors"}}))
    elif key == "weights_is_dir":
        (d / "model.safetensors").unlink()
        (d / "model.safetensors").mkdir()
    elif key == "fifo_weights":
        md.fifo_weights(d)
    elif key == "fifo_config":
        (d / "config.json").unlink()
        os.mkfifo(d / "config.json")
    elif key == "fifo_tokenizer":
        (d / "tokenizer.json").unlink()
        os.mkfifo(d / "tokenizer.json")
    elif key == "llama7b_over_gpt2":
        md.edit_config(d, architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=4096,
                       intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, vocab_size=32000,
                       max_position_embeddings=4096)
    elif key == "huge_vocab_config":
        md.edit_config(d, vocab_size=2_000_000_000, n_embd=4096)

    def check(h):
        from interp.loading import weights_sha256

        if key == "decoy_beside" and h.info.sha256 != weights_sha256([d / "model.safetensors"]):
            return "sha256 is not the safetensors file's"
        ref = load_model(good)
        toks = torch.tensor([[0, 5, 9, 13]])
        with torch.no_grad():
            if not torch.allclose(h.logits(toks), ref.logits(toks), atol=1e-5):
                return "logits differ from the safetensors weights (the decoy was loaded?)"
        return None

    return (lambda: load_model(d)), check


def _build_fourier(case: Case):
    from interp import load_model
    from probes.fourier.modular import model_fourier
    from tests.fuzz.model_dirs import gpt2_dir

    key, h = case.params["key"], handle()  # 2 layers, d_vocab 320, n_ctx 64: p up to 319 fits

    def nan_embedding():
        g = load_model(gpt2_dir())  # a fresh copy to break
        with torch.no_grad():
            bridge_of(g).W_E[3, 0] = float("nan")
        return model_fourier(g, 7)

    calls: dict[str, Callable[[], Any]] = {
        "p_even": lambda: model_fourier(h, 8), "p_float": lambda: model_fourier(h, 7.0),
        "p_str": lambda: model_fourier(h, "7"), "p_none": lambda: model_fourier(h, None),
        "p_over_vocab": lambda: model_fourier(h, 401), "layer_out": lambda: model_fourier(h, 7, layer=2),
        "threshold_nan": lambda: model_fourier(h, 7, threshold=float("nan")),
        "chunk_zero": lambda: model_fourier(h, 7, chunk=0),
        "mask_float": lambda: model_fourier(h, 7, masks={"a": torch.ones(49)}),
        "mask_empty": lambda: model_fourier(h, 7, masks={"a": torch.zeros(49, dtype=torch.bool)}),
        "attn_only": lambda: model_fourier(load_model("attn-only-1l"), 7), "nan_embedding": nan_embedding,
        "ok_p7": lambda: model_fourier(h, 7, layer=1), "ok_np_p": lambda: model_fourier(h, np.int64(5)),
    }

    def check(r):
        p = 7 if key == "ok_p7" else 5
        if r.logits.shape != (p * p, p) or r.neuron_table.shape != ((p - 1) // 2, h.info.d_mlp):
            return f"shapes {tuple(r.logits.shape)}, {tuple(r.neuron_table.shape)}"
        finite = all(bool(torch.isfinite(t).all()) for t in (r.embed_norms, r.unembed_norms, r.neuron_table))
        return None if finite and math.isfinite(r.losses["all"].loss) else "non-finite spectra or loss"

    return calls[key], check


def _build_emergence(case: Case):
    from experiments.distributed.cluster import check_address
    from experiments.distributed.grid import parse_grid, parse_seeds
    from experiments.distributed.patching import shards_of
    from probes.heads.emergence import fit_onset, onset_step, rise
    from probes.stats import mean_ci95
    from tasks.pairs import repeated_sequence_pairs
    from tasks.repeats import noise_with_repeats

    key = case.params["key"]
    rows = lambda **kw: noise_with_repeats(**{"n_batch": 8, "total_len": 24, "vocab": 50, "share": 0.5,  # noqa: E731
                                             "span_len": 5, **kw})
    steps = [0, 10, 20]
    calls: dict[str, Callable[[], Any]] = {
        "share_nan": lambda: rows(share=float("nan")), "share_above_one": lambda: rows(share=1.5),
        "share_text": lambda: rows(share="0.5"), "share_none": lambda: rows(share=None),
        "share_bool": lambda: rows(share=True), "span_zero": lambda: rows(span_len=0),
        "span_too_long": lambda: rows(span_len=12), "span_float": lambda: rows(span_len=5.0),
        "vocab_one": lambda: rows(vocab=1), "ok_share_half": lambda: rows(gen=torch.Generator().manual_seed(0)),
        "history_nan": lambda: onset_step(steps, [0.1, float("nan"), 0.9]),
        "history_empty": lambda: onset_step([], []), "history_mismatch": lambda: onset_step(steps, [0.1]),
        "icl_mismatch": lambda: rise(steps, [0.1, 0.5, 0.9], [0.0]),
        "ok_history_flat": lambda: (onset_step(steps, [0.05] * 3), rise(steps, [0.05] * 3, [0.0] * 3)),
        "fit_one_share": lambda: fit_onset([0.5, 0.5], [100, 120]),
        "fit_nan_onsets": lambda: fit_onset([0.5, 1.0], [float("nan"), float("nan")]),
        "fit_zero_shares": lambda: fit_onset([0.0, 0.0], [100, 200]),
        "ok_fit": lambda: fit_onset([0.5, 1.0, 0.5, 1.0], [2000, 700, 2100, 690]),
        "ci_empty": lambda: mean_ci95([]), "ci_nan": lambda: mean_ci95([1.0, float("nan")]),
        "ok_ci_one": lambda: mean_ci95([3.0]), "seeds_reversed": lambda: parse_seeds("5-1"),
        "seeds_huge": lambda: parse_seeds("0-99999999999"), "ok_seeds_mixed": lambda: parse_seeds("0-2, 7"),
        "grid_dup": lambda: parse_grid(["lr=1,1"]), "grid_seed": lambda: parse_grid(["seed=1,2"]),
        "address_closed": lambda: check_address("127.0.0.1:1"), "address_garbage": lambda: check_address("x y z"),
        "shard_zero": lambda: shards_of(repeated_sequence_pairs(handle(), 2, 4), 0),
    }

    def check(r):
        if key == "ok_share_half":
            return None if r.shape == (8, 24) and int(r[:, 0].max()) == 0 and int(r[:, 1:].min()) >= 1 else "bad rows"
        if key == "ok_history_flat":
            return None if r == (None, None) else f"a flat history gave {r}"
        if key == "ok_fit":
            return None if 1.0 < r.k < 2.0 and math.isfinite(r.predict(0.75)) else f"fit {r}"
        if key == "ok_ci_one":
            return None if r == (3.0, None) else f"{r}"
        if key == "ok_seeds_mixed":
            return None if r == (0, 1, 2, 7) else f"{r}"
        return None

    return calls[key], check


# ----------------------------------------------------------------------------- the learner's walkthrough and sampling

WALK_PROMPT = "the cat sat on the mat"  # 7 tokens with BOS on the test tokenizer
#: number spec -> its float value when the library must accept it as a temperature (0 < T <= 100), else None
TEMPERATURE_SPECS = {"float:0.7": 0.7, "int:1": 1.0, "npf:2.0": 2.0, "torchf:0.5": 0.5, "float:100": 100.0,
                     "float:0": None, "float:-1": None, "float:1e9": None, "nan": None, "inf": None,
                     "bool:true": None, "str:1": None, "none": None, "list:1": None, "complex:1": None}
SAMPLING_SPECS = {  # field -> {spec: accepted?}
    "temperature": {"float:0": True, "float:1.5": True, "float:-0.5": False, "nan": False, "inf": False,
                    "float:101": False, "bool:true": False, "str:1": False},
    "top_k": {"int:0": True, "int:5": True, "int:-1": False, "float:2.5": False, "float:2.0": False,
              "big:99999999999999999999": False, "bool:true": False, "none": False},
    "top_p": {"float:0.9": True, "float:1.0": True, "float:0": False, "float:-0.1": False, "float:1.5": False,
              "nan": False, "str:0.5": False},
    "seed": {"int:0": True, "np64:7": True, "int:-1": False, "float:1.5": False, "big:99999999999999999999": False,
             "none": False},
}


def _learner_cases() -> Iterator[Case]:
    n_tok = 7
    for what, n in (("position", n_tok), ("head", 4)):
        for spec in INDEX_SPECS:
            ok = valid_index(spec, n) is not None or (what == "position" and spec == "none")  # None: the last
            yield _c("walkthrough", f"walkthrough.{what}.{spec}", "ok" if ok else "InvalidInput",
                     fast=spec in ("int:-1", "float:1.0") and what == "position", what=what, spec=spec)
    for spec, t in TEMPERATURE_SPECS.items():
        yield _c("walkthrough", f"walkthrough.temperature.{spec}", "ok" if t is not None else "InvalidInput",
                 fast=spec == "float:0", what="temperature", spec=spec)
    for field_name, specs in SAMPLING_SPECS.items():
        for spec, ok in specs.items():
            yield _c("sampling", f"sampling.{field_name}.{spec}", "ok" if ok else "InvalidInput",
                     fast=(field_name, spec) in (("top_p", "float:0"), ("temperature", "float:0")),
                     field=field_name, spec=spec)
    for name, (n_tokens, previous) in {"n_tokens.zero": (0, []), "n_tokens.huge": (10_000, []),
                                       "n_tokens.float": (1.5, []), "previous.out_of_vocab": (1, [10**6]),
                                       "previous.negative": (1, [-1]), "previous.ok": (2, [5, 6])}.items():
        yield _c("sampling", f"sampling.request.{name}", "ok" if name.endswith(".ok") else "InvalidInput",
                 fast=name == "previous.out_of_vocab", n_tokens=n_tokens, previous=previous)


def _build_walkthrough(case: Case):
    from probes.walkthrough import TOLERANCE, walk

    h, what, spec = handle(), case.params["what"], case.params["spec"]
    v = value(spec)
    kw = {"position": v} if what == "position" else {"head": v} if what == "head" else {"temperature": v}

    def check(wk):
        if wk.max_abs_diff > TOLERANCE:
            return f"hand recomputation differs by {wk.max_abs_diff:.1e}"
        if what == "position" and wk.position != (6 if spec == "none" else valid_index(spec, 7)):
            return f"position {wk.position}"
        if what == "head" and wk.head != valid_index(spec, 4):
            return f"head {wk.head}"
        if what == "temperature" and abs(wk.temperature - TEMPERATURE_SPECS[spec]) > 1e-9:
            return f"temperature {wk.temperature}"
        total = sum(t.probability for t in wk.top)
        return None if 0 < total <= 1 + 1e-9 else f"top probabilities sum to {total}"

    return (lambda: walk(h, WALK_PROMPT, **kw)), check


def _build_sampling(case: Case):
    from probes.generation import Sampling, generate

    h = handle()
    if "field" in case.params:
        s = Sampling(**{case.params["field"]: value(case.params["spec"])})

        def check(out):
            again = generate(h, "the cat", 3, s)
            if [x.token_id for x in out.steps] != [x.token_id for x in again.steps]:
                return "the same settings gave different tokens"
            return None if len(out.steps) == 3 else f"{len(out.steps)} tokens"

        return (lambda: generate(h, "the cat", 3, s)), check
    n_tokens, previous = case.params["n_tokens"], case.params["previous"]
    return (lambda: generate(h, "the cat", n_tokens, previous=previous)), (
        lambda out: None if len(out.steps) == n_tokens else f"{len(out.steps)} tokens")


BUILDERS: dict[str, Callable[[Case], tuple[Callable[[], Any], Callable[[Any], str | None] | None]]] = {
    "index": _build_index, "prompt": _build_prompt, "tokens": _build_tokens, "hooks": _build_hooks,
    "lens": _build_lens, "probe": _build_probe, "scan": _build_scan, "loading": _build_loading,
    "fourier": _build_fourier, "backend": _build_backend, "emergence": _build_emergence, **graph_cases.BUILDERS,
    "walkthrough": _build_walkthrough, "sampling": _build_sampling,
}
