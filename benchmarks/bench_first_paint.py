"""First paint of the app in a real browser: how long a fresh `streamlit run app.py` takes to show something.

Each measurement starts its own server (a cold process: nothing imported, nothing cached) on the model named by
``--model`` (default: the bundled default) and opens one URL in headless Chromium:

- ``landing``: the app's first page (no ``?page=``) until its first useful content: a plotly chart, or the
  guided path's first step ("Step 1") where the landing page is "Start here";
- ``attention``: ``?page=Attention`` until its first chart (the pattern of a head);
- ``features``: ``?page=Features`` until the page is idle and the superposition panel has drawn (a figure, or
  the button that trains it on request).

For each it prints the wall time and the CPU seconds the server process spent meanwhile (user + system, children
included): on a shared machine the wall time depends on the load, the CPU seconds much less; on an idle 2-core
machine the wall time is about the CPU seconds. The floor, measured in the same run, is a one-line Streamlit
script served the same way (Streamlit and the browser alone); each case is also given as a ratio to it. For
"before", run it on an old checkout. ``--quick`` (the test suite) measures the floor and the landing page only,
on the tiny test GPT-2 built offline.

    .venv/bin/python benchmarks/bench_first_paint.py [--model code-gpt2] [--only landing,attention,features]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.app.browser import ARGS, CHROMIUM, free_port  # noqa: E402

WAIT_MS = 600_000


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its waited-for children (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _server(model: str, tmp: Path, script: Path = ROOT / "app.py") -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, WORKBENCH_DEFAULT_MODEL=model, HF_HUB_OFFLINE="1",
               WORKBENCH_RESULTS=str(tmp / "results"), WORKBENCH_CACHE=str(tmp / "cache"))
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(script), "--server.port",
                             str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--server.fileWatcherType", "none"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("streamlit did not come up in 120 s")


def _wait_landing(page) -> None:
    page.locator(".js-plotly-plot, [data-testid='stMarkdown']:has-text('Step 1')").first.wait_for(timeout=WAIT_MS)


def _wait_attention(page) -> None:
    page.locator(".js-plotly-plot").first.wait_for(timeout=WAIT_MS)


def _wait_features(page) -> None:
    page.get_by_text("Superposition: 5 features in 2 dimensions").first.wait_for(timeout=WAIT_MS)
    page.locator(".st-key-chart-superposition_columns, .st-key-sp_train").first.wait_for(timeout=WAIT_MS)


CASES = {"floor": ("", _wait_landing), "landing": ("", _wait_landing),
         "attention": ("?page=Attention", _wait_attention), "features": ("?page=Features", _wait_features)}
FLOOR_SCRIPT = 'import streamlit as st\nst.markdown("Step 1. The floor: a one-line page.")\n'



def measure(model: str, case: str) -> tuple[float, float]:
    """(wall seconds, server CPU seconds) from opening the case's URL on a fresh server to its first content."""
    from playwright.sync_api import sync_playwright

    query, wait = CASES[case]
    with tempfile.TemporaryDirectory(prefix="bench-first-paint-") as tmp:
        script = ROOT / "app.py"
        if case == "floor":
            script = Path(tmp) / "floor.py"
            script.write_text(FLOOR_SCRIPT)
        proc, url = _server(model, Path(tmp), script)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                cpu0, t0 = _cpu_seconds(proc.pid), time.perf_counter()
                page.goto(url + "/" + query)
                wait(page)
                wall, cpu = time.perf_counter() - t0, _cpu_seconds(proc.pid) - cpu0
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return wall, cpu


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Measure the cases; returns ``{case}_wall``, ``{case}_cpu`` and ``{case}_ratio`` (wall / floor wall)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model name or directory (default: the bundled default)")
    ap.add_argument("--only", default="landing,attention,features",
                    help="comma-separated cases (the floor is always measured): " + ", ".join(CASES))
    ap.add_argument("--quick", action="store_true", help="the floor and the landing page, on the tiny test GPT-2")
    args = ap.parse_args(argv)
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"no Chromium at {CHROMIUM}")
    if args.quick:
        from tests.fuzz.model_dirs import gpt2_dir

        model, cases = str(gpt2_dir()), ["landing"]
    else:
        from interp.loading import default_model

        model, cases = args.model or default_model(), [c for c in args.only.split(",") if c != "floor"]
    print(f"model {model}; load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'case':<12}{'wall s':>10}{'server CPU s':>15}{'wall / floor':>14}")
    out: dict[str, float] = {}
    for case in ["floor", *cases]:
        wall, cpu = measure(model, case)
        out[f"{case}_wall"], out[f"{case}_cpu"] = wall, cpu
        out[f"{case}_ratio"] = wall / out["floor_wall"]
        print(f"{case:<12}{wall:>10.1f}{cpu:>15.1f}{out[f'{case}_ratio']:>14.2f}", flush=True)
    return out


if __name__ == "__main__":
    main()
