"""Named experiments: each a class with a config dataclass, presets, the finding it reproduces, and run().

Experiments register themselves with ``@register``; every plain module of the ``experiments`` package is one
experiment and is imported by :func:`all_experiments`, so adding an experiment is adding one file.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

from experiments.core.settings import validate
from interp.errors import InvalidInput

if TYPE_CHECKING:
    from experiments.core.context import RunContext

#: A verdict: the published finding holds here, does not, or could not be checked (with the reason why). A smoke
#: test (a preset with tiny settings, e.g. ``ci``) has its own two words: it never says "reproduced".
VerdictStatus = Literal["reproduced", "not reproduced", "not checked", "smoke test passed", "smoke test failed"]
REPRODUCED, NOT_REPRODUCED, NOT_CHECKED, SMOKE_PASSED, SMOKE_FAILED = get_args(VerdictStatus)
#: A full run's word -> a smoke test's word ("not checked" stays "not checked").
SMOKE_WORDS: dict[str, str] = {REPRODUCED: SMOKE_PASSED, NOT_REPRODUCED: SMOKE_FAILED}


@dataclass(frozen=True)
class Finding:
    """The published result an experiment checks, with the published numbers in words."""
    claim: str
    source: str  # citation, e.g. "Olsson et al. 2022, In-context Learning and Induction Heads"
    published: str = ""  # the numbers as published, e.g. "induction heads 5.1, 5.5, 6.9, 7.2, 7.10"
    url: str = ""


@dataclass
class Check:
    """One claim of a finding, tested on this run's numbers."""
    claim: str
    passed: bool | None  # None: could not be checked (``detail`` says why)
    detail: str = ""


@dataclass
class Verdict:
    """The outcome of a run: its status, why, the checks of the finding and the preconditions they rest on.

    A precondition is what must hold for the checks to mean anything (the model does the task; the data is not
    degenerate); when one fails the verdict is "not checked" and names it, whatever the checks say."""
    status: VerdictStatus
    reason: str
    checks: list[Check] = field(default_factory=list)
    preconditions: list[Check] = field(default_factory=list)

    @staticmethod
    def from_checks(checks: list[Check], not_checked_reason: str = "",
                    preconditions: list[Check] | None = None) -> Verdict:
        """Not checked iff a precondition failed, a check could not be run or there are no checks; else
        reproduced iff every check passed."""
        pre = list(preconditions or [])
        unmet = [p for p in pre if p.passed is not True]
        if unmet:
            return Verdict(NOT_CHECKED, precondition_reason(unmet), checks, pre)
        if any(c.passed is None for c in checks) or not checks:
            why = not_checked_reason or "; ".join(f"{c.claim}: {c.detail}" for c in checks if c.passed is None)
            return Verdict(NOT_CHECKED, why or "no claim could be checked", checks, pre)
        failed = [c.claim for c in checks if not c.passed]
        if failed:
            return Verdict(NOT_REPRODUCED, "failed: " + "; ".join(failed), checks, pre)
        return Verdict(REPRODUCED, f"all {len(checks)} checks passed", checks, pre)

    @staticmethod
    def not_checked(reason: str, preconditions: list[Check] | None = None) -> Verdict:
        return Verdict(NOT_CHECKED, reason, [], list(preconditions or []))

    def as_smoke_test(self) -> Verdict:
        """The same verdict in a smoke test's words: "smoke test passed"/"smoke test failed", never "reproduced"."""
        return dataclasses.replace(self, status=SMOKE_WORDS.get(self.status, self.status))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def precondition_reason(unmet: list[Check]) -> str:
    """"not checked: <why>" for the preconditions that did not hold."""
    return "not checked: " + "; ".join(f"precondition not met: {p.claim}; here {p.detail}" if p.passed is False
                                       else f"precondition not testable: {p.claim}; {p.detail}" for p in unmet)


@dataclass
class RunResult:
    """What an experiment's run() returns; the runner writes it out."""
    metrics: dict[str, Any]
    verdict: Verdict
    summary: str  # markdown body (the runner adds a header with the finding and verdict)
    figures: dict[str, Any] = field(default_factory=dict)  # name -> plotly Figure


class Experiment:
    """Subclass, set the class attributes, implement ``run(config, ctx) -> RunResult``."""
    name: ClassVar[str]
    title: ClassVar[str]
    Config: ClassVar[type]  # a dataclass whose defaults reproduce the published setting
    presets: ClassVar[dict[str, dict[str, Any]]] = {}  # e.g. {"ci": {...}} small and fast
    #: Presets that are smoke tests (tiny settings that check the code runs end to end, not the finding): their
    #: verdict says "smoke test passed/failed" and their summary says so at the top.
    smoke_presets: ClassVar[tuple[str, ...]] = ("ci",)
    finding: ClassVar[Finding | None] = None
    #: For an analysis of *how* a model does something (a circuit, features): what must hold first, in words
    #: (the model does the task, the data is not degenerate). Shown in ``--help`` and checked by ``run()``.
    precondition: ClassVar[str] = ""

    def run(self, config: Any, ctx: RunContext) -> RunResult:
        raise NotImplementedError

    def output_dirs(self, config: Any) -> dict[str, Path]:
        """Folders outside the results folder this run will write (what -> path), checked by the runner against
        the one output rule (:mod:`experiments.core.outputs`) before the run starts. Default: every ``path="out"``
        setting that is given."""
        out = {}
        for f in dataclasses.fields(config):
            value = getattr(config, f.name)
            if (f.metadata or {}).get("path") == "out" and isinstance(value, str) and value.strip():
                out[f"Setting {f.name}"] = Path(value).expanduser()
        return out


_REGISTRY: dict[str, type[Experiment]] = {}


def register(cls: type[Experiment]) -> type[Experiment]:
    """Class decorator: add ``cls`` to the registry; a second experiment of the same name is refused."""
    if not dataclasses.is_dataclass(cls.Config):
        raise TypeError(f"{cls.__name__}.Config must be a dataclass")
    known = _REGISTRY.get(cls.name)
    if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"Two experiments are named {cls.name!r}: {known.__module__}.{known.__qualname__} and "
                         f"{cls.__module__}.{cls.__qualname__}.")
    _REGISTRY[cls.name] = cls
    return cls


#: The subpackages whose every module is one registered experiment.
EXPERIMENT_PACKAGES = ("reproductions", "builds")


def all_experiments() -> dict[str, type[Experiment]]:
    """Every registered experiment, importing each module of the reproductions and builds packages once."""
    root = Path(__file__).parent.parent
    for sub in EXPERIMENT_PACKAGES:
        for mod in pkgutil.iter_modules([str(root / sub)]):
            if not mod.ispkg and not mod.name.startswith("_"):
                importlib.import_module(f"experiments.{sub}.{mod.name}")
    return dict(sorted(_REGISTRY.items()))


def get_experiment(name: str) -> type[Experiment]:
    exps = all_experiments()
    if name not in exps:
        raise InvalidInput(f"No experiment named {name!r}.", f"Known experiments: {', '.join(exps)}.")
    return exps[name]


# ----------------------------------------------------------------------------- configs


def _coerce(value: str, target: Any, key: str) -> Any:
    """Parse a ``--set key=value`` string into the type of the field's default."""
    want = {bool: "true or false", int: "a whole number", float: "a number"}.get(type(target), "")
    try:
        if isinstance(target, bool):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if isinstance(target, int):
            number = float(value)  # accepts 1e5 and 2000
            if number != int(number):
                raise ValueError(value)
            return int(value) if value.strip().lstrip("+-").isdigit() else int(number)
        if isinstance(target, float):
            return float(value)
        if isinstance(target, (list, tuple)):
            want = "a comma-separated list"
            items = [v.strip() for v in value.split(",") if v.strip()]
            if target and not isinstance(target[0], str):
                items = [_coerce(v, target[0], key) for v in items]
            return type(target)(items)
    except (ValueError, OverflowError):
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise InvalidInput(f"--set {key}={shown}: expected {want or 'a ' + type(target).__name__}.") from None
    return value


def make_config(exp: type[Experiment], *, preset: str | None = None, overrides: dict[str, str] | None = None,
                **fields: Any) -> Any:
    """Defaults -> preset -> typed overrides (``key=value`` strings) -> explicit keyword fields (the CLI's
    ``--seed``/``--device``/``--model``; naming one both ways with different values is a conflict), then
    :func:`~experiments.core.settings.validate` (every field in range, cross-field rules): InvalidInput."""
    base = exp.Config()
    names = {f.name for f in dataclasses.fields(base)}
    values: dict[str, Any] = {}
    if preset:
        if preset not in exp.presets:
            raise InvalidInput(f"{exp.name} has no preset {_short(preset)!r}; presets: "
                               f"{', '.join(exp.presets) or 'none'}.")
        values.update(exp.presets[preset])
    for key, raw in (overrides or {}).items():
        if key not in names:
            raise InvalidInput(f"{exp.name} has no setting {_short(key)!r}.",
                               f"Settings: {', '.join(sorted(names))}.")
        values[key] = _coerce(raw, values.get(key, getattr(base, key)), key)
    for key, val in fields.items():
        if val is None:
            continue
        if key not in names:
            raise InvalidInput(f"{exp.name} does not take --{key}.",
                               f"See python -m experiments run {exp.name} --help.")
        if key in (overrides or {}) and values[key] != val:
            raise InvalidInput(f"--{key} {_short(str(val))} and --set {key}={_short(str(overrides[key]))} disagree.",
                               f"Give {key} once.")
        values[key] = val
    return validate(dataclasses.replace(base, **values))


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def parse_sets(pairs: list[str] | None) -> dict[str, str]:
    """``["key=value", ...]`` -> dict; a key given twice is refused (which one was meant?)."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise InvalidInput(f"--set expects key=value, got {_short(pair)!r}.")
        k, v = pair.split("=", 1)
        k = k.strip()
        if not k:
            raise InvalidInput(f"--set expects key=value, got {_short(pair)!r} (no key).")
        if k in out and out[k] != v.strip():
            raise InvalidInput(f"--set {_short(k)} is given twice ({_short(out[k])!r} and {_short(v.strip())!r}).",
                               "Give each setting once.")
        out[k] = v.strip()
    return out
