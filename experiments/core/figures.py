"""Write plotly figures as self-contained-offline HTML (one shared plotly.min.js) and PNG (best effort)."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import plotly.io as pio

#: Seconds between checks for Ctrl-C while the PNG export runs.
POLL_S = 0.2


def write_pngs(figures: list[Any], paths: list[str]) -> None:
    """``pio.write_images`` in a daemon thread, waited for in short joins: kaleido renders in a thread of its own
    (non-daemon, created by the calling thread, whose daemon flag it inherits) driving a Chromium, so a Ctrl-C
    during the export used to leave the interpreter waiting for every remaining figure before it could exit. From a
    daemon thread the whole export is abandoned at once; its error, if any, is raised here."""
    failure: list[BaseException] = []

    def work() -> None:
        try:
            pio.write_images(figures, paths, scale=2)
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            failure.append(e)

    t = threading.Thread(target=work, name="png-export", daemon=True)
    t.start()
    while t.is_alive():
        t.join(POLL_S)
    if failure:
        raise failure[0]


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
            write_pngs([figures[n] for n in names], [str(out / f"{n}.png") for n in names])
            for n in names:
                status[n]["png"] = f"{n}.png"
        except Exception as e:  # no Chromium, kaleido missing, sandbox refusal...
            for n in names:
                status[n]["png_error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
    return status
