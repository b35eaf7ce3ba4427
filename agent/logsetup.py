"""Logging of every command: to stderr, plain lines or JSON lines (``--log-json``).

``-v`` shows what the process does (INFO: devices up/down, decision cycles, API start/stop),
``-vv`` everything (DEBUG, and the libraries' own INFO lines: HTTP requests, Modbus frames).
Without ``-v`` only warnings and errors are printed.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

#: Libraries that chatter at INFO (one line per HTTP request, per Modbus frame): shown at -vv.
NOISY = ("httpx", "httpcore", "pymodbus", "uvicorn", "uvicorn.access", "asyncio", "matplotlib")

_STD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC ISO), ``level``, ``logger``, ``msg``, extras."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in record.__dict__.items():
            if k not in _STD_ATTRS and not k.startswith("_"):
                out[k] = v if isinstance(v, str | int | float | bool | None) else str(v)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def level_for(verbose: int) -> int:
    """0 → WARNING, 1 → INFO, 2+ → DEBUG."""
    return (logging.WARNING, logging.INFO, logging.DEBUG)[max(0, min(verbose, 2))]


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (never a closed one)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


_OURS: list[logging.Handler] = []


def configure(verbose: int = 0, json_lines: bool = False, stream: TextIO | None = None) -> None:
    """Route every log record to ``stream`` (default: stderr) at the level ``-v`` asks for.

    Like :func:`logging.basicConfig`, it leaves a process whose logging someone else set up
    (a test runner, an embedding application) alone; called again, it replaces its own."""
    root = logging.getLogger()
    for h in _OURS:
        root.removeHandler(h)
    _OURS.clear()
    if root.handlers:
        return
    handler: logging.Handler = logging.StreamHandler(stream) if stream else _Stderr()
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root.addHandler(handler)
    _OURS.append(handler)
    root.setLevel(level_for(verbose))
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)
