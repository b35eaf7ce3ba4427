"""The ``schedule:`` block of a site file, and policy kinds held back for their sweep."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
import yaml

from agent.schedule.jobs import plan
from connectors.errors import SiteConfigError
from connectors.schedule_config import ScheduleConfig
from connectors.site import Site, load_site, parse_site
from tools.policies import Observation, PolicyEngine, policies_from_dicts
from twin import default_site_path

T0 = datetime(2026, 3, 1, 12, 0)


@pytest.fixture(scope="module")
def twin_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(default_site_path().read_text())
    return data


def test_defaults_without_a_schedule_block(twin_data: dict[str, Any]) -> None:
    site = parse_site(twin_data)
    s = site.schedule
    assert (s.cycle.every_s, s.optimisation.every_s, s.fdd.every_s) == (10, 900, 3600)
    assert (s.report.at, s.retention.at, s.retention.raw_days, s.timezone) == (
        "06:00",
        "02:30",
        30,
        "UTC",
    )
    names = [p.name for p in plan(s)]
    assert names == ["cycle", "optimisation", "fdd", "report", "retention"]
    assert [p.name for p in plan(s.model_copy(update={"fdd": s.fdd.model_copy(update={"enabled": False})}))] == [
        "cycle", "optimisation", "report", "retention"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("block", "where"),
    [
        ({"report": {"at": "6 am"}}, "schedule.report.at"),
        ({"timezone": "Mars/Olympus"}, "schedule.timezone"),
        ({"retention": {"raw_days": 0}}, "schedule.retention.raw_days"),
        ({"cycle": {"every_s": 10, "evry": 3}}, "schedule.cycle.evry"),
    ],
)
def test_a_bad_schedule_names_file_and_field(
    twin_data: dict[str, Any], tmp_path: Any, block: dict[str, Any], where: str
) -> None:
    f = tmp_path / "site.yaml"
    f.write_text(yaml.safe_dump({**twin_data, "schedule": block}))
    with pytest.raises(SiteConfigError) as e:
        load_site(f)
    msg = str(e.value)
    assert msg.startswith(f"site.yaml: {where}:") and "\n" not in msg


def test_every_schedule_field_is_described() -> None:
    def walk(model: Any) -> None:
        for name, f in model.model_fields.items():
            assert f.description, f"{model.__name__}.{name} has no description"
            ann = f.annotation
            if isinstance(ann, type) and hasattr(ann, "model_fields"):
                walk(ann)

    walk(ScheduleConfig)


def test_the_cycle_holds_back_what_its_sweep_fires_and_timers_keep_running() -> None:
    site: Site = load_site(default_site_path())
    p = {
        "id": "warm_gpu_saving",
        "description": "x",
        "kind": "efficiency",
        "when": {"all": [{"point": "gpu.gpu_temp_max", "op": ">", "value": 80.0}]},
        "then": {
            "action": "write_setpoint",
            "target": "cdu_1.coolant_supply_setpoint",
            "delta": -2.0,
            "min": 20.0,
            "max": 40.0,
        },
        "for": "5m",
    }
    eng = PolicyEngine(policies_from_dicts([p]), site)
    v = np.full(len(site.point_ids), np.nan)
    v[site.point_ids["gpu.gpu_temp_max"]] = 82.0
    v[site.point_ids["cdu_1.coolant_supply_setpoint"]] = 30.0

    def at(minutes: float, kinds: set[str] | None) -> list[Any]:
        eng.kinds = frozenset(kinds) if kinds is not None else None
        return eng.evaluate(Observation(T0 + timedelta(minutes=minutes), v))

    cycle = {"protection", "alarm", "fault"}
    assert at(0, cycle) == []
    assert at(6, cycle) == []  # held 6 minutes, but not the cycle's kind
    fired = at(7, {"efficiency"})  # its sweep: held since minute 0, fires now
    assert [t.policy.id for t in fired] == ["warm_gpu_saving"]
    assert at(8, {"efficiency"}) == []  # then its cool-down, as ever
