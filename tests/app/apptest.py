"""Streamlit's AppTest on app.py, opened on a page with a chosen default model (the app tests' one entry point)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def app_test(model_dir, monkeypatch, page: str | None = None, timeout: int = 90):
    """An ``AppTest`` of app.py whose default model is ``model_dir``, opened on ``page`` (``?page=``)."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("WORKBENCH_DEFAULT_MODEL", str(model_dir))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    if page is not None:
        at.query_params["page"] = page
    return at
