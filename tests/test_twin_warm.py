"""The twin's warm start is shared only between twins that nothing distinguishes."""

from __future__ import annotations

from connectors.site import Site, parse_site
from twin.config import PlantConfig
from twin.sim import Twin, default_site


def _with_rated(site: Site, eq_id: str, key: str, value: float) -> Site:
    data = site.model_dump(mode="json")
    for eq in data["equipment"]:
        if eq["id"] == eq_id:
            eq.setdefault("rated", {})[key] = value
    return parse_site(data, origin=f"{site.name} ({eq_id}.{key}={value})")


def test_a_site_with_the_same_chillers_but_another_tower_gets_its_own_plant() -> None:
    base = default_site()
    other = _with_rated(base, "ct_1", "fan_rated_kw", 55.0)
    assert PlantConfig.from_site(other).chiller_cap_kw == PlantConfig.from_site(base).chiller_cap_kw
    a = Twin(base, seed=3)
    b = Twin(other, seed=3)  # same seed, start and chiller capacity as ``a``
    assert b.plant.cfg.tower_fan_kw == 55.0
    assert a.plant.cfg.tower_fan_kw == PlantConfig.from_site(base).tower_fan_kw != 55.0
    again = Twin(base, seed=3)  # the same site again: the same settled start, not shared state
    assert again.true_values() == a.true_values()
    assert again.plant is not a.plant
