"""A plant with BACnet devices on loopback: the twin, its Modbus server, its BACnet devices.

Ports are taken free from the OS (several runs on one host must not collide). The twin
runs on the BACnet view of its site (``twin.bacnet_map.to_bacnet``); its Modbus server
keeps the original map, as ``facility-agent twin --bacnet`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from connectors.site import Site, with_port
from twin.bacnet_map import BACNET_EQUIPMENT, to_bacnet
from twin.bacnet_server import BacnetSiteServer
from twin.server import SiteServer
from twin.sim import Twin, TwinRunner, default_site


def free_udp_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_udp_run(n: int, host: str = "127.0.0.1") -> int:
    """The first of ``n`` consecutive free UDP ports (the twin's ``--bacnet-port`` takes
    one port per device from there): another engineer's twin may hold 47810–47814."""
    import random

    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000 - n)
        socks: list[socket.socket] = []
        try:
            for p in range(base, base + n):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((host, p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} consecutive free UDP ports on {host}")


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Plant:
    site: Site  # the agent's view: the chosen equipment over BACnet
    twin: Twin
    modbus: SiteServer
    bacnet: BacnetSiteServer
    runner: TwinRunner


@contextlib.asynccontextmanager
async def bacnet_plant(
    equipment: Sequence[str] = BACNET_EQUIPMENT, poll_s: float = 1.0
) -> AsyncIterator[Plant]:
    base = default_site()
    site = to_bacnet(base, equipment, ports=free_udp_ports(len(equipment)))
    data = site.model_dump(mode="json")
    for eq in data["equipment"]:
        for p in eq["points"]:
            p["poll_interval_s"] = poll_s
    from connectors.site import parse_site

    port = free_tcp_port()
    site = with_port(parse_site(data, origin="bacnet-plant"), port)
    twin = Twin(site, seed=3)
    modbus = SiteServer(with_port(base, port))
    bacnet = BacnetSiteServer(site)
    runner = TwinRunner(twin, modbus, bacnet=bacnet)
    runner.push()
    await modbus.start()
    await bacnet.start()
    try:
        yield Plant(site, twin, modbus, bacnet, runner)
    finally:
        await bacnet.stop()
        await modbus.stop()


async def until(pred: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """Wait on observable state (never a bare sleep); fail naming ``what``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if pred():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
