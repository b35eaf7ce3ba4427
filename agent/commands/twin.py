"""``facility-agent twin``: serve the simulated data hall over Modbus TCP.

    facility-agent twin                                  # 127.0.0.1:5020, real time
    facility-agent twin --port 5021 --speed 60           # one simulated minute per second
    facility-agent twin --fault chiller_trip:chiller_1:600 --fault drift:ct_1.cw_supply_temp:0:2
    facility-agent twin --scenario my_faults.yaml

Fault form: KIND:TARGET[:start_s[:magnitude]] (kinds and magnitudes: twin/faults.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
import time
from pathlib import Path

from agent.commands._common import add_site_option
from connectors.errors import FacilityError
from connectors.site import Site, load_site, with_port
from twin.faults import FaultKind, load_scenario, parse_fault_spec
from twin.sim import Twin, TwinRunner, default_site


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "twin",
        help="serve the simulated AI data hall over Modbus TCP",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_twin_options(p)
    p.add_argument("--duration", type=float, default=None, help="stop after S wall seconds")
    p.set_defaults(func=run)


def add_twin_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``twin`` and ``demo``."""
    add_site_option(p)
    p.add_argument(
        "--port", type=int, default=None, help="serve on this port (default: the site's, 5020)"
    )
    p.add_argument(
        "--speed", type=float, default=1.0, help="simulated seconds per wall second (default 1)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed of the simulation")
    p.add_argument(
        "--fault", action="append", default=[], metavar="KIND:TARGET[:START_S[:MAGNITUDE]]",
        help=f"inject a fault (repeatable); kinds: {', '.join(k.value for k in FaultKind)}",
    )  # fmt: skip
    p.add_argument("--scenario", type=Path, default=None, help="YAML file of faults to inject")
    p.add_argument(
        "--plant", default=None, metavar="FILE|catalogue",
        help="the plant's own equipment against its nameplates (default twin/plant.yaml: "
        "not the agent's model; 'catalogue': the model itself)",
    )  # fmt: skip


def build_twin(args: argparse.Namespace) -> Twin:
    """The twin the options describe, faults injected (raises ConfigError on bad input)."""
    site: Site = load_site(args.site) if args.site else default_site()
    if args.port is not None:
        site = with_port(site, args.port)
    twin = Twin(site, seed=args.seed, plant=getattr(args, "plant", None))
    faults = [parse_fault_spec(s) for s in args.fault]
    if args.scenario is not None:
        faults += load_scenario(args.scenario).faults
    for f in faults:
        twin.inject(f)
    return twin


def check_ports_free(site: Site) -> None:
    """Fail with a clear message when a port the twin needs is taken (pymodbus would hang)."""
    for host, port in sorted({(k.host, k.port) for k in site.devices()}):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as err:
                raise FacilityError(
                    f"cannot serve the twin on {host}:{port}: {err.strerror} "
                    "(is another twin running? pick one with --port)"
                ) from None


def install_stop(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def _serve(twin: Twin, speed: float, duration: float | None) -> None:
    from twin.server import SiteServer

    check_ports_free(twin.site)
    server = SiteServer(twin.site)
    runner = TwinRunner(twin, server, speed=speed)
    runner.push()
    await server.start()
    stop = asyncio.Event()
    install_stop(stop)
    ports = ",".join(str(p) for p in server.ports)
    print(
        f"twin: {len(twin.site.point_ids)} points on {len(twin.site.devices())} devices, "
        f"127.0.0.1:{ports}, speed {speed:g}x — Ctrl-C to stop\n"
        f"twin: plant: {twin.plant_spec.describe()}",
        flush=True,
    )
    task = asyncio.create_task(runner.run(duration, stop))
    last = time.monotonic()
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=10.0)
            if time.monotonic() - last >= 10.0 and sys.stdout.isatty():
                last = time.monotonic()
                v = twin.values()
                faults = ", ".join(f.id or "" for f in twin.active_faults()) or "none"
                print(
                    f"{twin.now:%Y-%m-%d %H:%M:%S}Z  IT {v['gpu.it_power']:.0f} kW  "
                    f"PUE {v['plant.pue']:.2f}  faults: {faults}",
                    flush=True,
                )
    finally:
        stop.set()
        await task
        await server.stop()


def run(args: argparse.Namespace) -> int:
    twin = build_twin(args)
    asyncio.run(_serve(twin, args.speed, args.duration))
    return 0
