"""One writer protocol: the recording writer behaves like the plant's registers, alone or
composed with a plant (the eval's closed loop applies it to the twin)."""

from __future__ import annotations

import asyncio
import math

import pytest

from connectors.errors import WriteRejected
from connectors.writer import RecordingWriter
from twin.sim import Twin, default_site


def test_written_points_hold_what_the_register_can_carry() -> None:
    site = default_site()
    seen = {"crah_1.supply_air_setpoint": 18.0}
    w = RecordingWriter(site, values=lambda t: seen.get(t, math.nan))

    async def go() -> None:
        assert await w.read("crah_1.supply_air_setpoint") == 18.0  # the recording
        res = await w.write("crah_1.supply_air_setpoint", 19.04)  # int16 at 0.1 °C
        assert res.requested == 19.04 and res.written == pytest.approx(19.0)
        assert res.verified
        seen["crah_1.supply_air_setpoint"] = 18.0  # the replay moves on …
        assert await w.read("crah_1.supply_air_setpoint") == pytest.approx(19.0)  # … it holds
        with pytest.raises(WriteRejected, match="not a writable"):
            await w.write("crah_1.supply_air_temp", 20.0)
        with pytest.raises(WriteRejected, match="non-finite"):
            await w.write("crah_1.supply_air_setpoint", math.nan)
        with pytest.raises(WriteRejected):
            await w.write("nowhere.nothing", 1.0)

    asyncio.run(go())
    assert list(w.frame()["tag"]) == ["crah_1.supply_air_setpoint"]  # refused: not recorded


def test_composed_with_the_twin_the_write_reaches_the_plant_rounded() -> None:
    twin = Twin(seed=1)
    w = RecordingWriter(
        twin.site, values=lambda t: twin.values().get(t, math.nan), echo=False, apply=twin.write
    )
    res = asyncio.run(w.write("crah_1.supply_air_setpoint", 19.54))
    assert res.written == pytest.approx(19.5)
    assert twin.agent.setpoints()["crah_1.supply_air_setpoint"] == pytest.approx(19.5)
    assert res.read_back == pytest.approx(19.5) and res.verified  # read from the twin
