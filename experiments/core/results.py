"""Read results folders written by the runner (the app's and `show`'s view of experiments).

A results root is the folder the runner writes to (``results/<experiment>/<run>/``), one experiment's folder, or
one run: only those three depths are looked at, never a whole-disk walk. Anything damaged under it (a
``metadata.json`` that is a JSON list, a verdict stored as a plain string, a ``figures/*.png`` that is not an
image) is skipped or shown as damaged, never a crash.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.core.registry import SMOKE_WORDS
from interp.errors import InvalidInput

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: A results root holding more folders than this at the scanned depths is refused (it is not a results folder).
MAX_SCANNED_DIRS = 5000


@dataclass
class ResultFolder:
    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    metadata: dict[str, Any]
    summary: str

    @property
    def verdict(self) -> dict[str, Any]:
        """``{"status", "reason", ...}``; a verdict stored as a plain string becomes its status. A smoke test's
        verdict is in a smoke test's words even when an older runner stored "reproduced"."""
        v = self.metrics.get("verdict", {})
        if isinstance(v, str):
            v = {"status": v, "reason": ""}
        if not isinstance(v, dict):
            return {"status": "?", "reason": "the stored verdict is not readable"}
        if self.smoke_test and v.get("status") in SMOKE_WORDS:
            v = {**v, "status": SMOKE_WORDS[v["status"]]}
        return v

    @property
    def preset(self) -> str | None:
        p = self.metadata.get("preset")
        return p if isinstance(p, str) else None

    @property
    def smoke_test(self) -> bool:
        """Whether this run was a smoke test (recorded by the runner; older folders: the ``ci`` preset)."""
        flag = self.metadata.get("smoke_test")
        return flag if isinstance(flag, bool) else self.preset == "ci"

    def figure_files(self, ext: str = "html") -> dict[str, Path]:
        """Figure name -> file, in the order the experiment returned them (headline first); PNGs only if real."""
        files = {p.stem: p for p in sorted((self.path / "figures").glob(f"*.{ext}")) if p.stem != "plotly.min"}
        if ext == "png":
            files = {k: p for k, p in files.items() if is_png(p)}
        order = self.metadata.get("figures")
        if isinstance(order, dict):
            ranked = [k for k in order if k in files] + [k for k in files if k not in order]
            files = {k: files[k] for k in ranked}
        return files

    def figure_spec(self, name: str) -> dict[str, Any] | None:
        """The plotly figure (``{"data", "layout"}``) saved in ``figures/<name>.html``, or None if unreadable."""
        path = self.path / "figures" / f"{name}.html"
        try:
            return figure_spec_from_html(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            return None


def is_png(path: Path) -> bool:
    """True when the file starts with the PNG signature (a renamed text file is not shown as an image)."""
    try:
        with open(path, "rb") as f:
            return f.read(8) == PNG_MAGIC
    except OSError:
        return False


def figure_spec_from_html(text: str) -> dict[str, Any] | None:
    """The data and layout plotly's ``write_html`` put in ``Plotly.newPlot("id", data, layout, config)``."""
    i = text.find("Plotly.newPlot(")
    if i < 0:
        return None
    dec = json.JSONDecoder()
    pos = i + len("Plotly.newPlot(")
    try:
        items = []
        for _ in range(3):  # "id", data, layout
            while text[pos] in " \t\r\n,":
                pos += 1
            value, pos = dec.raw_decode(text, pos)
            items.append(value)
    except (ValueError, IndexError):
        return None
    _, data, layout = items
    if not isinstance(data, list) or not isinstance(layout, dict):
        return None
    return {"data": data, "layout": layout}


def _load_dict(p: Path, name: str) -> dict[str, Any]:
    try:
        value = json.loads((p / name).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidInput(f"{p} is damaged: {name} cannot be read ({type(e).__name__}).") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{p} is damaged: {name} holds a JSON {type(value).__name__}, not an object.")
    return value


def read_result(path: str | Path) -> ResultFolder:
    """Load one complete results folder, or raise InvalidInput saying what is missing or damaged."""
    p = Path(path)
    if not (p / "metadata.json").is_file():
        raise InvalidInput(f"{p} is not a complete results folder (no metadata.json).",
                           "Run an experiment first: python -m experiments run NAME.")
    metadata = _load_dict(p, "metadata.json")
    config = _load_dict(p, "config.json")
    metrics = _load_dict(p, "metrics.json")
    try:
        summary = (p / "summary.md").read_text(encoding="utf-8", errors="replace")
    except OSError:
        summary = "(summary.md is missing from this results folder.)"
    return ResultFolder(p, config, metrics, metadata, summary)


def _visible_dirs(p: Path, budget: list[int]) -> list[Path]:
    try:
        children = [c for c in p.iterdir() if not c.name.startswith(".") and c.is_dir() and not c.is_symlink()]
    except OSError:
        return []
    budget[0] -= len(children)
    if budget[0] < 0:
        raise InvalidInput(f"{p} holds too many folders to be a results folder.",
                           "Choose the folder experiments write to (results/ by default) or one experiment's "
                           "folder inside it.")
    return sorted(children)


def check_results_root(root: str | Path) -> Path:
    """``root`` as a Path if it can be a results root (an existing folder, not the filesystem root), else
    InvalidInput saying what to choose."""
    p = Path(root).expanduser()
    hint = "Choose the folder experiments write to (results/ by default) or one experiment's folder inside it."
    if not str(root).strip():
        raise InvalidInput("No results folder given.", hint)
    if len(str(p)) > 4096 or any(len(part) > 255 for part in p.parts) or "\x00" in str(p):
        raise InvalidInput(f"The results folder path {str(p)[:60]}... is too long or holds a NUL byte.", hint)
    if not p.is_dir():
        raise InvalidInput(f"{p} is not a folder.", hint)
    resolved = p.resolve()
    if resolved == Path(resolved.anchor) or resolved == Path.home().resolve():
        raise InvalidInput(f"{p} is not a results folder (it would mean scanning the whole disk).", hint)
    return p


def list_results(root: str | Path) -> list[ResultFolder]:
    """Every readable results folder at ``root``, ``root/<run>`` or ``root/<experiment>/<run>``, newest first."""
    root = check_results_root(root)
    budget = [MAX_SCANNED_DIRS]
    candidates = [root]
    for child in _visible_dirs(root, budget):
        candidates.append(child)
        if not (child / "metadata.json").is_file():
            candidates.extend(_visible_dirs(child, budget))
    found = []
    for c in candidates:
        if (c / "metadata.json").is_file():
            try:
                found.append(read_result(c))
            except InvalidInput:
                continue
    return sorted(found, key=lambda r: str(r.metadata.get("started_at", "")), reverse=True)
