"""A sweep's cells from the command line: ``--grid KEY=V1,V2 ...`` times ``--seeds 0-4``, every cell's config
checked before any work starts (a bad value in any cell is one InvalidInput naming the cell).

Pure functions from text to data; nothing here touches Ray or the disk.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
from dataclasses import dataclass
from typing import Any

from experiments.core.registry import Experiment, make_config
from experiments.core.settings import SEED_MAX
from interp.errors import InvalidInput

#: More cells than this is almost surely a typo in a grid (and a results folder nobody can read).
MAX_CELLS = 10_000
MAX_SEEDS = 1_000
_SAFE = re.compile(r"[^A-Za-z0-9._=-]+")


@dataclass(frozen=True)
class Cell:
    """One run of a sweep: the grid's settings (as ``--set`` texts, in grid order) and a seed."""

    settings: tuple[tuple[str, str], ...]
    seed: int

    @property
    def key(self) -> str:
        """A folder name: ``repeat_share=0.5_span_len=8_seed=0``; a short hash keeps odd values unique."""
        words = "_".join(f"{k}={v}" for k, v in self.settings)
        plain = _SAFE.sub("-", words)[:120]
        label = f"{plain}_seed={self.seed}" if plain else f"seed={self.seed}"
        if plain != words:
            label += "_" + hashlib.sha256(words.encode()).hexdigest()[:8]
        return label

    @property
    def group(self) -> tuple[tuple[str, str], ...]:
        """The cell's settings without the seed: the cells of one group are averaged over seeds."""
        return self.settings

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.settings) or "(no grid)"


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def parse_grid(items: list[str] | None) -> dict[str, tuple[str, ...]]:
    """``["lr=1e-3,3e-3", "steps=100"]`` -> ``{"lr": ("1e-3", "3e-3"), "steps": ("100",)}``; InvalidInput for a
    missing ``=``, an empty key or value list, a key given twice or a value listed twice."""
    grid: dict[str, tuple[str, ...]] = {}
    for item in items or []:
        if "=" not in item:
            raise InvalidInput(f"--grid expects KEY=V1,V2,..., got {_short(item)!r}.",
                               "Example: --grid lr=1e-3,3e-3 --grid steps=100,200.")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise InvalidInput(f"--grid {_short(item)!r} has no setting name before '='.")
        if key in grid:
            raise InvalidInput(f"--grid names {_short(key)} twice.", "List all its values once: KEY=V1,V2.")
        if key == "seed":
            raise InvalidInput("--grid cannot sweep seed.", "Use --seeds 0-4 (or 0,3,7) for the seeds.")
        values = tuple(v.strip() for v in raw.split(","))
        if not values or any(not v for v in values):
            raise InvalidInput(f"--grid {_short(item)!r} has an empty value.", "Give KEY=V1,V2 with no empty items.")
        dup = next((v for i, v in enumerate(values) if v in values[:i]), None)
        if dup is not None:
            raise InvalidInput(f"--grid {_short(key)} lists {_short(dup)!r} twice.")
        grid[key] = values
    return grid


def parse_seeds(text: str | None) -> tuple[int, ...]:
    """``"0-4"`` -> (0, 1, 2, 3, 4); ``"0,3,7"`` and mixes like ``"0-2,9"`` too; None -> (0,).
    InvalidInput for anything else: a reversed range, a negative or too large seed, a repeat, too many."""
    if text is None:
        return (0,)
    hint = "Give --seeds as a range 0-4, a list 0,3,7, or both: 0-2,9 (seeds 0 .. 4294967295)."
    seeds: list[int] = []
    if not text.strip():
        raise InvalidInput("--seeds is empty.", hint)
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d{1,20})(?:\s*-\s*(\d{1,20}))?", part)
        if m is None:
            raise InvalidInput(f"--seeds {_short(text)!r}: {_short(part)!r} is not a seed or a range.", hint)
        lo = int(m[1])
        hi = int(m[2]) if m[2] is not None else lo
        if hi < lo:
            raise InvalidInput(f"--seeds {_short(part)!r} runs backwards.", hint)
        if hi > SEED_MAX:
            raise InvalidInput(f"--seeds {_short(part)!r}: seeds go up to {SEED_MAX}.", hint)
        if hi - lo + 1 + len(seeds) > MAX_SEEDS:
            raise InvalidInput(f"--seeds {_short(text)!r} names more than {MAX_SEEDS} seeds.", hint)
        seeds.extend(range(lo, hi + 1))
    dup = next((s for i, s in enumerate(seeds) if s in seeds[:i]), None)
    if dup is not None:
        raise InvalidInput(f"--seeds {_short(text)!r} names seed {dup} twice.", hint)
    return tuple(seeds)


def cells_of(grid: dict[str, tuple[str, ...]], seeds: tuple[int, ...]) -> list[Cell]:
    """Every combination of the grid's values, each with every seed (seed varies fastest)."""
    total = len(seeds)
    for values in grid.values():
        total *= len(values)
    if total > MAX_CELLS:
        raise InvalidInput(f"The sweep has {total:,} cells; at most {MAX_CELLS:,} are allowed.",
                           "Sweep fewer values or seeds at a time.")
    keys = list(grid)
    return [Cell(tuple(zip(keys, combo)), seed)
            for combo in itertools.product(*(grid[k] for k in keys)) for seed in seeds]


def plan(exp: type[Experiment], grid: dict[str, tuple[str, ...]], seeds: tuple[int, ...], *,
         preset: str | None = None, sets: dict[str, str] | None = None,
         fields: dict[str, Any] | None = None) -> list[tuple[Cell, Any]]:
    """(cell, its validated config) for every cell: a grid key the experiment lacks, a list setting, a key also
    given with ``--set``, or a value out of range in any cell is an InvalidInput before anything runs."""
    names = {f.name: f for f in dataclasses.fields(exp.Config)}
    sets = dict(sets or {})
    for key in grid:
        if key not in names:
            raise InvalidInput(f"--grid {_short(key)}: {exp.name} has no such setting.",
                               f"Settings: {', '.join(sorted(names))}.")
        if key in sets or key in (fields or {}):
            raise InvalidInput(f"{_short(key)} is given both in --grid and as a fixed setting.", "Give it once.")
        if isinstance(getattr(exp.Config(), key), (list, tuple)):
            raise InvalidInput(f"--grid {_short(key)}: a list setting cannot be swept (its values hold commas).",
                               "Sweep a number, text or true/false setting; fix a list with --set.")
    if "seed" in sets or "seed" in (fields or {}):
        raise InvalidInput("A sweep takes its seeds from --seeds, not --set seed or --seed.")
    out = []
    for cell in cells_of(grid, seeds):
        try:
            config = make_config(exp, preset=preset, overrides={**sets, **dict(cell.settings)},
                                 **{**(fields or {}), "seed": cell.seed})
        except InvalidInput as e:
            raise InvalidInput(f"Cell {_short(cell.label(), 100)} (seed {cell.seed}): {e.message}", e.hint) from None
        out.append((cell, config))
    return out
