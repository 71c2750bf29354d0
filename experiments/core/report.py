"""Markdown pieces several experiments' summaries share (tables of records)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.core.registry import RunResult, Verdict
from interp.errors import ModelUnavailable


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """A markdown table of records (floats to 3 decimals; newlines and pipes in text escaped so a cell stays one)."""
    if not rows:
        return ""
    cols = list(rows[0])
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v).replace("|", "\\|").replace("\n", "\\n")  # noqa: E731
    return "\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
                     + ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows])


def model_or_not_checked(ctx: Any, name: str, why: str, advice: str) -> Any:
    """``ctx.load_model(name)``, or a "not checked" RunResult when a *named* model (a bundled or Hub name, not a
    path the user typed) is unavailable here, e.g. GPT-2 offline; a local model that cannot be read is an error.
    ``why`` prefixes the verdict's reason. The one place every experiment decides "model or not checked"."""
    try:
        return ctx.load_model(name)
    except ModelUnavailable as e:
        if name.startswith(("/", ".", "~")) or Path(name).expanduser().exists():
            raise
        return RunResult({"model": name, "error": str(e)}, Verdict.not_checked(f"{why}: {e.message}"),
                         f"**Not checked.** Could not load `{name}`: {e}\n\n{advice}")
