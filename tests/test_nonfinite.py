"""Non-finite numbers are refused at every boundary (issue 11, finding 5).

A NaN or an infinity must never become a write, a what-if that "holds every
constraint", a site limit or a policy threshold: each boundary refuses it with
an error that says what and where.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.errors import NonFiniteValue, PolicyConfigError, SiteConfigError, WriteRejected
from connectors.site import Site, WriteLimits, load_site
from perfmodel.whatif import Change, PlantState, whatif, whatif_many
from tools.policies.loader import policies_from_dicts
from tools.whatif import TagChange, check, check_many
from twin import default_site_path

NON_FINITE = [math.nan, math.inf, -math.inf]


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site(default_site_path())


@pytest.fixture(scope="module")
def site_data() -> dict[str, Any]:
    data = yaml.safe_load(default_site_path().read_text())
    assert isinstance(data, dict)
    return data


# ---- writes ------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", NON_FINITE)
def test_clamp_refuses_non_finite(value: float) -> None:
    lim = WriteLimits(min=0.0, max=100.0)
    with pytest.raises(NonFiniteValue, match="finite"):
        lim.clamp(value)
    assert issubclass(NonFiniteValue, WriteRejected)  # the actuator's refusal path catches it


def test_clamp_still_clamps_finite_values() -> None:
    lim = WriteLimits(min=5.0, max=14.0)
    assert (lim.clamp(3.0), lim.clamp(9.5), lim.clamp(20.0)) == (5.0, 9.5, 14.0)


# ---- what-if -----------------------------------------------------------------------------------
VALUES: dict[str, float] = {}  # no readings: the twin's design state


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize(
    "tag", ["gpu.power_cap", "chiller_1.chw_supply_setpoint", "crah_1.supply_air_setpoint"]
)
def test_whatif_refuses_a_non_finite_proposal(site: Site, tag: str, value: float) -> None:
    with pytest.raises(NonFiniteValue, match=tag.replace(".", r"\.")):
        check(site, VALUES, [TagChange(tag, value)])
    with pytest.raises(NonFiniteValue):
        check_many(site, VALUES, [[TagChange(tag, 50.0)], [TagChange(tag, value)]])


def test_whatif_refuses_a_non_finite_relative_change(site: Site) -> None:
    with pytest.raises(NonFiniteValue):
        check(site, VALUES, [TagChange("ct_1.cw_supply_setpoint", math.nan, relative=True)])


@pytest.mark.parametrize("value", NON_FINITE)
def test_model_refuses_non_finite_where_it_has_no_meaning(value: float) -> None:
    with pytest.raises(ValueError, match="chw_supply_setpoint_c"):
        whatif(PlantState(), [Change("chw_supply_setpoint_c", value)])
    with pytest.raises(ValueError, match="gpu_power_cap_kw"):
        bad_cap = -math.inf if value == math.inf else value  # +inf is "no cap"
        whatif_many(PlantState(), {"gpu_power_cap_kw": [800.0, bad_cap]})


def test_model_keeps_its_documented_non_finite_settings() -> None:
    """NaN tower fan = automatic, NaN wet bulb = computed, +inf power cap = no cap."""
    p = whatif(
        PlantState(),
        [
            Change("tower_fan_speed_pct", math.nan),
            Change("outdoor_wetbulb_c", math.nan),
            Change("gpu_power_cap_kw", math.inf),
        ],
    )
    assert p.ok and math.isfinite(p.total_kw)


# ---- site files --------------------------------------------------------------------------------
def _equipment(data: dict[str, Any], eq_id: str) -> dict[str, Any]:
    eq = next(e for e in data["equipment"] if e["id"] == eq_id)
    assert isinstance(eq, dict)
    return eq


def _point(data: dict[str, Any], eq_id: str, name: str) -> dict[str, Any]:
    p = next(p for p in _equipment(data, eq_id)["points"] if p["name"] == name)
    assert isinstance(p, dict)
    return p


def _load(tmp_path: Path, data: dict[str, Any]) -> Site:
    f = tmp_path / "hall.yaml"
    f.write_text(yaml.safe_dump(data))
    return load_site(f)


def _site_case(name: str) -> Any:
    def edit(d: dict[str, Any]) -> None:
        sp = _point(d, "chiller_1", "chw_supply_setpoint")
        if name == "min nan":
            sp["min"] = math.nan
        elif name == "max inf":
            sp["max"] = math.inf
        elif name == "write min nan":
            sp["write"]["min"] = math.nan
        elif name == "write max inf":
            sp["write"]["max"] = math.inf
        elif name == "write min above max":
            sp["write"].update(min=12.0, max=6.0)
        elif name == "max_step zero":
            sp["write"]["max_step"] = 0.0
        elif name == "max_step nan":
            sp["write"]["max_step"] = math.nan
        elif name == "rate inf":
            sp["max_rate"] = math.inf
        elif name == "scale nan":
            sp["source"]["scale"] = math.nan
        elif name == "rated inf":
            _equipment(d, "chiller_1")["rated"]["capacity_kw"] = math.inf
        elif name == "quality all zero":
            d["quality"] = {"level3": 0.0, "level2": 0.0, "level1": 0.0}
        elif name == "quality unordered":
            d["quality"] = {"level3": 0.9, "level2": 0.9, "level1": 0.5}
        elif name == "quality nan":
            d["quality"] = {"level3": math.nan, "level2": 0.8, "level1": 0.5}
        else:
            raise AssertionError(name)

    return edit


SITE_CASES = {
    "min nan": "chw_supply_setpoint.min",
    "max inf": "chw_supply_setpoint.max",
    "write min nan": "write.min",
    "write max inf": "write.max",
    "write min above max": "write",
    "max_step zero": "write.max_step",
    "max_step nan": "write.max_step",
    "rate inf": "max_rate",
    "scale nan": "source.scale",
    "rated inf": "rated.capacity_kw",
    "quality all zero": "quality",
    "quality unordered": "quality",
    "quality nan": "quality.level3",
}


@pytest.mark.parametrize("case", sorted(SITE_CASES))
def test_site_file_refuses_bad_numbers(
    tmp_path: Path, site_data: dict[str, Any], case: str
) -> None:
    data = copy.deepcopy(site_data)
    _site_case(case)(data)
    with pytest.raises(SiteConfigError) as err:
        _load(tmp_path, data)
    msg = str(err.value)
    assert msg.startswith("hall.yaml"), msg
    field = SITE_CASES[case].split(".")[-1]
    assert field in msg, msg


def test_the_shipped_site_still_loads(tmp_path: Path, site_data: dict[str, Any]) -> None:
    assert _load(tmp_path, copy.deepcopy(site_data)).name


# ---- policy files ------------------------------------------------------------------------------
def _policy(**over: Any) -> dict[str, Any]:
    pol: dict[str, Any] = {
        "id": "p",
        "description": "d",
        "scope": {"kind": "chiller"},
        "when": {"all": [{"point": "chw_supply_temp", "op": ">", "value": 12.0}]},
        "then": {
            "action": "write_setpoint",
            "target": "chw_supply_setpoint",
            "delta": -1.0,
            "min": 5.0,
            "max": 12.0,
        },
    }
    for path, v in over.items():
        node = pol
        *head, last = path.split("__")
        for k in head:
            node = node[int(k)] if isinstance(node, list) else node[k]
        node[last] = v
    return pol


POLICY_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "condition value nan": ({"when__all__0__value": math.nan}, "value"),
    "condition range inf": (
        {"when__all__0__op": "outside", "when__all__0__value": [0.0, math.inf]},
        "value",
    ),
    "hysteresis inf": ({"when__all__0__hysteresis": math.inf}, "hysteresis"),
    "for inf": ({"for": math.inf}, "for"),
    "delta nan": ({"then__delta": math.nan}, "delta"),
    "min -inf": ({"then__min": -math.inf}, "min"),
    "max inf": ({"then__max": math.inf}, "max"),
    "value inf": ({"then__delta": None, "then__value": math.inf}, "value"),
    "min_quality nan": ({"min_quality": math.nan}, "min_quality"),
    "verify tolerance inf": (
        {"verify": {"point": "chw_supply_temp", "expect": "decrease", "tolerance": math.inf}},
        "tolerance",
    ),
}


@pytest.mark.parametrize("case", sorted(POLICY_CASES))
def test_policy_file_refuses_non_finite_numbers(case: str) -> None:
    over, field = POLICY_CASES[case]
    pol = _policy(**over)
    if pol["then"].get("delta") is None:
        pol["then"].pop("delta", None)
    with pytest.raises(PolicyConfigError) as err:
        policies_from_dicts([pol], origin="bad.yaml")
    msg = str(err.value)
    assert msg.startswith("bad.yaml:"), msg
    assert field in msg, msg


def test_a_good_policy_still_loads() -> None:
    assert policies_from_dicts([_policy()], origin="ok.yaml")[0].policy.id == "p"


def test_a_refused_proposal_is_never_judged_safe(site: Site) -> None:
    """What the decision path does with the refusal: the gate cannot read it as 'constraints hold'."""
    from tools.gate import whatif_level

    try:
        check(site, VALUES, [TagChange("gpu.power_cap", math.nan)])
    except NonFiniteValue as err:
        level, why = whatif_level(None, "required", f"{type(err).__name__}: {err}")
    else:
        raise AssertionError("a NaN power cap was predicted")
    assert level <= 1
    assert "constraints hold" not in why and "NonFiniteValue" in why
