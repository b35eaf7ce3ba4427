"""The relations the residual check evaluates: which sensors must agree, and how.

A :class:`Relation` is data (a table of descriptions, validated by use): the equipment
kind it anchors on, the *roles* it needs (:class:`tools.quality.physics.Role`: points by
Brick class or name, on the equipment or site-wide), and how they must agree —
``redundant`` (the same quantity measured twice or more), ``ratio`` (``y ≈ a·x``) or
``offset`` (``y ≈ x + b``), with ``a`` / ``b`` learned from the site's own history and a
tolerance ``tol_abs + tol_rel·|prediction|``. Evaluation and fault isolation are in
:mod:`tools.quality.residuals`.

Sources of the physics: water ρ·cp ≈ 4.19 kW per (L/s · K); pump affinity laws (flow ∝
speed, power ∝ speed³); a UPS's input = output + losses; a transformer carries what it
feeds; a tower's approach = leaving water − wet bulb; chiller first law
(Q_cond = Q_evap + P_compressor).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tools.quality.physics import CP_WATER, Role

Values = Mapping[str, np.ndarray]
Expr = Callable[[Values], np.ndarray]


@dataclass(frozen=True)
class Relation:
    id: str
    kind: str  # the anchor equipment kind: one instance per equipment of this kind
    roles: tuple[Role, ...]
    mode: Literal["ratio", "offset", "redundant"]
    y: Expr | None = None
    x: Expr | None = None
    tol_abs: float = 0.0
    tol_rel: float = 0.05
    min_x: float = 1e-9  # |x| below this: the relation does not apply (equipment off)
    when: Expr | None = None
    what: str = ""  # what the relation checks, for the reason
    running: tuple[str, ...] = field(default=())  # redundant: member applies while running


def _r(name: str, *names: str, bricks: tuple[str, ...] = (), **kw: object) -> Role:
    return Role(name, bricks, names, **kw)  # type: ignore[arg-type]


def _prop(
    rid: str,
    kind: str,
    roles: tuple[Role, ...],
    tol: tuple[float, float, float],
    what: str,
    *,
    fx: Callable[[np.ndarray], np.ndarray] | None = None,
    when: Expr | None = None,
) -> Relation:
    """A proportional balance ``y ≈ a·fx(x)`` between the first two roles; ``tol`` is
    (relative, absolute, smallest |x| that applies)."""
    yn, xn = roles[0].name, roles[1].name
    f = fx or (lambda x: x)
    return Relation(
        rid, kind, roles, "ratio", y=lambda v: v[yn], x=lambda v: f(v[xn]),
        tol_rel=tol[0], tol_abs=tol[1], min_x=tol[2], when=when, what=what,
    )  # fmt: skip


def _not_on_battery(v: Values) -> np.ndarray:
    return v["batt"] < 0.5 if "batt" in v else np.ones_like(v["pin"], bool)


_POWER = ("Electric_Power_Sensor",)
_SPEED = ("Speed_Sensor",)
_PUMP_FLOW = (
    "Chilled_Water_Flow_Sensor", "Condenser_Water_Flow_Sensor", "Water_Flow_Sensor", "Flow_Sensor",
)  # fmt: skip


_EXPECT_RUN = ("Run_Status", "On_Status")

DEFAULT_RELATIONS: tuple[Relation, ...] = (
    Relation(
        "condenser_water_redundant",
        "cooling_tower",
        (
            _r("m", bricks=("Leaving_Condenser_Water_Temperature_Sensor",)),
            _r(
                "m",
                bricks=("Entering_Condenser_Water_Temperature_Sensor",),
                scope="site",
                kinds=("chiller",),
            ),
        ),
        "redundant",
        tol_abs=1.0,
        what="condenser water leaving the tower = entering each running chiller",
        running=_EXPECT_RUN,
    ),
    Relation(
        "tower_approach",
        "cooling_tower",
        (
            _r("app", "approach"),
            _r("cws", bricks=("Leaving_Condenser_Water_Temperature_Sensor",)),
            _r("wb", "wet_bulb", scope="site", kinds=("weather",)),
        ),
        "offset",
        y=lambda v: v["app"],
        x=lambda v: v["cws"] - v["wb"],
        tol_abs=1.0,
        what="approach = leaving water − wet bulb",
    ),
    _prop(
        "transformer_load_pct",
        "transformer",
        (_r("pct", "load_pct"), _r("kw", "load")),
        (0.05, 1.0, 20.0),
        "load % ∝ kW",
    ),
    Relation(
        "transformer_feeds",
        "transformer",
        (
            _r("kw", "load"),
            _r("ups", "input_power", scope="site", kinds=("ups",), agg="sum"),
            _r(
                "mech",
                bricks=("Electric_Power_Sensor",),
                scope="site",
                kinds=("chiller", "pump", "cooling_tower", "crah"),
                agg="sum",
            ),
        ),
        "ratio",
        y=lambda v: v["kw"],
        x=lambda v: v["ups"] + v["mech"],
        tol_rel=0.05,
        tol_abs=5.0,
        min_x=20.0,
        what="transformer load = UPS input + chillers, pumps, tower and CRAH fans",
    ),
    _prop(
        "ups_in_vs_out",
        "ups",
        (
            _r("pin", "input_power"),
            _r("pout", "output_power"),
            _r("batt", "on_battery", involved=False, optional=True),
        ),
        (0.04, 3.0, 20.0),
        "UPS input = output + losses",
        when=_not_on_battery,
    ),
    _prop(
        "ups_load_pct",
        "ups",
        (_r("pct", "load_pct"), _r("pout", "output_power")),
        (0.05, 1.0, 20.0),
        "load % ∝ output kW",
    ),
    _prop(
        "pdu_load_pct",
        "pdu",
        (_r("pct", "load_pct"), _r("kw", "power")),
        (0.05, 1.0, 10.0),
        "load % ∝ kW",
    ),
    _prop(
        "pdu_current",
        "pdu",
        (_r("amps", "current"), _r("kw", "power")),
        (0.05, 2.0, 10.0),
        "current ∝ kW",
    ),
    _prop(
        "it_vs_pdus",
        "gpu_cluster",
        (_r("it", "it_power"), _r("pdu", bricks=_POWER, scope="site", kinds=("pdu",), agg="sum")),
        (0.05, 5.0, 20.0),
        "IT power = sum of PDU power",
    ),
    _prop(
        "pump_flow_vs_speed",
        "pump",
        (_r("flow", bricks=_PUMP_FLOW), _r("speed", bricks=_SPEED)),
        (0.05, 0.5, 10.0),
        "flow ∝ pump speed (affinity law)",
    ),
    _prop(
        "cdu_flow_vs_speed",
        "cdu",
        (_r("flow", bricks=("Coolant_Flow_Sensor",)), _r("speed", bricks=_SPEED)),
        (0.08, 0.5, 10.0),
        "coolant flow ∝ pump speed (affinity law)",
    ),
    Relation(
        "cdu_heat_balance",
        "cdu",
        (
            _r("q", "heat_load"),
            _r("flow", bricks=("Coolant_Flow_Sensor",)),
            _r("sup", bricks=("Coolant_Supply_Temperature_Sensor",)),
            _r("ret", bricks=("Coolant_Return_Temperature_Sensor",)),
        ),
        "ratio",
        y=lambda v: v["q"],
        x=lambda v: v["flow"] * (v["ret"] - v["sup"]) * CP_WATER,
        tol_rel=0.08,
        tol_abs=5.0,
        min_x=20.0,
        what="CDU heat = coolant flow × ΔT × 4.19",
    ),
    Relation(
        "chiller_evaporator",
        "chiller",
        (
            _r("load", bricks=("Load_Sensor",)),
            _r("flow", bricks=("Chilled_Water_Flow_Sensor",)),
            _r("sup", bricks=("Leaving_Chilled_Water_Temperature_Sensor",)),
            _r("ret", bricks=("Entering_Chilled_Water_Temperature_Sensor",)),
        ),
        "ratio",
        y=lambda v: v["load"],
        x=lambda v: v["flow"] * (v["ret"] - v["sup"]) * CP_WATER,
        tol_rel=0.10,
        tol_abs=2.0,
        min_x=20.0,
        what="evaporator load % ∝ chilled-water flow × ΔT",
    ),
    Relation(
        "chiller_supply_tracks_setpoint",
        "chiller",
        (
            _r("sup", bricks=("Leaving_Chilled_Water_Temperature_Sensor",)),
            _r("sp", bricks=("Chilled_Water_Supply_Temperature_Setpoint",), involved=False),
            _r("run", bricks=_EXPECT_RUN, involved=False, optional=True),
        ),
        "offset",
        y=lambda v: v["sup"],
        x=lambda v: v["sp"],
        tol_abs=0.5,
        when=lambda v: v["run"] >= 0.5 if "run" in v else np.ones_like(v["sup"], bool),
        what="leaving chilled water held at its setpoint while running",
    ),
    _prop(
        "chiller_power_vs_load",
        "chiller",
        (_r("pwr", bricks=_POWER), _r("load", bricks=("Load_Sensor",))),
        (0.10, 3.0, 5.0),
        "compressor power ∝ load (COP)",
    ),
    _prop(
        "pump_power_vs_speed",
        "pump",
        (_r("pwr", bricks=_POWER), _r("speed", bricks=_SPEED)),
        (0.08, 0.5, 0.01),
        "pump power ∝ speed³ (affinity law)",
        fx=lambda s: (s / 100.0) ** 3,
    ),
    Relation(
        "chiller_condenser",
        "chiller",
        (
            _r("flow", bricks=("Chilled_Water_Flow_Sensor",)),
            _r("sup", bricks=("Leaving_Chilled_Water_Temperature_Sensor",)),
            _r("ret", bricks=("Entering_Chilled_Water_Temperature_Sensor",)),
            _r("pwr", bricks=("Electric_Power_Sensor",)),
            _r("cwf", bricks=("Condenser_Water_Flow_Sensor",)),
            _r("cwi", bricks=("Entering_Condenser_Water_Temperature_Sensor",)),
            _r("cwo", bricks=("Leaving_Condenser_Water_Temperature_Sensor",)),
        ),
        "ratio",
        y=lambda v: v["cwf"] * (v["cwo"] - v["cwi"]) * CP_WATER,
        x=lambda v: v["flow"] * (v["ret"] - v["sup"]) * CP_WATER + v["pwr"],
        tol_rel=0.06,
        tol_abs=10.0,
        min_x=50.0,
        what="condenser heat = evaporator heat + compressor power",
    ),
)
