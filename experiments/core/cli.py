"""`python -m experiments list | run NAME [...] | sweep NAME --grid ... | show DIR`.

Every input is checked before work starts; a bad one prints one line saying what is wrong and what to do,
and exits with status 2 (never a traceback). ``run NAME --help`` lists every setting of that experiment with
its help, default and valid range.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import textwrap
from typing import Any, NoReturn

from tqdm import tqdm

from experiments.core.registry import all_experiments, get_experiment, parse_sets
from experiments.core.results import read_result
from experiments.core.runner import run_experiment
from experiments.core.settings import field_help
from interp.errors import InvalidInput, WorkbenchError, memory_error

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # Ctrl-C: the run's own clean-up (staging folder) has run; see exit_now
# CSI (ESC [ ... final), OSC (ESC ] ... BEL/ST), other two-byte ESC sequences, then any C0/C1 control character
# except tab and newline: what a summary written by someone else could use to rewrite the terminal.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|"
                      r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_escapes(text: str) -> str:
    """``text`` without terminal escape sequences or control characters (tab and newline kept)."""
    return _ESCAPES.sub("", text)


def one_line(text: str, limit: int = 600) -> str:
    """A message as one printable line of at most ``limit`` characters."""
    text = " ".join(strip_escapes(str(text)).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2 (argparse prints the whole usage first)."""
    def error(self, message: str) -> NoReturn:
        print(f"error: {one_line(message)} (see: {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m experiments", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    sub.add_parser("list", help="registered experiments, their findings and settings")
    run = sub.add_parser("run", help="run an experiment into a results folder (run NAME --help: its settings)",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("name")
    run.add_argument("--model", help="bundled name, Hugging Face name, or model directory")
    run.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE", help="set a setting (repeatable)")
    run.add_argument("--preset", help="a named small config, e.g. ci")
    run.add_argument("--out", help="results folder (default results/NAME/PRESET-HASH)")
    run.add_argument("--seed", type=int, help="random seed, 0 .. 2**32-1 (same as --set seed=N)")
    run.add_argument("--device", help="cpu, cuda, cuda:0 ... (same as --set device=...)")
    run.add_argument("--backend", help="bridge (default), nnsight, or ndif: NDIF's servers, for Hub models NDIF "
                                       "hosts, key in NDIF_API_KEY (same as --set backend=...)")
    run.add_argument("--force", action="store_true", help="re-run even if a complete result exists")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    show = sub.add_parser("show", help="print a results folder's summary")
    show.add_argument("dir")
    from experiments.distributed.cli import add_parser as add_sweep_parser

    add_sweep_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if _wants_experiment_help(argv):
            return _experiment_help(argv[1])
        try:
            args = _parser().parse_args(argv)
        except SystemExit as e:  # --help (0) or a usage error already printed on one line (2)
            return int(e.code) if isinstance(e.code, int) else EXIT_BAD_INPUT
        if args.cmd == "list":
            return _list()
        if args.cmd == "run":
            return _run(args)
        if args.cmd == "sweep":
            from experiments.distributed.cli import run as sweep

            return sweep(args)

        print(strip_escapes(read_result(args.dir).summary))
        return 0
    except WorkbenchError as e:
        print(f"error: {one_line(str(e))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted: no partial result was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError as e:
        print(f"error: {one_line(str(memory_error(e)))}", file=sys.stderr)
        return 1
    except OSError as e:  # disk full, permissions changed mid-run: say so in one line
        print(f"error: {one_line(f'{e.strerror or type(e).__name__}: {e.filename or e}')}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - a bug: one line here; WORKBENCH_DEBUG=1 re-raises for the traceback
        if os.environ.get("WORKBENCH_DEBUG"):
            raise
        print(f"internal error ({type(e).__name__}): {one_line(str(e), 300)} - please report it "
              "(WORKBENCH_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


def _wants_experiment_help(argv: list[str]) -> bool:
    """``run NAME ... --help``: argparse would only show the generic run options."""
    return (len(argv) >= 2 and argv[0] == "run" and not argv[1].startswith("-")
            and any(a in ("-h", "--help") for a in argv[2:]))


def settings_table(config_cls: type) -> list[str]:
    """One block per setting: ``name (type, default X, range)`` then its help, indented."""
    lines = []
    for name, default, help_, range_ in field_help(config_cls):
        kind = type(default).__name__ if not isinstance(default, (tuple, list)) else "list"
        shown = _show_default(default)
        head = f"  {name} ({kind}, default {shown}" + (f", {range_}" if range_ else "") + ")"
        lines.append(head)
        lines += textwrap.wrap(help_, 100, initial_indent="      ", subsequent_indent="      ") if help_ else []
    return lines


def _show_default(value: Any) -> str:
    if isinstance(value, (tuple, list)) and any(isinstance(v, str) and len(v) > 24 for v in value):
        return f"[{len(value)} texts]"
    if isinstance(value, (tuple, list)):
        text = ",".join(map(str, value))
    else:
        text = str(value)
    text = text.replace("\n", "\\n")
    text = "''" if text == "" else text
    return text if len(text) <= 60 else text[:57] + "..."


def _experiment_help(name: str) -> int:

    exp = get_experiment(name)
    print(f"usage: python -m experiments run {name} [--preset P] [--set KEY=VALUE ...] [--model M] [--seed N] "
          "[--device D] [--backend B] [--out DIR] [--force] [--quiet]\n")
    print(exp.title)
    if exp.finding:
        print(f"\nFinding: {exp.finding.claim}\nSource: {exp.finding.source}")
    print("\nPresets: " + (", ".join(f"{p} ({_preset_words(v)})" for p, v in exp.presets.items()) or "none"))
    print("\nSettings (--set KEY=VALUE; lists are comma-separated):")
    print("\n".join(settings_table(exp.Config)))
    print("\nOptions: --model M, --seed N, --device D and --backend B set those settings; --out DIR the results "
          "folder; --force re-runs over a complete result; --quiet hides the progress bar.")
    return 0


def _preset_words(values: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={_show_default(v)}" for k, v in values.items())
    return text if len(text) <= 200 else text[:197] + "..."


def _list() -> int:


    for name, exp in all_experiments().items():
        presets = ", ".join(exp.presets) or "-"
        print(f"{name}\n  {exp.title}\n  presets: {presets}")
        if exp.finding:
            print(f"  finding: {exp.finding.claim}\n  source: {exp.finding.source}")
            if exp.finding.published:
                print(f"  published: {exp.finding.published}")
        defaults = exp.Config()
        brief = ", ".join(f"{f.name}={_show_default(getattr(defaults, f.name))}"
                          for f in dataclasses.fields(exp.Config))
        print("\n".join(textwrap.wrap(f"settings: {brief}", 116, initial_indent="  ", subsequent_indent="    ")))
        print(f"  (python -m experiments run {name} --help: what each setting means and its range)\n")
    return 0


def _run(args: argparse.Namespace) -> int:

    for flag in ("out", "preset", "model", "device", "backend"):
        value = getattr(args, flag)
        if value is not None and not value.strip():
            raise InvalidInput(f"--{flag} is empty.", f"Give a value, or omit --{flag} to use the default.")

    bars: list[Any] = []  # made at the first progress report, so a refused input prints only its one line
    progress = None
    if not args.quiet:
        def progress(frac: float, msg: str) -> None:
            if not bars:

                bars.append(tqdm(total=1000, desc=args.name[:40], bar_format="{l_bar}{bar}| {elapsed} {postfix}",
                                 file=sys.stderr))
            bars[0].n = int(frac * 1000)
            bars[0].set_postfix_str(one_line(msg, 60), refresh=True)
    try:
        outcome = run_experiment(args.name, preset=args.preset, overrides=parse_sets(args.sets), model=args.model,
                                 out=args.out, force=args.force, progress=progress, seed=args.seed,
                                 device=args.device, backend=args.backend)
    finally:
        for bar in bars:
            bar.close()
    print(outcome.message)
    return 0


def exit_now(code: int) -> None:
    """Leave the process with ``code``. After a Ctrl-C nothing is left to do (the runner's ``finally`` removed the
    staging folder), but the interpreter's shutdown would still run library finalisers: kaleido's Chromium profile
    clean-up retries for 8 s while the browser dies, so one Ctrl-C seemed to hang until a second. Those are skipped
    (streams flushed first); any other exit is the normal one."""
    if code == EXIT_INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)
