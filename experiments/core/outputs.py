"""The one rule for every folder an experiment writes: its results folder (``--out``) and every artefact it builds
(a model directory, an SAE, a tuned lens).

A folder may be written when it is new (or empty), or when it holds an earlier result of the *same* experiment
(the results folder: skipped or, with ``--force``, replaced; an artefact: replaced only with ``--force``). Any
other existing folder (a system directory, a home folder, another experiment's model) is refused before any work
starts, and nothing in it is touched. An earlier result is recognised by what the workbench writes into every
output: a results folder's ``metadata.json`` names its experiment, and every model, SAE and lens card or config
carries the command that made it (``python -m experiments run NAME``) or ``"experiment": "NAME"``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from experiments.core.settings import check_writable_dir
from interp.errors import InvalidInput

#: System folders no experiment writes into, even a new folder inside them (a run as root could otherwise).
SYSTEM_DIRS = ("/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/boot", "/proc", "/sys", "/dev", "/run",
               "/var/lib", "/var/log", "/var/cache", "/opt/conda", "/root/.ssh")
#: Files read to recognise an earlier output (each read up to this many bytes).
MARKER_FILES = ("metadata.json", "README.md", "config.json", "cfg.json")
MARKER_BYTES = 200_000
_COMMAND = re.compile(r"python -m experiments run ([a-z0-9][a-z0-9-]*)")


def _read(path: Path) -> str:
    try:
        if not path.is_file():
            return ""
        with open(path, "rb") as f:
            return f.read(MARKER_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return ""


def writer_of(folder: Path) -> str | None:
    """The experiment that wrote ``folder`` (a results folder, a model, an SAE, a lens), or None if it is not a
    workbench output."""
    meta = _read(folder / "metadata.json")
    if meta:
        try:
            name = json.loads(meta).get("experiment")
            if isinstance(name, str):
                return name
        except (ValueError, AttributeError):
            pass
    for marker in MARKER_FILES[1:]:
        text = _read(folder / marker)
        if m := _COMMAND.search(text):
            return m.group(1)
        if m := re.search(r'"experiment":\s*"([a-z0-9][a-z0-9-]*)"', text):
            return m.group(1)
    return None


def _is_empty_dir(folder: Path) -> bool:
    try:
        return folder.is_dir() and not any(folder.iterdir())
    except OSError:
        return False


def refuse_system_dir(folder: Path, what: str) -> None:
    """InvalidInput when ``folder`` is (inside) a system folder, which no experiment or sweep writes into."""
    resolved = folder.expanduser().absolute()
    try:
        resolved = resolved.resolve()
    except (OSError, RuntimeError):
        pass
    if any(resolved == Path(s) or resolved.is_relative_to(s) for s in SYSTEM_DIRS):
        shown = str(folder) if len(str(folder)) <= 100 else str(folder)[:97] + "..."
        raise InvalidInput(f"{what}: {shown} is inside a system folder; an experiment never writes there.",
                           "Choose a folder under your project or home directory.")


def check_output_dir(folder: Path, experiment: str, what: str, *, force: bool, artefact: bool = True) -> bool:
    """Apply the rule to ``folder`` before any work; returns True when it holds an earlier result of
    ``experiment`` (the caller skips or replaces it), False when it is new or empty. InvalidInput otherwise.

    ``artefact``: an artefact folder holding an earlier result is replaced only with ``force``; a results folder
    holding one is the runner's to skip or replace (same config: skipped; another config: ``--force``)."""
    shown = str(folder) if len(str(folder)) <= 100 else str(folder)[:97] + "..."
    check_writable_dir(folder, what, max_name=200)
    refuse_system_dir(folder, what)
    try:
        exists = folder.exists()
    except OSError as e:
        raise InvalidInput(f"{what}: {shown} cannot be read ({e.strerror or e}).", "Choose another folder.") from None
    if not exists or _is_empty_dir(folder):
        return False
    owner = writer_of(folder)
    if owner == experiment:
        if artefact and not force:
            raise InvalidInput(f"{what}: {shown} holds an earlier result of {experiment}.",
                               "Pass --force to replace it, or choose a new folder.")
        return True
    held = f"a result of {owner}" if owner else "files the workbench did not write"
    raise InvalidInput(f"{what}: {shown} already exists and holds {held}; an experiment writes only into a new "
                       f"folder or one holding an earlier result of {experiment}, so nothing was written.",
                       "Choose a new (or empty) folder.")
