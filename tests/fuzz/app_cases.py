"""The app part of the sweep: generated bad inputs to every page, run through Streamlit's ``AppTest``.

Two families: links (``?page=&model=&prompt=&layer=&head=`` with bad values, on every page) and typed inputs
(text boxes of the Logit lens, Patching, Reproductions, Inside the model and Glossary pages; glossary terms). A
case passes when the page runs without an exception (no traceback reaches the user), every message it shows is
short (at most ``MAX_MESSAGE`` characters, never a figure's JSON) and a bad input produced at least one warning or
error saying so. The app runs on the
bundled ``attn-only-1l`` (small and quick to load); nothing is written outside a temporary results folder.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from tests.fuzz import ROOT, Case, Outcome, cap

PAGES = ("Start here", "Inside the model", "Model", "Attention", "Heads", "Logit lens", "Patching", "Features",
         "Probes", "Reproductions", "Train", "Glossary")
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
)


def cases() -> list[Case]:
    """Deterministic: the same names and params on every call."""
    out: list[Case] = []
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
    long = [m for m in msgs if len(m) > MAX_MESSAGE or "Traceback" in m or '"layout"' in m]
    if long:
        return Outcome(case, "raw_exception", cap(f"an over-long or raw message: {long[0][:200]}"))
    if want_message and not (at.error or at.warning or at.info):
        return Outcome(case, "silent_wrong", "a bad input was taken without a message")
    return Outcome(case, "pass", cap(msgs[0]) if msgs else "")


def run_case(case: Case) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="workbench-app-case-") as tmp:
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
        return _judge(case, at, want_message="prompt" not in q)
