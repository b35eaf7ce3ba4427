"""SiteServer serves a site's register images over real Modbus TCP on loopback."""

from __future__ import annotations

import asyncio
from typing import Any

from pymodbus.client import AsyncModbusTcpClient

from connectors.site import Site, parse_site
from twin.server import SiteServer, fill_synthetic, synthetic_site


def _site(port: int) -> Site:
    def pt(name: str, table: str, address: int, data_type: str, **kw: Any) -> dict[str, Any]:
        src = {
            "port": port,
            "device_id": 3,
            "table": table,
            "address": address,
            "data_type": data_type,
        }
        return {"name": name, "unit": "1", "source": {**src, **kw}}

    return parse_site(
        {
            "name": "t",
            "equipment": [
                {
                    "id": "eq",
                    "kind": "other",
                    "points": [
                        pt("temp", "input", 10, "float32"),
                        pt("setp", "holding", 0, "float32", layout="CDAB"),
                        pt("run", "coil", 5, "bool"),
                        pt("alarm", "discrete", 17, "bool"),
                    ],
                }
            ],
        }
    )


def test_serves_sets_and_reports_writes(port: int) -> None:
    async def main() -> None:
        server = SiteServer(_site(port))
        server.set("eq.temp", 123.456)
        server.set("eq.alarm", 1)
        writes: list[tuple[str, float]] = []
        server.on_write(lambda t, v: writes.append((t, v)))
        async with server:
            client = AsyncModbusTcpClient("127.0.0.1", port=port)
            assert await client.connect()
            try:
                rr = await client.read_input_registers(10, count=2, device_id=3)
                assert rr.registers == [17142, 59769]
                rb = await client.read_discrete_inputs(17, count=1, device_id=3)
                assert rb.bits[0] is True
                await client.write_registers(0, [0x0000, 0x4120], device_id=3)  # 10.0 CDAB
                await client.write_coil(5, True, device_id=3)
                assert server.get("eq.setp") == 10.0
                assert server.get("eq.run") == 1.0
                assert writes == [("eq.setp", 10.0), ("eq.run", 1.0)]
                bad = await client.read_input_registers(12, count=1, device_id=3)
                assert bad.isError() and bad.exception_code == 2
            finally:
                client.close()

    asyncio.run(main())


def test_synthetic_site_is_deterministic_and_served(port: int) -> None:
    site = synthetic_site(300, 3, port)
    assert len(site.point_ids) == 300 and len(site.devices()) == 3
    assert synthetic_site(300, 3, port) == site

    async def main() -> None:
        server = SiteServer(site)
        values = fill_synthetic(server)
        async with server:
            client = AsyncModbusTcpClient("127.0.0.1", port=port)
            assert await client.connect()
            try:
                tag = "dev02.p00002"  # float32 ABCD at address 2
                rr = await client.read_holding_registers(2, count=2, device_id=2)
                assert rr.registers == server.registers(tag)
                assert server.get(tag) == values[tag]
            finally:
                client.close()

    asyncio.run(main())
