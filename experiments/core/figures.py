"""Write plotly figures as self-contained-offline HTML (one shared plotly.min.js) and PNG (best effort)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly.io as pio


def save_figures(figures: dict[str, Any], out: Path, *, png: bool = True) -> dict[str, dict[str, Any]]:
    """Write ``name.html`` (+ ``name.png`` via kaleido) per figure; returns per-figure status for metadata.

    PNG export needs a Chromium for kaleido; where none exists the HTML is still written and the
    status says why the PNG is missing, instead of failing the run.
    """
    status: dict[str, dict[str, Any]] = {}
    if not figures:
        return status
    out.mkdir(parents=True, exist_ok=True)
    for name, fig in figures.items():
        fig.write_html(str(out / f"{name}.html"), include_plotlyjs="directory", full_html=True)
        status[name] = {"html": f"{name}.html", "png": None}
    if png:

        names = list(figures)
        try:
            pio.write_images([figures[n] for n in names], [str(out / f"{n}.png") for n in names], scale=2)
            for n in names:
                status[n]["png"] = f"{n}.png"
        except Exception as e:  # no Chromium, kaleido missing, sandbox refusal...
            for n in names:
                status[n]["png_error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
    return status
