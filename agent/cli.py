"""The one entry point, ``facility-agent``, and its sub-commands.

Each sub-command is a module in ``agent/commands/`` or ``evals/commands/`` that
defines ``register(subparsers)``; the module adds its parser and sets
``func=`` to a callable taking the parsed args and returning an exit code.
Modules are found by name at start-up, so adding a command touches no shared
file — and ``evals`` (which sits above ``agent``) is only named, never imported
statically.

Errors the user can fix (:class:`connectors.errors.FacilityError`) print one
line to stderr and exit 2 (3 when access is denied: no token, a bad one, or too low a
role); nothing prints a traceback for a bad file. Output cut short by its reader
(``facility-agent audit | head``) ends quietly with exit code 141, as a killed pipe does.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import pkgutil
import sys
from collections.abc import Sequence

from agent.logsetup import configure
from connectors.errors import FacilityError

COMMAND_PACKAGES = ("agent.commands", "evals.commands")
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a process its reader left


def version() -> str:
    try:
        return importlib.metadata.version("facility-agent")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a checkout
        return "unknown"


def _add_logging_options(p: argparse.ArgumentParser, default: object) -> None:
    p.add_argument(
        "-v", "--verbose", action="count", default=default,
        help="more logging on stderr: -v what the process does, -vv everything (debug)",
    )  # fmt: skip
    p.add_argument(
        "--log-json", action="store_true", default=default,
        help="log JSON lines on stderr (ts, level, logger, msg) instead of plain text",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facility-agent",
        description="Runs a facility's equipment with an LLM agent beside its operators.",
    )
    parser.add_argument("--version", action="version", version=f"facility-agent {version()}")
    _add_logging_options(parser, 0)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for pkg_name in COMMAND_PACKAGES:
        try:
            pkg = importlib.import_module(pkg_name)
        except ImportError:  # pragma: no cover - a layer not installed
            continue
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            if info.name.startswith("_"):
                continue
            mod = importlib.import_module(f"{pkg_name}.{info.name}")
            register = getattr(mod, "register", None)
            if register is not None:
                register(sub)
    for cmd in sub.choices.values():  # -v / --log-json also after the command's name
        _add_logging_options(cmd, argparse.SUPPRESS)
    return parser


def _reader_gone(console: object) -> None:
    """rich's answer to a closed pipe is ``SystemExit(1)``; ours is the one exit code 141."""
    console.quiet = True  # type: ignore[attr-defined]
    raise BrokenPipeError


def main(argv: Sequence[str] | None = None) -> int:
    from rich.console import Console

    Console.on_broken_pipe = _reader_gone  # type: ignore[method-assign,assignment]
    parser = build_parser()
    args = parser.parse_args(argv)
    configure(args.verbose, args.log_json)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 1
    try:
        rc = int(func(args) or 0)
        sys.stdout.flush()  # a reader gone before the last line shows here, not at exit
        return rc
    except BrokenPipeError:
        # the reader (head, less) has gone: say nothing more, and keep the interpreter's
        # exit-time flush from raising again (https://docs.python.org/3/library/signal.html)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except FacilityError as err:
        print(f"facility-agent: error: {err}", file=sys.stderr)
        return int(getattr(err, "exit_code", 2))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
