"""The Model page's backend picker: a model loaded on nnsight is the current model of every page (its backend in
the anatomy table and the URL), and NDIF's side says what it needs in one message when offline, never showing
the key."""
from __future__ import annotations

import pytest

from tests.app.apptest import app_test


def _texts(at) -> str:
    parts = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "text"):
        parts += [str(e.value) for e in at.get(kind)]
    return " ".join(parts)


def test_a_model_loaded_on_nnsight_is_the_current_model(tiny_gpt2_dir, monkeypatch):
    at = app_test(tiny_gpt2_dir, monkeypatch, "Model").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.radio(key="model_backend").value == "bridge"
    at.radio(key="model_backend").set_value("nnsight").run()
    at.button(key="model_load").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    props = at.table[0].value["value"].to_dict()  # the anatomy: a static table indexed by property
    assert props["backend"] == "nnsight"
    assert at.query_params["model"] == [f"nnsight:{tiny_gpt2_dir}"] or at.query_params["model"] == \
        f"nnsight:{tiny_gpt2_dir}"
    at.sidebar.radio(key="page").set_value("Attention").run()  # another page runs it through nnsight
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.get("plotly_chart")


@pytest.mark.parametrize("key", [None, "secret-key-123"])
def test_ndif_offline_says_what_it_needs_and_never_shows_the_key(tiny_gpt2_dir, monkeypatch, key):
    monkeypatch.setenv("NDIF_HOST", "http://127.0.0.1:9")  # nothing listens there: NDIF unreachable
    if key:
        monkeypatch.setenv("NDIF_API_KEY", key)
    else:
        monkeypatch.delenv("NDIF_API_KEY", raising=False)
    from ui import models

    models.hosted_models.clear()
    at = app_test(tiny_gpt2_dir, monkeypatch, "Model").run()
    at.radio(key="model_backend").set_value("ndif").run()
    assert not at.exception
    text = _texts(at)
    assert "cannot be reached" in text  # the hosted list could not be asked
    if key is None:
        assert "NDIF needs an API key" in text
    at.text_input(key="model_ndif_typed").set_value("openai-community/gpt2").run()
    at.button(key="model_load").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and ("NDIF_API_KEY" in errors[0] if key is None else "cannot be reached" in errors[0])
    assert "secret-key-123" not in _texts(at) + str(dict(at.query_params))
