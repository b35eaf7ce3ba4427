"""Derived values a policy condition may reference: ΔT, approach, kW/ton, detector scores.

A policy condition reads either a point, a data-quality score or a *derived value*
by name::

    - derived: chiller.chw_delta_t          # built in (below)
      op: "<"
      value: 2.0
    - derived: fdd.chiller:condenser_fouling   # from the site's fault detection (tools.fdd)
      op: ">"
      value: 0.5

The values a policy engine knows are a :class:`DerivedRegistry` built explicitly —
nothing registers itself on import. :meth:`DerivedRegistry.builtin` holds the values
below; whoever owns per-site state adds the rest (the agent's context adds the
detectors of :func:`tools.fdd.derived_specs`, bound to that site's references)::

    from tools.policies.derived import DerivedInput, DerivedRegistry, spec

    def condenser_fouling(x: DerivedInput) -> float:
        return my_detector(x.v("cw_leaving_temp"), x.v("power"), ...)

    registry = DerivedRegistry.builtin()
    registry.add(spec("fdd.chiller:condenser_fouling", condenser_fouling, kinds=("chiller",),
                      inputs=("cw_entering_temp", "cw_leaving_temp", "power", "load"),
                      unit="score", description="condenser fouling score, 0 = healthy"))

Contract of a derived function:

* it is pure and cheap (called once per cycle per equipment instance); it gets a
  :class:`DerivedInput` and returns one ``float`` (``nan`` = cannot tell; a
  condition on ``nan`` is false);
* ``kinds`` lists the equipment kinds it applies to (then the policy that uses it
  must be scoped to that kind, ``scope: {kind: chiller}``, and ``x.v(name)``
  reads the point ``name`` of the equipment instance); ``kinds=None`` makes it
  site-level (``x.v(tag)`` reads a full tag);
* ``inputs`` names the points (names on the equipment, or tags when site-level)
  the value rests on: their data quality caps the decision's autonomy level, and
  a policy referencing a derived value whose inputs the equipment lacks is a
  :class:`~connectors.errors.PolicyConfigError`. ``aliases`` gives other names an
  input may carry on an equipment (RP-1043's ``TEO`` is the twin's
  ``chw_supply_temp``); ``optional`` inputs are used, and rested on, when present;
* a detector that needs history calls ``x.history(names, seconds)`` (a long
  frame ``ts, tag, value`` of good readings from the store; ``None`` offline)
  and may cache per cycle in ``x.memo`` (shared by every derived call of the
  cycle — compute seven fault scores once, return each from the memo);
* ``args`` (``args: {k: 1.5}`` in the YAML) arrive as ``x.args``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from connectors.site import Equipment, Site
from tools.whatif import check as whatif_check

HistoryFn = Callable[[Sequence[str], float], pd.DataFrame]
"""(tags, seconds back from now) → long frame ``ts, tag, value`` of good readings."""


@dataclass
class DerivedInput:
    """What a derived function sees: latest values, its equipment instance, the clock."""

    site: Site
    equipment: Equipment | None
    values: Mapping[str, float]
    now: datetime
    args: Mapping[str, float] = field(default_factory=dict)
    history: HistoryFn | None = None
    memo: dict[str, Any] = field(default_factory=dict)

    def tag(self, name: str) -> str:
        """Full tag of point ``name`` on this equipment (or ``name`` itself when site-level)."""
        return f"{self.equipment.id}.{name}" if self.equipment is not None else name

    def v(self, name: str) -> float:
        """Latest good value of point ``name`` (``nan`` when missing)."""
        return float(self.values.get(self.tag(name), math.nan))


DerivedFn = Callable[[DerivedInput], float]


@dataclass(frozen=True)
class DerivedSpec:
    name: str
    fn: DerivedFn
    kinds: frozenset[str] | None
    inputs: tuple[str, ...]
    unit: str
    description: str
    optional: tuple[str, ...] = ()
    aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def applies_to(self, equipment: Equipment | None) -> bool:
        if self.kinds is None:
            return True
        return equipment is not None and equipment.kind.value in self.kinds

    def point_name(self, equipment: Equipment, name: str) -> str | None:
        """The name input ``name`` has on ``equipment`` (itself or an alias), None when absent."""
        have = {p.name for p in equipment.points}
        for n in (name, *dict(self.aliases).get(name, ())):
            if n in have:
                return n
        return None

    def input_tags(self, equipment: Equipment | None) -> list[str]:
        """Tags the value rests on: every required input (as named on the equipment, or its
        own name when the equipment lacks it) and the optional inputs it has."""
        if equipment is None:
            return list(self.inputs)
        out = [f"{equipment.id}.{self.point_name(equipment, n) or n}" for n in self.inputs]
        for n in self.optional:
            found = self.point_name(equipment, n)
            if found is not None:
                out.append(f"{equipment.id}.{found}")
        return list(dict.fromkeys(out))


def spec(
    name: str,
    fn: DerivedFn,
    *,
    kinds: Sequence[str] | None = None,
    inputs: Sequence[str] = (),
    optional: Sequence[str] = (),
    aliases: Mapping[str, Sequence[str]] | None = None,
    unit: str = "",
    description: str = "",
) -> DerivedSpec:
    """A :class:`DerivedSpec` from plain arguments (description defaults to the docstring)."""
    return DerivedSpec(
        name=name,
        fn=fn,
        kinds=frozenset(kinds) if kinds is not None else None,
        inputs=tuple(inputs),
        unit=unit,
        description=description or next(iter((fn.__doc__ or "").strip().splitlines()), ""),
        optional=tuple(optional),
        aliases=tuple((k, tuple(v)) for k, v in (aliases or {}).items()),
    )


class DerivedRegistry:
    """The derived values one policy engine knows, by name (a later ``add`` replaces)."""

    def __init__(self, specs: Iterable[DerivedSpec] = ()) -> None:
        self._specs: dict[str, DerivedSpec] = {}
        for s in specs:
            self.add(s)

    @classmethod
    def builtin(cls, *extra: Iterable[DerivedSpec]) -> DerivedRegistry:
        """The built-in values of this module, plus ``extra`` groups of specs."""
        reg = cls(BUILTINS)
        for group in extra:
            for s in group:
                reg.add(s)
        return reg

    def add(self, s: DerivedSpec) -> None:
        self._specs[s.name] = s

    def get(self, name: str) -> DerivedSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise KeyError(f"unknown derived value {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def names(self) -> list[str]:
        return sorted(self._specs)

    def describe(self) -> list[dict[str, Any]]:
        """The registry as JSON-able rows (for the LLM's tool descriptions and docs)."""
        return [
            {
                "name": s.name,
                "kinds": sorted(s.kinds) if s.kinds is not None else None,
                "inputs": list(s.inputs),
                "unit": s.unit,
                "description": s.description,
            }
            for s in sorted(self._specs.values(), key=lambda s: s.name)
        ]


def compute(s: DerivedSpec, x: DerivedInput) -> float:
    """Call a derived function; a missing input or a math error is ``nan``, never a crash."""
    try:
        out = float(s.fn(x))
    except (ZeroDivisionError, ValueError, KeyError, FloatingPointError):
        return math.nan
    return out


# ---- built-ins -------------------------------------------------------------------------------
TON_KW = 3.516853  # 1 refrigeration ton = 3.516853 kW (12,000 BTU/h)


def _chw_delta_t(x: DerivedInput) -> float:
    return x.v("chw_return_temp") - x.v("chw_supply_temp")


def _cw_delta_t(x: DerivedInput) -> float:
    return x.v("cw_leaving_temp") - x.v("cw_entering_temp")


def _lift(x: DerivedInput) -> float:
    return x.v("cw_leaving_temp") - x.v("chw_supply_temp")


def _load_kw(x: DerivedInput) -> float:
    """Cooling delivered in kW: ``load`` is % of the nameplate ``capacity_kw``."""
    cap = x.equipment.rated.get("capacity_kw", math.nan) if x.equipment is not None else math.nan
    return x.v("load") / 100.0 * cap


def _kw_per_ton(x: DerivedInput) -> float:
    q = _load_kw(x)
    if not q > 0:
        return math.nan
    return x.v("power") / (q / TON_KW)


def _cop(x: DerivedInput) -> float:
    p = x.v("power")
    return _load_kw(x) / p if p > 0 else math.nan


def _cdu_delta_t(x: DerivedInput) -> float:
    return x.v("coolant_return_temp") - x.v("coolant_supply_temp")


def _cdu_supply_error(x: DerivedInput) -> float:
    return x.v("coolant_supply_temp") - x.v("coolant_supply_setpoint")


def _chw_supply_error(x: DerivedInput) -> float:
    return x.v("chw_supply_temp") - x.v("chw_supply_setpoint")


def _crah_supply_error(x: DerivedInput) -> float:
    return x.v("supply_air_temp") - x.v("supply_air_setpoint")


def _crah_delta_t(x: DerivedInput) -> float:
    return x.v("return_air_temp") - x.v("supply_air_temp")


def _const(x: DerivedInput) -> float:
    return float(x.args.get("value", math.nan))


def _model_now(x: DerivedInput) -> Any:
    """The performance model's steady state for the present readings (once per cycle)."""
    if "model.now" not in x.memo:
        x.memo["model.now"] = whatif_check(x.site, x.values, [])
    return x.memo["model.now"]


def _pue_residual(x: DerivedInput) -> float:
    return x.v("plant.pue") - float(_model_now(x).pue)


def _cooling_residual(x: DerivedInput) -> float:
    return x.v("plant.cooling_power") - float(_model_now(x).cooling_kw)


_CH, _CDU, _CRAH = ("chiller",), ("cdu",), ("crah",)

#: The built-in derived values (immutable; a registry copies them).
BUILTINS: tuple[DerivedSpec, ...] = (
    spec("chiller.chw_delta_t", _chw_delta_t, kinds=_CH, unit="K",
         inputs=("chw_return_temp", "chw_supply_temp"),
         description="chilled-water ΔT = return − supply"),
    spec("chiller.cw_delta_t", _cw_delta_t, kinds=_CH, unit="K",
         inputs=("cw_leaving_temp", "cw_entering_temp"),
         description="condenser-water ΔT = leaving − entering"),
    spec("chiller.lift", _lift, kinds=_CH, unit="K",
         inputs=("cw_leaving_temp", "chw_supply_temp"),
         description="temperature lift = condenser leaving − chilled supply"),
    spec("chiller.kw_per_ton", _kw_per_ton, kinds=_CH, unit="kW/ton", inputs=("power", "load"),
         description="electric kW per refrigeration ton delivered (load % × rated capacity); "
         "nan when idle"),
    spec("chiller.cop", _cop, kinds=_CH, unit="-", inputs=("power", "load"),
         description="coefficient of performance = cooling kW / electric kW"),
    spec("cdu.delta_t", _cdu_delta_t, kinds=_CDU, unit="K",
         inputs=("coolant_return_temp", "coolant_supply_temp"),
         description="CDU secondary loop ΔT = return − supply"),
    spec("cdu.supply_error", _cdu_supply_error, kinds=_CDU, unit="K",
         inputs=("coolant_supply_temp", "coolant_supply_setpoint"),
         description="CDU coolant supply above its set point (supply − set point)"),
    spec("chiller.chw_supply_error", _chw_supply_error, kinds=_CH, unit="K",
         inputs=("chw_supply_temp", "chw_supply_setpoint"),
         description="chilled-water supply above its set point (supply − set point)"),
    spec("crah.supply_error", _crah_supply_error, kinds=_CRAH, unit="K",
         inputs=("supply_air_temp", "supply_air_setpoint"),
         description="CRAH supply air above its set point (supply − set point): how far the "
         "unit falls short of the set point it has"),
    spec("crah.delta_t", _crah_delta_t, kinds=_CRAH, unit="K",
         inputs=("return_air_temp", "supply_air_temp"),
         description="CRAH air ΔT = return − supply"),
    spec("const", _const, kinds=None, unit="",
         description="a constant (args: value) — for tests and benchmarks"),
    spec("model.pue_residual", _pue_residual, kinds=None, unit="-", inputs=("plant.pue",),
         description="measured PUE − the calibrated performance model's PUE at the same "
         "operating point"),
    spec("model.cooling_power_residual", _cooling_residual, kinds=None, unit="kW",
         inputs=("plant.cooling_power",),
         description="measured cooling power − the performance model's cooling power (kW)"),
)  # fmt: skip
