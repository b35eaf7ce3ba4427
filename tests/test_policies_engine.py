"""Policies: validation errors name file and line; vectorised evaluation semantics on the twin site."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from connectors.errors import PolicyConfigError
from connectors.site import Site, load_site
from tools.policies import (
    Observation,
    PolicyEngine,
    load_library,
    parse_policies,
    policies_from_dicts,
)
from tools.policies.derived import DerivedInput, DerivedRegistry, spec
from twin import default_site_path

T0 = datetime(2026, 1, 1, 12, 0)


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site(default_site_path())


def values(site: Site, **tags: float) -> np.ndarray:
    arr = np.full(len(site.point_ids), np.nan)
    for t, v in tags.items():
        arr[site.point_ids[t.replace("__", ".")]] = v
    return arr


def test_library_compiles_against_the_twin(site: Site) -> None:
    eng = PolicyEngine(load_library(), site)
    ids = {i.lp.policy.id for i in eng.c.instances}
    assert {"chiller_trip", "leak_detected", "vesda_alert", "utility_loss", "chw_reset"} <= ids
    leak = next(i.lp.policy for i in eng.c.instances if i.lp.policy.id == "leak_detected")
    assert leak.ceiling <= 2
    vesda = next(i.lp.policy for i in eng.c.instances if i.lp.policy.id == "vesda_alert")
    assert not vesda.then.writes


BAD = """\
policies:
  - id: p1
    description: ok
    when:
      all:
        - point: chiller_1.chw_supply_temp
          op: ">"
          value: 12
    then: {action: alarm}
  - id: p2
    description: bad op
    when:
      all:
        - point: chiller_1.chw_supply_temp
          op: "=>"
          value: 12
    then: {action: alarm}
"""


def test_unknown_operator_names_file_and_line() -> None:
    with pytest.raises(PolicyConfigError, match=r"bad\.yaml:15: policies\[1\]\.when\.all\[0\]\.op"):
        parse_policies(BAD, "bad.yaml")


def test_unknown_point_names_file_and_line(site: Site) -> None:
    text = BAD.replace('"=>"', '">"').replace("chiller_1.chw_supply_temp", "chiller_9.nope", 2)
    lps = parse_policies(text, "x.yaml")
    with pytest.raises(
        PolicyConfigError,
        match=r"x\.yaml:6: policies\[0\]\.when\.all\[0\]\.point: unknown point 'chiller_9.nope'",
    ):
        PolicyEngine(lps, site)


def test_unknown_derived_and_readonly_target(site: Site) -> None:
    lps = policies_from_dicts(
        [
            {
                "id": "d",
                "description": "x",
                "scope": {"kind": "chiller"},
                "when": {"all": [{"derived": "chiller.nonsense", "op": ">", "value": 1}]},
                "then": {"action": "alarm"},
            }
        ]
    )
    with pytest.raises(PolicyConfigError, match=r"unknown derived value 'chiller\.nonsense'"):
        PolicyEngine(lps, site)
    lps = policies_from_dicts(
        [
            {
                "id": "w",
                "description": "x",
                "when": {"all": [{"point": "gpu.gpu_temp_max", "op": ">", "value": 1}]},
                "then": {"action": "write_setpoint", "target": "gpu.gpu_temp_max", "value": 50},
            }
        ]
    )
    with pytest.raises(PolicyConfigError, match="not writable"):
        PolicyEngine(lps, site)


def test_bounds_outside_write_limits_rejected(site: Site) -> None:
    lps = policies_from_dicts(
        [
            {
                "id": "w",
                "description": "x",
                "when": {"all": [{"point": "gpu.gpu_temp_max", "op": ">", "value": 1}]},
                "then": {"action": "cap_gpu_power", "target": "gpu.power_cap", "value": 20},
            }
        ]
    )
    with pytest.raises(PolicyConfigError, match=r"outside gpu\.power_cap's write limits"):
        PolicyEngine(lps, site)


def _gpu_policy(**extra: object) -> list:
    cond = {"point": "gpu.gpu_temp_max", "op": ">", "value": 80.0, "hysteresis": 2.0}
    p = {
        "id": "hot",
        "description": "x",
        "when": {"all": [cond]},
        "then": {
            "action": "write_setpoint",
            "target": "cdu_1.coolant_supply_setpoint",
            "delta": -2.0,
            "min": 20.0,
            "max": 40.0,
        },
        "cooldown": "10m",
        **extra,
    }
    return policies_from_dicts([p])


def test_for_duration_hysteresis_and_cooldown(site: Site) -> None:
    eng = PolicyEngine(_gpu_policy(**{"for": "5m"}), site)

    def at(minutes: float, temp: float) -> list:
        obs = Observation(
            T0 + timedelta(minutes=minutes),
            values(site, gpu__gpu_temp_max=temp, cdu_1__coolant_supply_setpoint=30.0),
        )
        return eng.evaluate(obs)

    assert at(0, 82) == []  # true, not held yet
    assert at(4, 82) == []
    fired = at(5, 82)  # held 5 minutes
    assert len(fired) == 1
    tr = fired[0]
    assert tr.action.changes[0].tag == "cdu_1.coolant_supply_setpoint"
    assert tr.action.changes[0].value == 28.0
    assert tr.evidence[0].value == 82
    assert at(6, 79) == []  # within hysteresis: still active, but cooling down
    assert eng.active[0]
    assert at(7, 77.9) == []  # below 80 - 2: cleared
    assert not eng.active[0]
    assert at(8, 82) == []  # must hold 5 minutes again
    assert at(13, 82) == []  # held, but cool-down (10 m from minute 5) until 15
    assert len(at(15, 82)) == 1


def test_nan_never_triggers_and_delta_bounds(site: Site) -> None:
    eng = PolicyEngine(_gpu_policy(), site)
    assert eng.evaluate(Observation(T0, values(site))) == []
    fired = eng.evaluate(
        Observation(T0, values(site, gpu__gpu_temp_max=90, cdu_1__coolant_supply_setpoint=21.0))
    )
    assert fired[0].action.changes[0].value == 20.0  # bounded by min


def test_scoped_policy_instances_and_stage(site: Site) -> None:
    eng = PolicyEngine(load_library(["data_hall"]), site)
    vals = values(
        site,
        chiller_1__tripped=1,
        chiller_1__running=0,
        chiller_1__enable=1,
        chiller_2__tripped=0,
        chiller_2__running=1,
        chiller_2__enable=1,
        chiller_3__tripped=0,
        chiller_3__running=0,
        chiller_3__enable=0,
    )
    assert [t for t in eng.evaluate(Observation(T0, vals)) if t.policy.id == "chiller_trip"] == []
    fired = [
        t
        for t in eng.evaluate(Observation(T0 + timedelta(seconds=31), vals))
        if t.policy.id == "chiller_trip"
    ]
    assert [t.equipment for t in fired] == ["chiller_1"]
    assert fired[0].policy.fault_class == "chiller_trip"
    assert [(c.tag, c.value) for c in fired[0].action.changes] == [("chiller_3.enable", 1.0)]
    assert "chiller_1.tripped" in fired[0].rests_on


def test_outside_envelope_and_any_mode(site: Site) -> None:
    lps = policies_from_dicts(
        [
            {
                "id": "env",
                "description": "x",
                "scope": {"kind": "crah"},
                "when": {
                    "any": [
                        {"point": "rack_inlet_temp", "op": "outside", "value": [18, 27]},
                        {"point": "fan_fault", "op": "==", "value": 1},
                    ]
                },
                "then": {"action": "notify", "message": "m"},
            }
        ]
    )
    eng = PolicyEngine(lps, site)
    vals = values(
        site,
        crah_1__rack_inlet_temp=17,
        crah_2__rack_inlet_temp=22,
        crah_3__rack_inlet_temp=28,
        crah_4__rack_inlet_temp=22,
        crah_4__fan_fault=1,
        crah_2__fan_fault=0,
    )
    assert sorted(str(t.equipment) for t in eng.evaluate(Observation(T0, vals))) == [
        "crah_1",
        "crah_3",
        "crah_4",
    ]


def test_derived_registry_plugs_in(site: Site) -> None:
    def _score(x: DerivedInput) -> float:
        x.memo["calls"] = x.memo.get("calls", 0) + 1
        return x.v("power") / 100.0 + x.args.get("bias", 0.0)

    registry = DerivedRegistry.builtin(
        [spec("test.chiller:score", _score, kinds=("chiller",), inputs=("power",), unit="score")]
    )
    lps = policies_from_dicts(
        [
            {
                "id": "fdd",
                "description": "x",
                "kind": "fault",
                "fault_class": "condenser_fouling",
                "scope": {"kind": "chiller"},
                "when": {
                    "all": [
                        {
                            "derived": "test.chiller:score",
                            "args": {"bias": 0.1},
                            "op": ">",
                            "value": 0.5,
                        }
                    ]
                },
                "then": {"action": "alarm"},
            }
        ]
    )
    with pytest.raises(PolicyConfigError, match="unknown derived value"):
        PolicyEngine(lps, site)  # the built-ins alone do not know it: nothing registers globally
    eng = PolicyEngine(lps, site, registry=registry)
    fired = eng.evaluate(Observation(T0, values(site, chiller_1__power=50, chiller_2__power=10)))
    assert [t.equipment for t in fired] == ["chiller_1"]
    assert fired[0].evidence[0].value == pytest.approx(0.6)
    assert "chiller_1.power" in fired[0].rests_on


def test_quality_condition(site: Site) -> None:
    lps = policies_from_dicts(
        [
            {
                "id": "dq",
                "description": "x",
                "when": {
                    "all": [{"quality": "chiller_1.chw_supply_temp", "op": "<", "value": 0.5}]
                },
                "then": {"action": "alarm"},
            }
        ]
    )
    eng = PolicyEngine(lps, site)
    q = np.ones(len(site.point_ids))
    assert eng.evaluate(Observation(T0, values(site), quality=q)) == []
    q[site.point_ids["chiller_1.chw_supply_temp"]] = 0.2
    assert len(eng.evaluate(Observation(T0 + timedelta(minutes=1), values(site), quality=q))) == 1


def test_library_files_on_disk_parse() -> None:
    from tools.policies import library_dir

    files = sorted(Path(library_dir()).glob("*.yaml"))
    assert {f.stem for f in files} >= {"data_hall", "efficiency"}


def test_non_strict_keeps_what_applies(site: Site) -> None:
    from connectors.site import parse_site
    from tools.fdd import chiller  # noqa: F401  (registers fdd.* derived values)

    one_crah = parse_site(
        {
            "name": "small",
            "equipment": [
                {
                    "id": "crah_1",
                    "kind": "crah",
                    "points": [
                        {
                            "name": "rack_inlet_temp",
                            "unit": "degC",
                            "source": {"table": "input", "address": 0, "data_type": "float32"},
                        },
                        {
                            "name": "supply_air_setpoint",
                            "unit": "degC",
                            "source": {"table": "holding", "address": 0, "data_type": "float32"},
                            "write": {"min": 14, "max": 24, "max_step": 1},
                        },
                    ],
                }
            ],
        },
        "small",
    )
    with pytest.raises(PolicyConfigError):
        PolicyEngine(load_library(), one_crah)
    eng = PolicyEngine(load_library(), one_crah, strict=False)
    # rack_inlet_high also needs the fan's run status, which this site lacks
    assert {i.lp.policy.id for i in eng.c.instances} == {"rack_inlet_low", "rack_inlet_envelope"}
    assert any(pid == "leak_detected" for pid, _ in eng.skipped)


def test_invalid_yaml_duplicate_ids_and_durations(tmp_path: Path) -> None:
    from tools.policies import load_policies

    with pytest.raises(PolicyConfigError, match=r"broken\.yaml:\d+: invalid YAML"):
        parse_policies("policies:\n  - id: a\n    when: [unclosed\n", "broken.yaml")
    one = "policies:\n  - id: same\n    description: x\n    when: {all: [{point: gpu.gpu_temp_max, op: '>', value: 1}]}\n    then: {action: alarm}\n"
    (tmp_path / "a.yaml").write_text(one)
    (tmp_path / "b.yaml").write_text(one)
    with pytest.raises(
        PolicyConfigError, match=r"b\.yaml:2: .*duplicate policy id 'same' \(also in a\.yaml:2\)"
    ):
        load_policies([tmp_path])
    bad = one.replace("then:", "for: 5 minutes\n    then:")
    with pytest.raises(PolicyConfigError, match=r"c\.yaml:5: policies\[0\]\.for: .*not a duration"):
        parse_policies(bad, "c.yaml")
    typo = one.replace("then:", "cooldwn: 5m\n    then:")
    with pytest.raises(PolicyConfigError, match=r"d\.yaml:5: policies\[0\]\.cooldwn: Extra inputs"):
        parse_policies(typo, "d.yaml")


def test_a_write_to_the_value_a_point_holds_is_not_proposed() -> None:
    """A protection setting the CDU pump to 100 % while it already runs there asked an
    operator to approve writing 100 over 100 (the demo's utility loss): nothing to change is
    no decision, and the instance does not start its cooldown."""
    from tools.policies.engine import resolve_action
    from tools.policies.model import Action

    site = load_site(default_site_path())
    sp = "cdu_1.pump_speed_setpoint"
    act = Action(action="write_setpoint", target=sp, value=100.0)
    assert resolve_action(site, act, None, sp, {sp: 100.0}) is None
    moved = resolve_action(site, act, None, sp, {sp: 60.0})
    assert moved is not None
    assert [(c.tag, c.value, c.previous) for c in moved.changes] == [(sp, 100.0, 60.0)]
