"""The one entry point, ``facility-agent``, and its sub-commands.

Each sub-command is a module in ``agent/commands/`` or ``evals/commands/`` that
defines ``register(subparsers)``; the module adds its parser and sets
``func=`` to a callable taking the parsed args and returning an exit code.
Modules are found by name at start-up, so adding a command touches no shared
file — and ``evals`` (which sits above ``agent``) is only named, never imported
statically.

Errors the user can fix (:class:`connectors.errors.FacilityError`) print one
line to stderr and exit 2 (3 when access is denied: no token, a bad one, or too low a
role); nothing prints a traceback for a bad file.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

from connectors.errors import FacilityError

COMMAND_PACKAGES = ("agent.commands", "evals.commands")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facility-agent",
        description="Runs a facility's equipment with an LLM agent beside its operators.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 1
    try:
        return int(func(args) or 0)
    except FacilityError as err:
        print(f"facility-agent: error: {err}", file=sys.stderr)
        return int(getattr(err, "exit_code", 2))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
