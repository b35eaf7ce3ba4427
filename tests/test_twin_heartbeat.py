"""Agent virtual points: heartbeat lapse reverts agent setpoints, enable, operator overrides.

The Modbus tests go through the real SiteServer and a pymodbus client on loopback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from pymodbus.client import AsyncModbusTcpClient

from connectors.codec import decode, encode
from connectors.site import with_port
from twin.control import override_tag
from twin.faults import Fault, FaultKind
from twin.server import SiteServer
from twin.sim import Twin, TwinRunner, default_site

SP = "chiller_1.chw_supply_setpoint"


# ---------------------------------------------------------------- offline


def test_heartbeat_lapse_reverts_every_agent_setpoint() -> None:
    twin = Twin(seed=1, heartbeat_timeout_s=60)
    twin.write("agent.heartbeat", 1)
    twin.write(SP, 9.0)
    twin.write("ct_1.cw_supply_setpoint", 26.0)
    for k in range(2, 8):  # heartbeats every 30 s keep them
        twin.step(30)
        twin.write("agent.heartbeat", k)
    v = twin.values()
    assert (v[SP], v["ct_1.cw_supply_setpoint"], v["agent.heartbeat_ok"]) == (9.0, 26.0, 1.0)
    twin.write("agent.heartbeat", 7)  # same value again: not a heartbeat
    twin.step(70)
    v = twin.values()
    assert (v[SP], v["ct_1.cw_supply_setpoint"]) == (7.0, 29.0)  # native defaults
    assert v["agent.reverts"] == 1.0 and v["agent.heartbeat_ok"] == 0.0
    twin.step(600)
    assert twin.values()["chiller_1.chw_supply_temp"] == pytest.approx(7.0, abs=0.2)


def test_writes_without_any_heartbeat_revert_after_the_timeout() -> None:
    twin = Twin(seed=1, heartbeat_timeout_s=60)
    twin.write(SP, 10.0)
    twin.step(50)
    assert twin.values()[SP] == 10.0
    twin.step(20)
    assert twin.values()[SP] == 7.0


def test_operator_override_holds_and_ignores_agent_writes() -> None:
    twin = Twin(seed=1)
    twin.write("agent.heartbeat", 1)
    twin.write(override_tag(SP), 1)  # operator takes the point: held at 7
    twin.write(SP, 11.0)
    v = twin.values()
    assert (v[SP], v[override_tag(SP)], v["agent.ignored_writes"]) == (7.0, 1.0, 1.0)
    twin.operator_override("ct_1.cw_supply_setpoint", 27.0)
    twin.write("ct_1.cw_supply_setpoint", 30.0)
    assert twin.values()["ct_1.cw_supply_setpoint"] == 27.0
    twin.write(override_tag(SP), 0)  # released: agent writes take again
    twin.write(SP, 11.0)
    assert twin.values()[SP] == 11.0


def test_enable_off_reverts_and_ignores() -> None:
    twin = Twin(seed=1)
    twin.write("agent.heartbeat", 1)
    twin.write("gpu.power_cap", 70.0)
    twin.write("agent.enable", 0)
    assert twin.values()["gpu.power_cap"] == 100.0
    twin.write("gpu.power_cap", 70.0)
    v = twin.values()
    assert (v["gpu.power_cap"], v["agent.ignored_writes"], v["agent.enable"]) == (100.0, 1.0, 0.0)


def test_writes_are_clamped_to_write_limits_and_read_only_refused() -> None:
    twin = Twin(seed=1)
    twin.write(SP, 30.0)
    assert twin.values()[SP] == 14.0  # write max
    with pytest.raises(ValueError, match="read-only"):
        twin.write("chiller_1.power", 1.0)
    with pytest.raises(KeyError):
        twin.write("nope.nothing", 1.0)


# ---------------------------------------------------------------- over Modbus


async def _until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    """Await observable state (the server runs on this loop, so no blocking sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class _Client:
    def __init__(self, port: int) -> None:
        self.site = with_port(default_site(), port)
        self.c = AsyncModbusTcpClient("127.0.0.1", port=port)

    async def write(self, tag: str, value: float) -> None:
        src = self.site.point(tag).source
        if src.table.is_bit_table:
            rr = await self.c.write_coil(src.address, bool(value), device_id=src.device_id)
        else:
            rr = await self.c.write_registers(
                src.address, encode(value, src), device_id=src.device_id
            )
        assert not rr.isError(), rr

    async def read(self, tag: str) -> float:
        src = self.site.point(tag).source
        n = src.register_count
        fn = {
            "holding": self.c.read_holding_registers, "input": self.c.read_input_registers,
            "coil": self.c.read_coils, "discrete": self.c.read_discrete_inputs,
        }[src.table.value]  # fmt: skip
        rr = await fn(src.address, count=n, device_id=src.device_id)
        if rr.isError():
            raise RuntimeError(f"exception {rr.exception_code}")
        if src.table.is_bit_table:
            return float(rr.bits[0])
        return decode(rr.registers, src)


@asynccontextmanager
async def _served(
    twin: Twin, port: int, speed: float
) -> AsyncIterator[tuple[SiteServer, TwinRunner, _Client]]:
    """``twin`` served over Modbus on ``port``, running ``speed`` × real time (0.05 s ticks),
    with a connected client; all stopped on the way out."""
    server = SiteServer(twin.site)
    runner = TwinRunner(twin, server, speed=speed, tick_s=0.05)
    stop = asyncio.Event()
    async with server:
        task = asyncio.create_task(runner.run(None, stop))
        cl = _Client(port)
        assert await cl.c.connect()
        try:
            yield server, runner, cl
        finally:
            cl.c.close()
            stop.set()
            await task


def test_heartbeat_lapse_over_modbus_reverts_agent_setpoints(port: int) -> None:
    async def main() -> None:
        twin = Twin(with_port(default_site(), port), seed=1, heartbeat_timeout_s=30)
        # 2 simulated s per tick
        async with _served(twin, port, speed=40.0) as (server, _, cl):
            await cl.write("agent.heartbeat", 1)
            await cl.write(SP, 9.5)
            await cl.write("cdu_1.coolant_supply_setpoint", 32.0)
            assert await cl.read(SP) == 9.5
            # keep the heartbeat going for a while: the setpoints hold
            for k in range(2, 6):
                until = twin.elapsed_s + 15
                await _until(lambda: twin.elapsed_s >= until, 10, "15 simulated s")  # noqa: B023
                await cl.write("agent.heartbeat", k)
            assert twin.elapsed_s > 45  # longer than the timeout, yet held
            assert await cl.read(SP) == 9.5
            assert twin.values()["chiller_1.chw_supply_temp"] > 8.0  # the chiller follows
            # silence: the BMS reverts them to native defaults, visible over Modbus
            await _until(lambda: server.get(SP) == 7.0, 20, "revert to 7 °C")
            assert await cl.read(SP) == 7.0
            assert await cl.read("cdu_1.coolant_supply_setpoint") == 27.0
            assert await cl.read("agent.reverts") == 1.0
            assert await cl.read("agent.heartbeat_ok") == 0.0

    asyncio.run(main())


def test_operator_override_and_comm_loss_over_modbus(port: int) -> None:
    async def main() -> None:
        twin = Twin(with_port(default_site(), port), seed=1)
        async with _served(twin, port, speed=10.0) as (_, runner, cl):
            await cl.write("agent.heartbeat", 1)
            await cl.write(override_tag("ct_1.cw_supply_setpoint"), 1)  # operator's coil
            await cl.write("ct_1.cw_supply_setpoint", 25.0)  # agent write, ignored
            assert await cl.read("ct_1.cw_supply_setpoint") == 29.0
            assert await cl.read("agent.ignored_writes") == 1.0
            assert await cl.read(override_tag("ct_1.cw_supply_setpoint")) == 1.0
            twin.inject(Fault(kind=FaultKind.COMM_LOSS, target="ct_1"))
            await _until(lambda: runner.ticks > 2 and bool(twin.unavailable()), 5, "comm loss")
            with pytest.raises(RuntimeError, match="exception 11"):
                await cl.read("ct_1.fan_speed")
            assert await cl.read("chiller_1.running") == 1.0  # other devices answer

    asyncio.run(main())


def test_every_point_reads_over_modbus_as_values_says(port: int) -> None:
    """The twin's quantised values() are exactly what a Modbus client decodes, for every
    data type and byte/word order of the site."""

    async def main() -> None:
        twin = Twin(with_port(default_site(), port), seed=3)
        twin.step(600)
        server = SiteServer(twin.site)
        TwinRunner(twin, server).push()
        expected = twin.values()
        async with server:
            cl = _Client(port)
            assert await cl.c.connect()
            try:
                for tag in twin.site.points_by_tag:
                    assert await cl.read(tag) == expected[tag], tag
            finally:
                cl.c.close()
        layouts = {
            (p.source.data_type.value, p.source.byte_order.value, p.source.word_order.value)
            for _, p in twin.site.iter_points()
        }
        assert {
            ("float32", "big", "big"),
            ("float32", "big", "little"),
            ("int16", "big", "big"),
        } <= layouts

    asyncio.run(main())
