"""``facility-agent ingest``: poll a site's equipment into DuckDB, with a live progress line.

    facility-agent ingest [--site FILE] [--db FILE] [--duration S] [--device-port P] [--bacnet-port P]

Defaults: the twin's data hall as the twin serves it (``twin/site.yaml`` with the CRAHs
and the CDU on BACnet/IP, the rest on Modbus TCP) and ``facility.duckdb`` in the
working directory. Exits 4 when not one good reading came in (every device down). Stops cleanly at ``--duration`` or on Ctrl-C: the pollers
stop, what is pending is flushed, and a summary line is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any, TextIO

from agent.commands._common import add_db_option, add_site_option, site_from_args
from connectors.ingest import Ingestor, IngestStats
from connectors.modbus import PollerConfig
from connectors.site import protocol_summary
from connectors.store import Store

EXIT_NO_GOOD_READINGS = 4
"""``ingest`` stored nothing usable: every device down, or every reading bad."""


def register(sub: Any) -> None:
    p = sub.add_parser("ingest", help="poll the site's equipment into DuckDB (live progress line)")
    add_site_option(p, device_port=True)
    add_db_option(p)
    p.add_argument(
        "--duration", type=float, default=None, help="stop after S seconds (default: until Ctrl-C)"
    )
    p.add_argument(
        "--timeout", type=float, default=1.0, help="seconds to wait for a device's answer"
    )
    p.add_argument(
        "--progress-every", type=float, default=None, metavar="S",
        help="seconds between progress lines (default: 0.5 on a terminal, else 5)",
    )  # fmt: skip
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    site = site_from_args(args)  # SiteConfigError → one line, exit 2
    with Store(args.db) as store:  # StoreError (file locked) → one line, exit 2
        ingestor = Ingestor(site, store, config=PollerConfig(timeout_s=args.timeout))
        final = asyncio.run(_run(ingestor, args.duration, sys.stderr, args.progress_every))
    print(
        f"ingest: {final.rows_stored:,} rows stored in {args.db} "
        f"({final.good:,} good of {final.readings:,} readings, "
        f"{len(ingestor.pollers)} devices, {final.elapsed_s:.1f} s; {protocol_summary(site)})",
        file=sys.stderr,
    )
    if final.good == 0:
        print(
            "facility-agent: error: no good reading from any device (is the site reachable? "
            "see the warnings above)",
            file=sys.stderr,
        )
        return EXIT_NO_GOOD_READINGS
    return 0


async def _run(
    ingestor: Ingestor, duration: float | None, out: TextIO, every: float | None = None
) -> IngestStats:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(ingestor.run(duration, stop))
    tty = out.isatty()
    every = every or (0.5 if tty else 5.0)
    try:
        while not task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), every)
            if not task.done():
                line = ingestor.stats().line()
                out.write(f"\r{line}\033[K" if tty else line + "\n")
                out.flush()
        await task
    finally:
        if tty:
            out.write("\n")
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    return ingestor.stats()
