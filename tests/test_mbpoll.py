"""An independent Modbus client agrees: Debian's ``mbpoll`` reads what the store holds.

The twin's own site is served by SiteServer (moved to a free port), polled by our
connector into DuckDB, and read again by ``mbpoll``. Skips only when ``mbpoll``
is not installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.codec import decode
from connectors.ingest import Ingestor
from connectors.modbus import PollerConfig
from connectors.site import DataType, Order, Point, Site, parse_site
from connectors.store import Store
from twin import default_site_path
from twin.server import SiteServer

MBPOLL = shutil.which("mbpoll")
pytestmark = pytest.mark.skipif(
    MBPOLL is None, reason="mbpoll is not installed (apt-get install mbpoll)"
)


def _twin_site_on(port: int) -> Site:
    data: dict[str, Any] = yaml.safe_load(default_site_path().read_text())
    for eq in data["equipment"]:
        for p in eq["points"]:
            p["source"]["port"] = port
    return parse_site(data, origin="site.yaml")


def _pick(site: Site, table: str, data_type: DataType, word_order: Order) -> tuple[str, Point]:
    for tag, (_, p) in site.points_by_tag.items():
        s = p.source
        if (s.table.value, s.data_type, s.byte_order, s.word_order) == (
            table, data_type, Order.BIG, word_order,
        ):  # fmt: skip
            return tag, p
    pytest.skip(f"the twin site has no {table} {data_type.value} point")


def _mbpoll(port: int, p: Point, *args: str) -> list[float]:
    """mbpoll one-shot read; returns the values it prints (0-based addresses)."""
    table = {"holding": "4", "input": "3"}[p.source.table.value]
    kind = args[0] if args else ""
    cmd = [
        str(MBPOLL), "-m", "tcp", "-p", str(port), "-a", str(p.source.device_id), "-1", "-0",
        "-t", table + kind, *args[1:], "127.0.0.1",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stdout + out.stderr
    return [float(v) for v in re.findall(r"^\[\d+\]:\s+(-?[\d.e+-]+)", out.stdout, re.M)]


def test_mbpoll_reads_what_the_store_holds(port: int, tmp_path: Path) -> None:
    site = _twin_site_on(port)
    f_tag, f_pt = _pick(site, "input", DataType.FLOAT32, Order.BIG)  # ABCD
    c_tag, c_pt = _pick(site, "input", DataType.FLOAT32, Order.LITTLE)  # CDAB
    i_tag, i_pt = _pick(site, "holding", DataType.INT16, Order.BIG)
    server = SiteServer(site)
    values = {f_tag: 18.375, c_tag: -3.5, i_tag: 12.0}
    server.set_many(values)

    async def ingest() -> None:
        async with server:
            ingestor = Ingestor(
                site, store, config=PollerConfig(timeout_s=1.0), flush_interval_s=0.05
            )
            stop = asyncio.Event()
            task = asyncio.create_task(ingestor.run(None, stop))
            for _ in range(200):  # until the three points are stored (at most ~10 s)
                await asyncio.sleep(0.05)
                if set(values) <= set(store.latest_values(list(values))):
                    break
            stop.set()
            await task

    with Store(tmp_path / "f.duckdb") as store:
        asyncio.run(ingest())
        stored = store.latest_values(list(values))
    assert set(stored) == set(values)

    async def independent_reads() -> dict[str, Any]:
        async with server:
            loop = asyncio.get_running_loop()

            def run(*a: Any) -> list[float]:
                return _mbpoll(port, *a)

            return {
                "f_float": await loop.run_in_executor(None, run, f_pt, ":float", "-B", "-r", str(f_pt.source.address)),
                "f_raw": await loop.run_in_executor(None, run, f_pt, "", "-r", str(f_pt.source.address), "-c", "2"),
                "c_raw": await loop.run_in_executor(None, run, c_pt, "", "-r", str(c_pt.source.address), "-c", "2"),
                "i_raw": await loop.run_in_executor(None, run, i_pt, "", "-r", str(i_pt.source.address)),
            }  # fmt: skip

    got = asyncio.run(independent_reads())
    # mbpoll's own float32 decoding (big-endian words) agrees with the store …
    assert got["f_float"] == [pytest.approx(stored[f_tag], rel=1e-5)]
    # … and the raw registers it reads decode (with our codec) to exactly the stored value
    assert decode([int(x) & 0xFFFF for x in got["f_raw"]], f_pt.source) == stored[f_tag]
    assert decode([int(x) & 0xFFFF for x in got["c_raw"]], c_pt.source) == stored[c_tag]
    assert decode([int(x) & 0xFFFF for x in got["i_raw"]], i_pt.source) == stored[i_tag]
    assert stored[f_tag] == 18.375 and stored[c_tag] == -3.5
