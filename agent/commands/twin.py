"""``facility-agent twin``: serve the simulated data hall over Modbus TCP and BACnet/IP.

Every device answers on Modbus TCP (127.0.0.1:5020); the CRAHs and the CDU are also
BACnet/IP devices (127.0.0.1:47810–47814, instances 1001–1005; ``--no-bacnet`` turns them
off), and the twin's site as served — what the demo's agent polls and writes, and the
default site of run, ingest and the other agent commands — reads those over BACnet
(``--write-site FILE`` saves it as YAML). A twin on other ports (``--port P``,
``--bacnet-port B``) is reached with ``run --device-port P --bacnet-port B``.

    facility-agent twin                                  # 127.0.0.1:5020, real time
    facility-agent twin --port 5021 --speed 60           # one simulated minute per second
    facility-agent twin --fault chiller_trip:chiller_1:600 --fault drift:ct_1.cw_supply_temp:0:2
    facility-agent twin --scenario my_faults.yaml
    facility-agent twin --control g36 --weather 723170TYA --start 2026-07-21   # G36 BMS, TMY3 day

Fault form: KIND:TARGET[:start_s[:magnitude]].
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from agent.commands._common import add_site_option, user_text
from connectors.errors import FacilityError
from connectors.site import Site, load_site, with_port
from twin.bacnet_map import BACNET_BASE_PORT, BACNET_EQUIPMENT, to_bacnet
from twin.control import CONTROL_MODES
from twin.faults import FaultKind, load_scenario, parse_fault_spec
from twin.sim import Twin, TwinRunner, default_site
from twin.weather import STATIONS

if TYPE_CHECKING:
    from twin.bacnet_server import BacnetSiteServer
    from twin.server import SiteServer


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "twin",
        help="serve the simulated AI data hall over Modbus TCP",
        description=user_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_twin_options(p)
    p.add_argument("--duration", type=float, default=None, help="stop after S wall seconds")
    p.add_argument(
        "--write-site", type=Path, default=None, metavar="FILE",
        help="write the site as served (CRAHs and CDU over BACnet) to FILE for `run --site`",
    )  # fmt: skip
    p.set_defaults(func=run)


def add_twin_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``twin`` and ``demo``."""
    add_site_option(
        p,
        help="site file the twin simulates, every device on Modbus TCP (default: twin/site.yaml); "
        "its CRAHs and CDU are BACnet/IP devices too unless --no-bacnet",
    )
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
        "--control", choices=CONTROL_MODES, default="legacy",
        help="the BMS's own control: legacy fixed set points or g36 Guideline 36 resets",
    )  # fmt: skip
    p.add_argument(
        "--weather", choices=sorted(STATIONS), default=None,
        help="TMY3 station shipped with pvlib (default: the synthetic summer day)",
    )  # fmt: skip
    p.add_argument(
        "--start", type=_start_date, default=None, metavar="YYYY-MM-DD[THH:MM]",
        help="simulated start (local standard time of the weather; default 2026-07-01)",
    )  # fmt: skip
    p.add_argument(
        "--plant", default=None, metavar="FILE|catalogue",
        help="the plant's own equipment against its nameplates (default twin/plant.yaml: "
        "not the agent's model; 'catalogue': the model itself)",
    )  # fmt: skip
    p.add_argument(
        "--no-bacnet", action="store_true",
        help="serve Modbus only (default: the CRAHs and the CDU are BACnet/IP devices too)",
    )  # fmt: skip
    p.add_argument(
        "--bacnet-port", type=int, default=BACNET_BASE_PORT, metavar="PORT",
        help=f"UDP port of the first BACnet device, one per device (default {BACNET_BASE_PORT})",
    )  # fmt: skip


def _start_date(text: str) -> datetime:
    try:
        d = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--start: {text!r} is not an ISO date") from None
    return d if d.tzinfo is not None else d.replace(tzinfo=UTC)


def build_twin(args: argparse.Namespace) -> Twin:
    """The twin the options describe, faults injected (raises ConfigError on bad input).

    With BACnet on, the twin runs on the site as served (CRAHs and CDU over BACnet);
    :func:`modbus_site` is the Modbus map it serves as well."""
    site = modbus_site(args)
    bacnet = [e for e in BACNET_EQUIPMENT if e in {eq.id for eq in site.equipment}]
    if not getattr(args, "no_bacnet", True) and bacnet:
        site = to_bacnet(site, bacnet, base_port=args.bacnet_port)
    twin = Twin(
        site,
        seed=args.seed,
        control=args.control,
        weather=args.weather,
        start=args.start,
        plant=getattr(args, "plant", None),
    )
    faults = [parse_fault_spec(s) for s in args.fault]
    if args.scenario is not None:
        faults += load_scenario(args.scenario).faults
    for f in faults:
        twin.inject(f)
    return twin


def modbus_site(args: argparse.Namespace) -> Site:
    """The site file the options name, every device on Modbus (``--port`` applied)."""
    site: Site = load_site(args.site) if args.site else default_site()
    if args.port is not None:
        site = with_port(site, args.port)
    return site


@dataclass
class Served:
    """The twin and what serves it: Modbus always, BACnet for the site's BACnet points."""

    twin: Twin
    server: SiteServer
    bacnet: BacnetSiteServer | None
    runner: TwinRunner

    async def start(self) -> None:
        await self.server.start()
        if self.bacnet is not None:
            await self.bacnet.start()

    async def stop(self) -> None:
        if self.bacnet is not None:
            await self.bacnet.stop()
        await self.server.stop()

    def describe(self) -> str:
        site = self.twin.site
        modbus = ",".join(str(p) for p in self.server.ports)
        text = f"{len(site.point_ids)} points; Modbus TCP 127.0.0.1:{modbus}"
        if self.bacnet is not None and self.bacnet.ports:
            ps = self.bacnet.ports
            text += f"; BACnet/IP 127.0.0.1:{ps[0]}–{ps[-1]} ({len(ps)} devices)"
        return text


def serve_parts(args: argparse.Namespace, twin: Twin, speed: float) -> Served:
    """Servers and runner for ``twin`` (ports checked free; not started)."""
    from twin.bacnet_server import BacnetSiteServer
    from twin.server import SiteServer

    modbus = modbus_site(args)
    check_ports_free(modbus)
    check_ports_free(twin.site)
    server = SiteServer(modbus)
    bacnet = BacnetSiteServer(twin.site) if twin.site.bacnet_devices() else None
    runner = TwinRunner(twin, server, speed=speed, bacnet=bacnet)
    runner.push()
    return Served(twin, server, bacnet, runner)


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
    for key in site.bacnet_devices():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((key.host, key.port))
            except OSError as err:
                raise FacilityError(
                    f"cannot serve BACnet device {key.device_id} on {key.host}:{key.port} (UDP): "
                    f"{err.strerror} (another twin? pick ports with --bacnet-port, or --no-bacnet)"
                ) from None


def install_stop(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def _serve(
    args: argparse.Namespace, twin: Twin, speed: float, duration: float | None
) -> None:
    served = serve_parts(args, twin, speed)
    runner = served.runner
    await served.start()
    stop = asyncio.Event()
    install_stop(stop)
    wx = f"{twin.weather.station} weather" if twin.weather is not None else "synthetic weather"
    print(
        f"twin: {served.describe()}, speed {speed:g}x, {twin.control.mode} BMS, {wx} from "
        f"{twin.now:%Y-%m-%d %H:%M} — Ctrl-C to stop\n"
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
        await served.stop()


def run(args: argparse.Namespace) -> int:
    twin = build_twin(args)
    if args.write_site is not None:
        args.write_site.write_text(
            "# The twin's site as served by `facility-agent twin` (generated; edit the twin's\n"
            "# own site file instead). CRAHs and CDU over BACnet/IP, the rest over Modbus TCP.\n"
            + yaml.safe_dump(twin.site.model_dump(mode="json"), sort_keys=False)
        )
        print(f"twin: site written to {args.write_site}", flush=True)
    asyncio.run(_serve(args, twin, args.speed, args.duration))
    return 0
