"""The package layering (ui -> experiments -> training, plots -> probes -> interp) and the linter hold."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name if (BIN / name).exists() else shutil.which(name)
    if not path:
        pytest.skip(f"{name} is not installed (pip install -r requirements.txt)")
    return str(path)


def test_import_contract_is_kept():
    """import-linter's layers and forbidden contracts from pyproject.toml: no upward import, no plotly below plots."""
    run = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "BROKEN" not in run.stdout


def test_ruff_is_clean():
    run = subprocess.run([_tool("ruff"), "check", ".", "--output-format", "concise"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:]


def test_only_the_backend_module_touches_a_bridge():
    """No bridge attribute (public or the backend's private one) outside interp/backends/: every other module goes
    through interp.Model; comparisons with TransformerLens's own engines use `bridge_of(model)`."""
    import re

    pattern = re.compile(r"\.(_?bridge)\b(?!_)")
    offenders = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in (".venv", ".git") or rel.parts[:2] == ("interp", "backends"):
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if pattern.search(code) and "interp.backends.bridge" not in code:
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
