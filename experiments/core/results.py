"""Read results folders written by the runner (the app's and `show`'s view of experiments)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp.errors import InvalidInput


@dataclass
class ResultFolder:
    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    metadata: dict[str, Any]
    summary: str

    @property
    def verdict(self) -> dict[str, Any]:
        return self.metrics.get("verdict", {})

    def figure_files(self, ext: str = "html") -> dict[str, Path]:
        return {p.stem: p for p in sorted((self.path / "figures").glob(f"*.{ext}")) if p.stem != "plotly.min"}


def read_result(path: str | Path) -> ResultFolder:
    """Load one complete results folder, or raise InvalidInput saying what is missing."""
    p = Path(path)
    if not (p / "metadata.json").is_file():
        raise InvalidInput(f"{p} is not a complete results folder (no metadata.json).",
                           "Run an experiment first: python -m experiments run NAME.")
    try:
        load = lambda name: json.loads((p / name).read_text())  # noqa: E731
        return ResultFolder(p, load("config.json"), load("metrics.json"), load("metadata.json"),
                            (p / "summary.md").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InvalidInput(f"{p} is damaged: {e}.") from None


def list_results(root: str | Path) -> list[ResultFolder]:
    """Every complete results folder under ``root`` (visible folders only), newest first."""
    root = Path(root)
    found = []
    for meta in root.rglob("metadata.json"):
        if any(part.startswith(".") for part in meta.relative_to(root).parts):
            continue  # staging / old folders
        try:
            found.append(read_result(meta.parent))
        except InvalidInput:
            continue
    return sorted(found, key=lambda r: r.metadata.get("started_at", ""), reverse=True)
