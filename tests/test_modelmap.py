"""The point ↔ model-field table (tools/modelmap) agrees with the model, the twin's site and
the shipped policies, and maps optimiser changes back to the right writes."""

from __future__ import annotations

import pytest

from connectors.site import Site, load_site
from perfmodel.state import NUMERIC_FIELDS, PlantState, resolve_target
from perfmodel.whatif import steady_state
from tools.modelmap import (
    ALIASES,
    OPTIMISER_FIELDS,
    RATED,
    READS,
    SENSOR_OUTPUTS,
    SETPOINTS,
    field_changes_to_tags,
    model_output_for,
    resolve_alias,
)
from tools.policies import load_library
from twin import default_site_path


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site(default_site_path())


def test_every_field_the_table_names_is_a_model_field() -> None:
    named = {s.field for s in SETPOINTS} | set(ALIASES.values()) | {r.field for r in READS}
    named |= {
        f.format(loop=loop) for keys in RATED.values() for _, f in keys for loop in ("chw", "cw")
    }
    assert named - set(NUMERIC_FIELDS) == set()
    outputs = steady_state(PlantState())
    assert set(SENSOR_OUTPUTS.values()) - set(outputs) == set()


def test_every_set_point_and_reading_exists_on_the_twin_site(site: Site) -> None:
    for s in SETPOINTS:
        tags = [f"{u}.{s.point}" for u in s.units(site)]
        assert tags, f"no {s.kind.value} with {s.point} on the twin"
        assert all(site.point(t).writable for t in tags), tags
    for r in READS:
        assert any(
            eq.kind is r.kind and any(p.name == r.point for p in eq.points) for eq in site.equipment
        ), r


def test_every_optimiser_variable_of_the_shipped_policies_is_mapped() -> None:
    used = {v for lp in load_library() for v in lp.policy.then.variables}
    assert used and used <= set(OPTIMISER_FIELDS), used - set(OPTIMISER_FIELDS)


def test_the_model_knows_fields_only_the_tools_know_aliases() -> None:
    with pytest.raises(KeyError):
        resolve_target("chw_supply_setpoint")
    assert resolve_alias("chw_supply_setpoint") == "chw_supply_setpoint_c"
    assert resolve_alias("power_cap") == "gpu_power_cap_kw"
    assert resolve_alias("chw_supply_setpoint_c") == "chw_supply_setpoint_c"


def test_sensor_tags_map_to_the_output_that_predicts_them() -> None:
    assert model_output_for("chiller_2.chw_supply_temp") == "chw_supply_c"
    assert model_output_for("plant.pue") == "pue"
    assert model_output_for("chiller_2.power") is None


VALUES = {
    "chiller_1.running": 1.0,
    "chiller_2.running": 1.0,
    "chiller_3.running": 0.0,
    "chiller_3.tripped": 0.0,
}


def test_field_changes_become_writes_on_every_unit(site: Site) -> None:
    writes = field_changes_to_tags(
        site, VALUES, {"crah_fan_speed_pct": 70.0, "chw_supply_setpoint_c": 8.0}
    )
    assert writes == [
        *[(f"crah_{i}.fan_speed_setpoint", 70.0) for i in (1, 2, 3, 4)],
        *[(f"chiller_{i}.chw_supply_setpoint", 8.0) for i in (1, 2, 3)],
    ]
    assert field_changes_to_tags(site, VALUES, {"chw_pump_speed_pct": 80.0}) == [
        ("chw_pump_1.speed_setpoint", 80.0)
    ]


def test_staging_enables_an_idle_chiller_and_never_a_tripped_one(site: Site) -> None:
    assert field_changes_to_tags(site, VALUES, {"chillers_running": 3.0}) == [
        ("chiller_3.enable", 1.0)
    ]
    tripped = {**VALUES, "chiller_3.tripped": 1.0}
    assert field_changes_to_tags(site, tripped, {"chillers_running": 3.0}) == []
    assert field_changes_to_tags(site, VALUES, {"chillers_running": 1.0}) == [
        ("chiller_2.enable", 0.0)
    ]
