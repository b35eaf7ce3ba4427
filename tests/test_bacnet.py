"""BACnet/IP end to end on loopback: the twin's BACnet devices, our connector, BAC0.

Real parts only: the twin serves its CRAHs and CDU (and, here, a chiller for a binary
output) as bacpypes3 devices on their own UDP ports; the connector polls them into a real
DuckDB store and writes through the guarded actuator; BAC0 is the independent client.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from bacnet_harness import bacnet_plant, until

from connectors.bacnet.poller import BacnetPoller
from connectors.clock import ManualClock
from connectors.errors import SiteConfigError, WriteRejected
from connectors.ingest import Ingestor
from connectors.modbus import PollerConfig
from connectors.site import BacnetSource, load_site, parse_site
from connectors.site_writer import SiteWriter
from connectors.status import Status
from connectors.store import Store
from tools import gate
from tools.actuation import Actuator, Journal
from tools.gate import AuthorizedChange, GateControl
from twin import default_site_path

SAT = "crah_1.supply_air_temp"
SAT_SP = "crah_1.supply_air_setpoint"  # native 18 °C, write limits 14–24, max_step 1
CDU_SP = "cdu_1.coolant_supply_setpoint"  # native 27 °C, write limits 20–40, max_step 2
NOW = datetime(2026, 1, 1)


def _auth(tag: str, value: float, decision: str, now: datetime) -> gate.Authorization:
    ctl = GateControl(site_ceiling=3)
    v = gate.evaluate(decision, control=ctl, policy_ceiling=3, quality=3, whatif=3, writes=True)
    return gate.authorize(v, [AuthorizedChange(tag, value)], control=ctl, now=now)


class Switch:
    def __init__(self) -> None:
        self.c = GateControl(site_ceiling=3)

    def __call__(self) -> GateControl:
        return self.c


# ---- the site file ------------------------------------------------------------------------


def test_device_defaults_are_written_once_and_points_refer_to_them() -> None:
    data = {
        "name": "mixed",
        "device_defaults": {
            "meter": {"host": "10.0.0.5", "port": 1502, "device_id": 7, "layout": "CDAB"},
            "ahu": {
                "protocol": "bacnet",
                "address": "10.0.0.9:47808",
                "device": 901,
                "priority": 12,
            },
        },
        "equipment": [
            {
                "id": "m",
                "kind": "meter",
                "device_ref": "meter",
                "points": [
                    {
                        "name": "p",
                        "unit": "kW",
                        "source": {"table": "input", "address": 0, "data_type": "float32"},
                    },
                    {
                        "name": "q",
                        "unit": "kW",  # its own order beats the device's
                        "source": {
                            "table": "input",
                            "address": 2,
                            "data_type": "float32",
                            "layout": "ABCD",
                        },
                    },
                ],
            },
            {
                "id": "a",
                "kind": "ahu",
                "points": [
                    {
                        "name": "sat",
                        "unit": "degC",
                        "source": {"device_ref": "ahu", "object": "analog-input,3"},
                    },
                    {
                        "name": "sp",
                        "unit": "degC",
                        "write": {"min": 12, "max": 20},
                        "source": {"device_ref": "ahu", "object": "analog-value,1"},
                    },
                ],
            },
        ],
    }
    site = parse_site(data, "mixed.yaml")
    p, q = site.point("m.p").modbus, site.point("m.q").modbus
    assert (p.host, p.port, p.device_id, p.byte_order.value, p.word_order.value) == (
        "10.0.0.5", 1502, 7, "big", "little",
    )  # fmt: skip
    assert (q.word_order.value, q.port) == ("big", 1502)
    sp = site.point("a.sp").source
    assert isinstance(sp, BacnetSource)
    assert (sp.host, sp.port, sp.device, sp.instance, sp.priority, sp.commandable) == (
        "10.0.0.9", 47808, 901, 1, 12, True,
    )  # fmt: skip
    assert list(site.devices()) == [("10.0.0.5", 1502, 7)]
    assert list(site.bacnet_devices()) == [("10.0.0.9", 47808, 901)]
    # a dump re-parses to the same site (the CLI's --port rewrites go through it)
    assert parse_site(site.model_dump(mode="json")) == site
    # errors name the file and the field
    bad = {**data, "equipment": [{**data["equipment"][0], "device_ref": "nope"}]}
    with pytest.raises(SiteConfigError, match=r"mixed.yaml: equipment\[0\].device_ref: unknown"):
        parse_site(bad, "mixed.yaml")
    eq = data["equipment"][1]
    ro = {**eq, "points": [{**eq["points"][0], "write": {"min": 1, "max": 2}}]}  # type: ignore[dict-item]
    with pytest.raises(SiteConfigError, match=r"points\[0\]: .*analog-input is read-only"):
        parse_site({**data, "equipment": [ro]}, "mixed.yaml")
    typo = {
        **eq,
        "points": [{**eq["points"][0], "source": {"device_ref": "ahu", "object": "ai,3"}}],
    }  # type: ignore[dict-item]
    with pytest.raises(SiteConfigError, match=r"points\[0\].source.object: object must be"):
        parse_site({**data, "equipment": [typo]}, "mixed.yaml")
    # the twin's own (Modbus-only, per-point full sources) file is still valid
    assert len(load_site(default_site_path()).point_ids) > 100


# ---- reads ------------------------------------------------------------------------------


def test_every_object_type_round_trips_with_the_value_the_twin_serves() -> None:
    async def main() -> None:
        async with bacnet_plant(("crah_1", "chiller_1", "cdu_1")) as plant:
            site = plant.site
            kinds = {p.source.object_type for _, p in site.iter_points() if p.is_bacnet}  # type: ignore[union-attr]
            assert kinds == {"analog-input", "binary-input", "analog-value", "binary-output"}
            from connectors.bacnet.client import make_application

            app = make_application("127.0.0.1/8:0")
            got: dict[int, tuple[float, int]] = {}

            def sink(ts: np.ndarray, ids: np.ndarray, v: np.ndarray, st: np.ndarray) -> None:
                for i, x, s in zip(ids.tolist(), v.tolist(), st.tolist(), strict=True):
                    got[i] = (x, s)

            ids = site.point_ids
            try:
                for key, pts in site.bacnet_devices().items():
                    poller = BacnetPoller(key, pts, ids, sink)
                    poller.attach(app)
                    await poller.poll_once()
                    assert poller.use_rpm  # the twin's devices take ReadPropertyMultiple
            finally:
                app.close()
            for tag in plant.bacnet.tags():
                value, status = got[ids[tag]]
                assert status == Status.OK, (tag, status)
                assert value == plant.bacnet.get(tag), tag
            # writes round-trip too: an analog value and a binary output, at priority 13
            writer = SiteWriter(site)
            try:
                r = await writer.write(SAT_SP, 19.5)
                assert (r.written, r.read_back) == (19.5, 19.5)
                assert plant.bacnet.slots(SAT_SP)[13] == 19.5
                assert plant.twin.values()[SAT_SP] == 19.5  # the plant runs the agent's value
                r = await writer.write("chiller_1.enable", 0.0)
                assert r.read_back == 0.0 and plant.twin.values()["chiller_1.enable"] == 0.0
                back = await writer.relinquish("chiller_1.enable")
                assert back.read_back == 1.0 and 13 not in plant.bacnet.slots("chiller_1.enable")
            finally:
                await writer.close()

    asyncio.run(main())


def test_units_the_device_reports_are_checked_against_the_site_file() -> None:
    async def main() -> None:
        async with bacnet_plant(("crah_1",)) as plant:
            data = plant.site.model_dump(mode="json")
            pts = data["equipment"][[e["id"] for e in data["equipment"]].index("crah_1")]["points"]
            wrong = next(p for p in pts if p["name"] == "supply_air_temp")
            wrong["source"]["units"] = "degrees-fahrenheit"  # the file says °F, the device °C
            site = parse_site(data)
            from connectors.bacnet.client import make_application

            rows: list[tuple[int, int]] = []
            app = make_application("127.0.0.1/8:0")
            try:
                [(key, points)] = site.bacnet_devices().items()
                poller = BacnetPoller(key, points, site.point_ids, lambda t, i, v, s: rows.extend(
                    zip(i.tolist(), s.tolist(), strict=True)))  # fmt: skip
                poller.attach(app)
                await poller.poll_once()
            finally:
                app.close()
            status = dict(rows)
            assert status[site.point_ids[SAT]] == Status.UNIT_MISMATCH
            assert poller.mismatched == {SAT: "degrees-celsius"}
            others = [s for i, s in status.items() if i != site.point_ids[SAT]]
            assert others and all(s == Status.OK for s in others)

    asyncio.run(main())


# ---- BAC0, an independent client ------------------------------------------------------------


def test_bac0_reads_what_the_store_holds_and_its_priority_8_is_an_operator_override(
    tmp_path: Path,
) -> None:
    import BAC0
    from bacnet_harness import free_udp_ports

    async def main() -> None:
        async with bacnet_plant(("crah_1",)) as plant:
            site = plant.site
            store = Store(tmp_path / "b.duckdb")
            ingest = Ingestor(
                site, store, config=PollerConfig(timeout_s=10.0), flush_interval_s=0.2
            )
            stop = asyncio.Event()
            task = asyncio.create_task(ingest.run(stop=stop))
            await until(
                lambda: all(p.stats.good >= 2 * p.n_points for p in ingest.bacnet_pollers),
                "two good polls of the BACnet device",
            )
            stop.set()
            await task
            stored = store.query(
                "SELECT value FROM readings WHERE point_id = ? AND status = 0 "
                "ORDER BY ts DESC LIMIT 1",
                [site.point_ids[SAT]],
            )["value"].iloc[0]
            addr = site.point(SAT).source.address  # type: ignore[union-attr]
            BAC0.log_level("silence")
            bac = BAC0.lite(ip="127.0.0.1", port=free_udp_ports(1)[0], mask=8, ping=False)
            try:
                seen = await bac.read(f"{addr} analogInput 0 presentValue")
                assert seen == pytest.approx(stored, abs=1e-6)
                assert seen == plant.bacnet.get(SAT)

                clock = ManualClock(NOW)
                writer = SiteWriter(site)
                act = Actuator(site, writer, Journal(store), clock)
                await act.execute(_auth(SAT_SP, 19.0, "d1", NOW))
                assert plant.bacnet.slots(SAT_SP) == {13: 19.0, 16: 18.0}
                # the operator takes the point at the BMS (priority 8)
                await bac._write(f"{addr} analogValue 0 presentValue 16.5 - 8")
                assert plant.twin.values()[SAT_SP] == 16.5
                assert await writer.overridden_by(SAT_SP) == (8, 16.5)
                clock.set(NOW + timedelta(minutes=5))
                with pytest.raises(WriteRejected, match=r"priority 8.*does not fight"):
                    await act.execute(_auth(SAT_SP, 20.0, "d2", clock.now()))
                assert plant.bacnet.slots(SAT_SP) == {8: 16.5, 13: 19.0, 16: 18.0}
                # the operator lets go: the agent's command (13) is what runs again
                await bac._write(f"{addr} analogValue 0 presentValue null - 8")
                assert await writer.read(SAT_SP) == 19.0
                assert plant.twin.values()[SAT_SP] == 19.0
                # the agent lets go: native control (16)
                await writer.relinquish(SAT_SP)
                assert await writer.read(SAT_SP) == 18.0
                assert plant.twin.values()[SAT_SP] == 18.0
                await writer.close()
            finally:
                await bac._disconnect()

    asyncio.run(main())


# ---- a dead device --------------------------------------------------------------------------


def test_a_dead_bacnet_device_is_a_status_the_others_keep_their_rate_and_it_recovers(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with bacnet_plant(poll_s=0.5) as plant:
            site = plant.site
            store = Store(tmp_path / "d.duckdb")
            cfg = PollerConfig(timeout_s=3.0, backoff_initial_s=0.2, backoff_max_s=1.0)
            ingest = Ingestor(site, store, config=cfg, flush_interval_s=0.2)
            stop = asyncio.Event()
            task = asyncio.create_task(ingest.run(stop=stop))
            pollers = {p.key.device_id: p for p in ingest.bacnet_pollers}
            dead_key = plant.bacnet.device_of("crah_2.supply_air_temp")
            dead = pollers[dead_key.device_id]
            alive = [p for k, p in pollers.items() if k != dead_key.device_id]
            try:
                await until(lambda: all(p.stats.good >= 20 for p in pollers.values()), "polls")
                before = [p.stats.good for p in alive]
                await plant.bacnet.stop_device(dead_key)
                await until(lambda: not dead.stats.up, "the dead device marked down", 60)
                t_down = [p.stats.good for p in alive]
                down_readings = dead.stats.readings
                await until(lambda: dead.stats.readings >= down_readings + 3 * dead.n_points,
                            "failure rows for the dead device", 60)  # fmt: skip
                # while it is down the others keep polling at their rate: each poller did at
                # least as many good reads as in the window before the kill, scaled by time
                gained = [p.stats.good - t for p, t in zip(alive, t_down, strict=True)]
                assert all(g >= p.n_points for g, p in zip(gained, alive, strict=True)), gained
                assert all(b > 0 for b in before)
                assert dead.stats.statuses.get(Status.TIMEOUT, 0) > 0
                await plant.bacnet.start_device(dead_key)
                good_then = dead.stats.good
                await until(lambda: dead.stats.up and dead.stats.good > good_then + 5,
                            "the device back", 60)  # fmt: skip
            finally:
                stop.set()
                await task
            rows = store.query(
                "SELECT status, count(*) AS n FROM readings WHERE point_id IN ("
                + ",".join(str(site.point_ids[t]) for t, _ in site.bacnet_devices()[dead_key])
                + ") GROUP BY status"
            )
            codes = set(rows["status"].tolist())
            assert Status.OK in codes and (codes & {Status.TIMEOUT, Status.NOT_CONNECTED})
            assert (
                store.query(
                    "SELECT count(*) AS n FROM readings WHERE status <> 0 AND value IS NOT NULL"
                )["n"].iloc[0]
                == 0
            )  # a failure row never carries a value

    asyncio.run(main())


# ---- e-stop -------------------------------------------------------------------------------


def test_estop_relinquishes_every_agent_written_bacnet_point(tmp_path: Path) -> None:
    async def main() -> None:
        async with bacnet_plant(("crah_1", "cdu_1")) as plant:
            site = plant.site
            store = Store(tmp_path / "e.duckdb")
            store.register_site(site)
            clock = ManualClock(NOW)
            ctl = Switch()
            writer = SiteWriter(site)
            act = Actuator(site, writer, Journal(store), clock, ctl)
            try:
                await act.execute(_auth(SAT_SP, 19.0, "d1", NOW))
                await act.execute(_auth(CDU_SP, 25.0, "d2", NOW))
                clock.set(NOW + timedelta(minutes=2))
                await act.execute(_auth(SAT_SP, 20.0, "d3", clock.now()))
                assert plant.bacnet.slots(SAT_SP)[13] == 20.0
                assert plant.bacnet.slots(CDU_SP)[13] == 25.0
                ctl.c = replace(ctl.c, estop=True)
                restores = await act.hand_back()
                assert sorted(r.tag for r in restores) == sorted([SAT_SP, CDU_SP])
                assert all(r.ok for r in restores), restores
                for tag, native in ((SAT_SP, 18.0), (CDU_SP, 27.0)):
                    assert 13 not in plant.bacnet.slots(tag), tag  # relinquished, not rewritten
                    assert plant.bacnet.slots(tag) == {16: native}
                    assert await writer.read(tag) == native
                    assert plant.twin.values()[tag] == native
                assert act.journal.takeovers() == []
                assert not math.isnan(restores[0].read_back or math.nan)
            finally:
                await writer.close()

    asyncio.run(main())


# ---- ReadPropertyMultiple: fallback and segmentation ------------------------------------------


def _collect() -> tuple[dict[int, tuple[float, int]], object]:
    got: dict[int, tuple[float, int]] = {}

    def sink(ts: np.ndarray, ids: np.ndarray, v: np.ndarray, st: np.ndarray) -> None:
        for i, x, s in zip(ids.tolist(), v.tolist(), st.tolist(), strict=True):
            got[i] = (x, s)

    return got, sink


def test_a_device_that_rejects_read_property_multiple_is_read_point_by_point() -> None:
    from bacnet_harness import free_udp_ports

    from connectors.bacnet.client import make_application
    from twin.bacnet_map import synthetic_bacnet_site, synthetic_bacnet_value
    from twin.bacnet_server import BacnetSiteServer

    async def main() -> None:
        site = synthetic_bacnet_site(40, 2, ports=free_udp_ports(2))
        server = BacnetSiteServer(site, no_rpm={2})
        values = {t: synthetic_bacnet_value(i) for i, t in enumerate(site.point_ids)}
        server.set_many(values)
        got, sink = _collect()
        app = make_application("127.0.0.1/8:0")
        async with server:
            try:
                pollers = [
                    BacnetPoller(k, pts, site.point_ids, sink)  # type: ignore[arg-type]
                    for k, pts in site.bacnet_devices().items()
                ]
                for p in pollers:
                    p.attach(app)
                    await p.poll_once()
                    await p.poll_once()  # the second poll goes straight to ReadProperty
            finally:
                app.close()
        assert [p.use_rpm for p in pollers] == [True, False]
        assert pollers[1].stats.requests >= 2 * 20  # one request per point
        assert pollers[0].stats.requests <= 2 + 20  # units check, then one RPM per poll
        for tag, v in values.items():
            assert got[site.point_ids[tag]] == (v, Status.OK), tag

    asyncio.run(main())


def test_an_answer_larger_than_one_packet_comes_segmented() -> None:
    from bacnet_harness import free_udp_ports

    from connectors.bacnet.client import make_application
    from twin.bacnet_map import synthetic_bacnet_site, synthetic_bacnet_value
    from twin.bacnet_server import BacnetSiteServer

    async def main() -> None:
        site = synthetic_bacnet_site(400, 1, ports=free_udp_ports(1))
        server = BacnetSiteServer(site)
        values = {t: synthetic_bacnet_value(i) for i, t in enumerate(site.point_ids)}
        server.set_many(values)
        got, sink = _collect()
        app = make_application("127.0.0.1/8:0")
        async with server:
            try:
                [(key, pts)] = site.bacnet_devices().items()
                # 400 present-values in one request: an answer of ≈ 4.8 kB > 1476-byte APDU
                poller = BacnetPoller(
                    key,
                    pts,
                    site.point_ids,
                    sink,
                    max_properties=400,
                    config=PollerConfig(timeout_s=60.0),
                )  # type: ignore[arg-type]
                poller.attach(app)
                poller._units_checked = True  # only the one big read
                await poller.poll_once()
            finally:
                app.close()
        assert poller.use_rpm and poller.stats.requests == 1
        assert all(got[site.point_ids[t]] == (v, Status.OK) for t, v in values.items())

    asyncio.run(main())


# ---- discovery ------------------------------------------------------------------------------


def test_discovery_drafts_a_site_section_that_loads_after_the_integrators_edits() -> None:
    import yaml

    from connectors.bacnet.discover import discover, draft_section

    async def main() -> None:
        async with bacnet_plant(("crah_1",)) as plant:
            addr = plant.site.point(SAT).source.address  # type: ignore[union-attr]
            found = await discover(addr, timeout_s=5.0)
            draft = draft_section(found)
            served = {p.source.object: p for _, p in plant.site.iter_points() if p.is_bacnet}  # type: ignore[union-attr]
            assert found.instance == 1001 and found.name == "crah_1"
            assert {o.object for o in found.objects} == set(served)
            assert "analog-value,0" in draft and "degC" in draft
            # the integrator fills in the write limits it cannot know; then the file loads
            site = parse_site(
                {
                    "name": "found",
                    **yaml.safe_load(draft.replace("TODO", "0").replace("max: 0", "max: 100")),
                },
                "draft.yaml",
            )
            [eq] = site.equipment
            by_obj = {p.source.object: p for p in eq.points}  # type: ignore[union-attr]
            for obj, want in served.items():
                got = by_obj[obj]
                assert (got.name, got.unit, got.writable) == (want.name, want.unit, want.writable)
                assert got.source.device == 1001 and got.source.address == addr  # type: ignore[union-attr]

    asyncio.run(main())


def test_a_lapsed_heartbeat_lets_the_agents_bacnet_command_go() -> None:
    async def main() -> None:
        async with bacnet_plant(("crah_1",)) as plant:
            writer = SiteWriter(plant.site)
            try:
                r = await writer.write(SAT_SP, 20.0)
                assert r.verified and plant.bacnet.slots(SAT_SP) == {13: 20.0, 16: 18.0}
                plant.twin.step(plant.twin.agent.timeout_s + 30.0)  # no heartbeat: revert
                plant.runner.push()
                assert plant.twin.values()[SAT_SP] == 18.0
                assert plant.bacnet.slots(SAT_SP) == {16: 18.0}  # slot 13 let go
                assert await writer.read(SAT_SP) == 18.0  # the agent sees what really runs
            finally:
                await writer.close()

    asyncio.run(main())


def test_units_and_values_convert_the_way_the_site_file_means_them() -> None:
    from bacpypes3.basetypes import PriorityValue

    from connectors.bacnet.client import priority_slots, to_float
    from connectors.bacnet.units import canonical, expected_units, site_unit_for

    assert canonical("degreesCelsius") == canonical("DEGREES_CELSIUS") == "degrees-celsius"
    assert expected_units("degC", None) == "degrees-celsius"
    assert expected_units("degC", "degreesFahrenheit") == "degrees-fahrenheit"  # the file wins
    assert expected_units("bool", None) is None  # nothing to check
    assert site_unit_for("liters-per-second") == "L/s" and site_unit_for("furlongs") == "furlongs"
    assert (to_float("active"), to_float("inactive"), to_float(19.5)) == (1.0, 0.0, 19.5)
    with pytest.raises(ValueError):
        to_float("warm")
    slots = [PriorityValue(null=()) for _ in range(16)]
    slots[7], slots[15] = PriorityValue(real=16.5), PriorityValue(real=18.0)
    assert priority_slots(slots) == {8: 16.5, 16: 18.0}


def test_on_a_mixed_site_a_modbus_restore_still_writes_the_value_from_before_the_agent(
    tmp_path: Path,
) -> None:
    """The site's writer relinquishes BACnet points only; a Modbus point's e-stop restore
    writes its journaled previous value, as before BACnet."""
    GPU_CAP = "gpu.power_cap"  # Modbus holding register, native 100 %, write limits 50–100

    async def main() -> None:
        async with bacnet_plant(("crah_1",)) as plant:
            site = plant.site
            store = Store(tmp_path / "m.duckdb")
            clock = ManualClock(NOW)
            ctl = Switch()
            writer = SiteWriter(site)
            act = Actuator(site, writer, Journal(store), clock, ctl)
            try:
                await act.execute(_auth(GPU_CAP, 90.0, "d1", NOW))
                await act.execute(_auth(SAT_SP, 19.0, "d2", NOW))
                assert plant.twin.values()[GPU_CAP] == 90.0
                ctl.c = replace(ctl.c, estop=True)
                restores = {r.tag: r for r in await act.hand_back()}
                assert all(r.ok for r in restores.values()), restores
                assert restores[GPU_CAP].restored == 100.0 and plant.twin.values()[GPU_CAP] == 100.0
                assert plant.bacnet.slots(SAT_SP) == {16: 18.0}
            finally:
                await writer.close()

    asyncio.run(main())
