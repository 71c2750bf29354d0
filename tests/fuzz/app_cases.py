"""The app part of the sweep: generated bad inputs to every page, run through Streamlit's ``AppTest``.

Two families: links (``?page=&model=&prompt=&layer=&head=`` with bad values, on every page, and every page's own
link parameters, ``PAGE_PARAMS``) and typed inputs (text boxes of the Logit lens, Patching, Reproductions,
Circuits, Activations, Neurons, Ablate & steer, Inside the model and Glossary pages; glossary terms). A case passes
when the page runs without an exception (no traceback reaches the user), every message it shows is short (at most
``MAX_MESSAGE`` characters, never a figure's JSON) and a bad input produced at least one warning or error saying
so. The app runs on the
bundled ``attn-only-1l`` (small and quick to load); nothing is written outside a temporary results folder.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from tests.fuzz import ROOT, Case, Outcome, cap

PAGES = ("Start here", "Inside the model", "Model", "Attention", "Heads", "Circuits", "Logit lens", "Activations",
         "Neurons", "Probes", "Patching", "Ablate & steer", "Features", "Graph", "Reproductions", "Train", "Glossary")
#: Every page's own link parameters (ui/state.py bind) with bad values: each must be warned about in one line (or
#: the page says why it does not use it, e.g. a model without SAEs) and never raise.
PAGE_PARAMS: dict[str, dict[str, tuple[str, ...]]] = {
    "Heads": {"seq": ("x", "0", "99999"), "rows": ("-1", "65"), "seed": ("1e99", "nan"), "ablation": ("nope",),
              "sort": ("<b>",)},
    "Circuits": {"fold": ("maybe",)},
    "Logit lens": {"lens": ("Tuned lens", "nope"), "colour": ("red",), "position": ("-5", "1e9", "x"),
                   "first": ("x", "-3"), "token": ("x" * 5000, "two tokens")},
    "Activations": {"site": ("blocks.99.hook_z", "nope", "hook_pos_embed\x00"), "position": ("-1", "100000")},
    "Neurons": {"layer_mlp": ("x", "99"), "neuron": ("-1", "1e12")},
    "Probes": {"dataset": ("nope",), "games": ("5", "x"), "encoding": ("nope",), "iterations": ("9999",),
               "control": ("maybe",), "csv": ("\x00", "text,label\n\"unclosed"), "read": ("middle", "99999")},
    "Patching": {"metric": ("nope",), "run": ("everything", "attr+exact+attr"), "clean": ("x" * 20_000,),
                 "answer": (" two tokens",)},
    "Ablate & steer": {"target": ("nope",), "mode": ("nope",), "scale": ("inf", "1e9"), "seed": ("-1",),
                       "position": ("999", "x")},
    "Features": {"fmodel": ("nope",), "sae": ("nope",), "latent": ("-1", "x"), "sort": ("nope",), "dense": ("2",),
                 "sparsity": ("5",), "decay": ("0.1",), "toy_seed": ("x",)},
    "Reproductions": {"experiment": ("nope",), "preset": ("nope",), "results": ("/etc/passwd",), "result": ("x",)},
    "Train": {"mode": ("nope",), "preset": ("nope",)},
}
#: Parameters that only count with another one (a head of a per-head site, a direction's token): (page, extra
#: query, param, bad values).
WITH_PARAMS: tuple[tuple[str, dict[str, str], str, tuple[str, ...]], ...] = (
    ("Activations", {"site": "blocks.0.attn.hook_z"}, "head_index", ("99", "-1")),
    ("Ablate & steer", {"target": "direction"}, "plus", ("two tokens here", "")),
    ("Ablate & steer", {"target": "direction"}, "layer_resid", ("99",)),
    ("Ablate & steer", {"target": "neuron"}, "neuron", ("5",)),  # attention-only: the page says it has none
)
#: Free-text parameters: any text is an input (a prompt, tokens to show); it must run or be refused in one line.
TEXT_PARAMS: dict[str, dict[str, tuple[str, ...]]] = {
    "Circuits": {"tokens": ("\x00" * 5, "🙂" * 400, "x" * 5000)},
    "Patching": {"wrong": ("\x00",), "corrupted": ("\ufffd" * 30,)},
    "Features": {"search": ("\x00",), "fprompt": ("🙂" * 300,)},
    "Ablate & steer": {"minus": ("\x00",)},
}
#: One case per page in the test suite's fast subset.
FAST_PARAMS = {("Circuits", "fold"), ("Activations", "site"), ("Ablate & steer", "mode"), ("Patching", "metric")}
MAX_MESSAGE = 700
MODEL = "attn-only-1l"

BAD_LAYERS = ("x", "-1", "99", "1.5", "nan", "1e309", "", "0x1", "١", "1" * 40)
BAD_HEADS = ("y", "-3", "64", "2.0", "inf", "")
BAD_PAGES = ("Nope", "", "attention", "Attention\x00", "<script>alert(1)</script>", "P" * 300)
BAD_MODELS = ("no-such-model", "/etc", "/dev/null", "../../..", "m" * 400, "gpt2\x00", "models/stdlib-gpt2/README.md",
              # a backend in the link: NDIF without a key (or offline), nnsight on a TransformerLens-native model,
              # an unknown backend prefix, a backend with no model
              "ndif:openai-community/gpt2", "ndif:attn-only-1l", "nnsight:attn-only-1l", "nnsight:/etc",
              "bogus:attn-only-1l", "ndif:")
BAD_PROMPTS = ("", " ", "x" * 20_000, "\ufffd\ufffd\ufffd invalid UTF-8 in the link", "t1 t2 \x00 t3",
               "The cat sat on the mat", "🙂" * 50, "\n" * 300)
#: The Graph page's own link parameters (issue 24), each with bad values (on attn-only-1l: no transcoders).
BAD_GRAPH = {"node_th": ("x", "-1", "2", "nan", ""), "edge_th": ("0.1", "inf"), "route_th": ("0", "9"),
             "target": ("x", "99", "-1"), "gmode": ("nope", "routes\x00"), "tc": ("../../etc", "t" * 300),
             "node": ("<script>alert(1)</script>", "n" * 300)}
BAD_TERMS = ("<script>alert(1)</script>", "", "t" * 300, "residual-stream\x00", "../../etc/passwd")
TYPED = (  # (page, widget kind, key, value)
    ("Inside the model", "text_area", "wt_prompt", ""),
    ("Inside the model", "text_area", "wt_prompt", "x" * 20_000),
    ("Inside the model", "text_area", "wt_prompt", "\ufffd\ufffd\x00"),
    ("Glossary", "text_input", "gl_search", "\x00"),
    ("Glossary", "text_input", "gl_search", "q" * 5000),
    ("Logit lens", "text_input", "lens_token", "definitely not one token"),
    ("Logit lens", "text_input", "lens_token", "\ufffd\ufffd"),
    ("Logit lens", "text_input", "lens_token", "x" * 5000),
    ("Patching", "text_area", "patch_clean", ""),
    ("Patching", "text_area", "patch_clean", "t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12"),
    ("Patching", "text_area", "patch_corrupted", "x" * 20_000),
    ("Patching", "text_input", "patch_answer", " two tokens here"),
    ("Patching", "text_input", "patch_answer", ""),
    ("Patching", "text_input", "patch_wrong", "\x00"),
    ("Patching", "text_area", "patch_csv_text", "clean,corrupted\n\"unclosed"),
    ("Reproductions", "text_input", "repro_root", "/"),
    ("Reproductions", "text_input", "repro_root", "/etc/passwd"),
    ("Reproductions", "text_input", "repro_root", "/no/such/folder"),
    ("Reproductions", "text_input", "repro_root", "~"),
    ("Reproductions", "text_input", "repro_root", "r" * 5000),
    ("Circuits", "text_input", "circuits_tokens", "\x00\x00"),
    ("Circuits", "text_input", "circuits_tokens", "🙂" * 500),
    ("Circuits", "text_input", "circuits_tokens", " "),
    ("Ablate & steer", "text_area", "ablate_prompt", ""),
    ("Ablate & steer", "text_area", "ablate_prompt", "x" * 20_000),
    ("Activations", "text_area", "act_prompt", "\ufffd" * 50),
)


#: Hostile inputs on the pages (model, steps), each step (kind, key, value) or ("click", key); the page must show a
#: message and never an exception or "Something went wrong" (an untyped error); "quiet" steps expect no error.
HOSTILE: dict[str, tuple[str, str, list[tuple], bool]] = {
    # name: (page, model, steps, a message is expected)
    "patching.identical_prompts": ("Patching", "attn-only-1l", [
        ("text_area", "patch_corrupted", "@clean"), ("click", "patch_attr"), ("click", "patch_exact")], True),
    "patching.unknown_answer": ("Patching", "attn-only-1l", [("text_input", "patch_answer", " cat")], True),
    "patching.unknown_prompt": ("Patching", "attn-only-1l", [("text_area", "patch_clean", "The cat sat"),
                                                             ("text_area", "patch_corrupted", "The dog sat")], True),
    "patching.grokking_example": ("Patching", "grokking-p113", [("click", "patch_attr")], False),
    "patching.grokking_unknown_answer": ("Patching", "grokking-p113", [("text_input", "patch_answer", "cat")], True),
    "lens.unknown_token": ("Logit lens", "attn-only-1l", [("text_input", "lens_token", "cat")], True),
    "lens.grokking_unknown_token": ("Logit lens", "grokking-p113", [("text_input", "lens_token", "cat")], True),
    "features.bos_only_train": ("Features", "@bos-only", [("click", "features_train")], True),
    "features.attn_only_train": ("Features", "attn-only-1l", [("click", "features_train")], True),
    "probes.csv_field_200k": ("Probes", "attn-only-1l", [("radio", "probe_source", "Paste a CSV"),
                                                         ("text_area", "probe_csv_text", "@csv200k"),
                                                         ("click", "probe_run_csv")], True),
}
#: cfg.json fields written into an SAE folder the Features page is pointed at (each a one-line message).
SAE_BAD_CFG = {"d_sae_huge": ("d_sae", 1e9), "d_sae_text": ("d_sae", "16"),
               "apply_b_dec_text": ("apply_b_dec_to_input", "false"), "k_text": ("k", "x"),
               "hook_layer_list": ("hook_layer", [1]), "d_in_nan": ("d_in", "NaN"),
               "architecture_int": ("architecture", 3), "kwargs_zero": ("activation_fn_kwargs", 0)}


def cases() -> list[Case]:
    """Deterministic: the same names and params on every call."""
    out: list[Case] = []
    for name, (page, model, steps, want) in HOSTILE.items():
        out.append(Case("app", "hostile", f"hostile.{name}", "clear_error", {"page": page, "model": model,
                        "steps": steps, "want_message": want}, fast=name == "patching.identical_prompts"))
    for name, (field, bad) in SAE_BAD_CFG.items():
        out.append(Case("app", "sae_folder", f"sae_folder.{name}", "clear_error", {"field": field, "value": bad},
                        fast=name == "d_sae_huge"))
    for p in BAD_PAGES:
        out.append(Case("app", "url.page", f"url.page.{ascii(p)[:40]}", "clear_error", {"query": {"page": p}},
                        fast=p == "Nope"))
    for page in PAGES:
        slug = page.lower().replace(" ", "-")
        for v in BAD_LAYERS:
            out.append(Case("app", "url.layer", f"url.{slug}.layer.{ascii(v)}", "clear_error",
                            {"query": {"page": page, "layer": v}}, fast=page == "Attention" and v == "99"))
        for v in BAD_HEADS:
            out.append(Case("app", "url.head", f"url.{slug}.head.{ascii(v)}", "clear_error",
                            {"query": {"page": page, "head": v}}, fast=page == "Patching" and v == "64"))
        for v in BAD_MODELS:
            out.append(Case("app", "url.model", f"url.{slug}.model.{ascii(v)[:40]}", "clear_error",
                            {"query": {"page": page, "model": v}}, fast=page == "Heads" and v == "/etc"))
    for i, v in enumerate(BAD_TERMS):
        out.append(Case("app", "url.term", f"url.glossary.term.{i}", "clear_error",
                        {"query": {"page": "Glossary", "term": v}}, fast=i == 0))
    for page in ("Attention", "Logit lens", "Patching", "Inside the model"):
        slug = page.lower().replace(" ", "-")
        for i, v in enumerate(BAD_PROMPTS):
            out.append(Case("app", "url.prompt", f"url.{slug}.prompt.{i}", "clear_error",
                            {"query": {"page": page, "prompt": v}}, fast=page in ("Attention", "Inside the model")
                            and i == 3))
    for name, values in BAD_GRAPH.items():
        for v in values:
            out.append(Case("app", "url.graph", f"url.graph.{name}.{ascii(v)[:30]}", "clear_error",
                            {"query": {"page": "Graph", name: v}}, fast=name == "node_th" and v == "x"))
    for page, params in PAGE_PARAMS.items():
        slug = page.lower().replace(" ", "-").replace("&", "and")
        for param, values in params.items():
            for i, v in enumerate(values):
                out.append(Case("app", "url.param", f"url.{slug}.{param}.{i}", "clear_error",
                                {"query": {"page": page, param: v}}, fast=(page, param) in FAST_PARAMS and i == 0))
    for page, extra, param, values in WITH_PARAMS:
        slug = page.lower().replace(" ", "-").replace("&", "and")
        for i, v in enumerate(values):
            out.append(Case("app", "url.param", f"url.{slug}.{param}.with.{i}", "clear_error",
                            {"query": {"page": page, **extra, param: v}}))
    for page, params in TEXT_PARAMS.items():
        slug = page.lower().replace(" ", "-").replace("&", "and")
        for param, values in params.items():
            for i, v in enumerate(values):
                out.append(Case("app", "url.text", f"url.{slug}.{param}.text.{i}", "clear_error",
                                {"query": {"page": page, param: v}}, fast=(page, param) == ("Circuits", "tokens")
                                and i == 0))
    for i, (page, kind, key, value) in enumerate(TYPED):
        out.append(Case("app", "typed", f"typed.{key}.{i}", "clear_error",
                        {"page": page, "kind": kind, "key": key, "value": value},
                        fast=(key == "repro_root" and value == "/") or (key == "wt_prompt" and value == "")))
    return out


def _app(query: dict[str, str], results: Path) -> Any:
    from streamlit.testing.v1 import AppTest

    os.environ["WORKBENCH_DEFAULT_MODEL"] = MODEL
    os.environ.setdefault("WORKBENCH_RESULTS", str(results))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    for k, v in query.items():
        at.query_params[k] = v
    return at


def _messages(at: Any) -> list[str]:
    return [str(m.value) for kind in ("error", "warning", "info", "exception") for m in getattr(at, kind)]


def _judge(case: Case, at: Any, want_message: bool) -> Outcome:
    if at.exception:
        return Outcome(case, "raw_exception", cap(at.exception[0].value))
    msgs = _messages(at)
    untyped = [m for m in msgs if m.startswith("Something went wrong")]
    if untyped:
        return Outcome(case, "raw_exception", cap(f"an untyped error reached the page: {untyped[0]}"))
    long = [m for m in msgs if len(m) > MAX_MESSAGE or "Traceback" in m or '"layout"' in m]
    if long:
        return Outcome(case, "raw_exception", cap(f"an over-long or raw message: {long[0][:200]}"))
    if want_message and not (at.error or at.warning or at.info):
        return Outcome(case, "silent_wrong", "a bad input was taken without a message")
    return Outcome(case, "pass", cap(msgs[0]) if msgs else "")


def _hostile(case: Case, tmp: Path) -> Outcome:
    """Open the page on the case's model, apply its steps (typing, choosing, clicking), judge the page."""
    from interp.loading import bundled_models
    from tests.fuzz.model_dirs import bos_only_dir

    p = case.params
    model = str(bos_only_dir()) if p["model"] == "@bos-only" else p["model"]
    if not model.startswith("/") and model not in bundled_models():
        return Outcome(case, "pass", f"skipped: bundled {model} absent")
    at = _app({"page": p["page"], "model": model}, tmp)
    try:
        at.run()
        for step in p["steps"]:
            if at.exception:
                break
            kind, key = step[0], step[1]
            try:
                widget = at.button(key=key) if kind == "click" else {
                    "text_area": at.text_area, "text_input": at.text_input, "radio": at.radio}[kind](key=key)
            except KeyError:  # the page refused an earlier step and does not offer this one: judge it as it is
                break
            if kind == "click":
                widget.click().run()
                continue
            value = step[2]
            if value == "@clean":
                value = at.text_area(key="patch_clean").value
            elif value == "@csv200k":
                value = "text,label\n" + "x" * 200_000 + ",a\nshort,b\n"
            widget.set_value(value).run()
    except RuntimeError as e:  # AppTest's own timeout
        return Outcome(case, "hang", cap(e))
    outcome = _judge(case, at, want_message=p["want_message"])
    if not p["want_message"] and outcome.status == "pass" and at.error:
        return Outcome(case, "wrong_error", cap(f"a good input was refused: {at.error[0].value}"))
    return outcome


def _sae_folder(case: Case, tmp: Path) -> Outcome:
    """An SAE folder whose cfg.json holds one bad field, typed into the Features page: one line, not a traceback."""
    import json

    from learned.sae import SAEConfig, SparseAutoencoder
    from learned.sae_files import write_sae_dir

    p = case.params
    sae = SparseAutoencoder(SAEConfig(d_in=32, d_sae=64, architecture="topk", k=4, hook_name="blocks.0.hook_resid_pre",
                                      hook_layer=0), seed=0)
    cfg, tensors = sae.to_saelens()
    d = write_sae_dir(tmp / "sae", cfg, tensors)
    raw = json.loads((d / "cfg.json").read_text())
    raw[p["field"]] = "__BAD__"
    bad = "NaN" if p["value"] == "NaN" else json.dumps(p["value"])
    (d / "cfg.json").write_text(json.dumps(raw).replace('"__BAD__"', bad))
    at = _app({"page": "Features"}, tmp)
    try:
        at.run()
        at.selectbox(key="features_sae").set_value("(a folder on disk)").run()
        at.text_input(key="features_sae_dir").set_value(str(d)).run()
    except RuntimeError as e:
        return Outcome(case, "hang", cap(e))
    outcome = _judge(case, at, want_message=True)
    if outcome.status == "pass" and len(at.error) != 1:
        return Outcome(case, "wrong_error", cap(f"{len(at.error)} error messages: {_messages(at)}"))
    return outcome


def run_case(case: Case) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="workbench-app-case-") as tmp:
        if case.group == "hostile":
            return _hostile(case, Path(tmp))
        if case.group == "sae_folder":
            return _sae_folder(case, Path(tmp))
        p = case.params
        if case.group == "typed":
            at = _app({"page": p["page"]}, Path(tmp))
            at.run()
            if at.exception:
                return Outcome(case, "raw_exception", cap(at.exception[0].value))
            widgets = [w for w in getattr(at, p["kind"]) if w.key == p["key"]]
            if not widgets:
                return Outcome(case, "wrong_error", f"the page shows no {p['kind']} {p['key']!r} to type into")
            try:
                widgets[0].set_value(p["value"]).run()
            except RuntimeError as e:  # AppTest's own timeout
                return Outcome(case, "hang", cap(e))
            # an empty answer or an unreadable results folder must be said; a valid-but-odd value may just work
            return _judge(case, at, want_message=False)
        at = _app(p["query"], Path(tmp))
        try:
            at.run()
            q = p["query"]
            if ("layer" in q or "head" in q) and not (at.error or at.warning or at.exception):
                # a page without a head picker keeps the link's layer/head; the first page that uses them
                # (Attention) range-checks them and must say so
                at.sidebar.radio(key="page").set_value("Attention").run()
        except RuntimeError as e:  # AppTest's own timeout
            return Outcome(case, "hang", cap(e))
        # a bad link must be warned about, except values that are harmless as given (a prompt is any text)
        return _judge(case, at, want_message="prompt" not in q and case.group != "url.text")
