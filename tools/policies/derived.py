"""Derived values a policy condition may reference: ΔT, approach, kW/ton, detector scores.

A policy condition reads either a point, a data-quality score or a *derived value*
by name::

    - derived: chiller.chw_delta_t          # built in (below)
      op: "<"
      value: 2.0
    - derived: fdd.chiller:condenser_fouling   # registered by tools/fdd (H6)
      op: ">"
      value: 0.5

How to plug in (e.g. from ``tools/fdd/``)::

    from tools.policies.derived import DerivedInput, register

    @register("fdd.chiller:condenser_fouling", kinds=("chiller",),
              inputs=("cw_entering_temp", "cw_leaving_temp", "power", "load"),
              unit="score", description="condenser fouling score, 0 = healthy, 1 = certain")
    def condenser_fouling(x: DerivedInput) -> float:
        return my_detector(x.v("cw_leaving_temp"), x.v("power"), ...)

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
  :class:`~connectors.errors.PolicyConfigError`;
* a detector that needs history calls ``x.history(names, seconds)`` (a long
  frame ``ts, tag, value`` of good readings from the store; ``None`` offline)
  and may cache per cycle in ``x.memo`` (shared by every derived call of the
  cycle — compute seven fault scores once, return each from the memo);
* ``args`` (``args: {k: 1.5}`` in the YAML) arrive as ``x.args``.

Modules listed in :data:`PLUGIN_MODULES` are imported before a policy file is
validated, so their ``@register`` calls are in the registry (``tools.fdd``).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from connectors.site import Equipment, Site

#: Modules imported (if present) before policies are validated, so their registrations exist.
PLUGIN_MODULES: tuple[str, ...] = ("tools.fdd",)

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

    def applies_to(self, equipment: Equipment | None) -> bool:
        if self.kinds is None:
            return True
        return equipment is not None and equipment.kind.value in self.kinds

    def input_tags(self, equipment: Equipment | None) -> list[str]:
        if equipment is None:
            return list(self.inputs)
        return [f"{equipment.id}.{n}" for n in self.inputs]


REGISTRY: dict[str, DerivedSpec] = {}


def register(
    name: str,
    *,
    kinds: Sequence[str] | None = None,
    inputs: Sequence[str] = (),
    unit: str = "",
    description: str = "",
) -> Callable[[DerivedFn], DerivedFn]:
    """Decorator: add a derived value to the registry (a later registration replaces it)."""

    def deco(fn: DerivedFn) -> DerivedFn:
        REGISTRY[name] = DerivedSpec(
            name=name,
            fn=fn,
            kinds=frozenset(kinds) if kinds is not None else None,
            inputs=tuple(inputs),
            unit=unit,
            description=description or next(iter((fn.__doc__ or "").strip().splitlines()), ""),
        )
        return fn

    return deco


_plugins_loaded = False


def load_plugins() -> None:
    """Import :data:`PLUGIN_MODULES` once (a module that does not exist yet is skipped)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for mod in PLUGIN_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as err:
            if err.name != mod:
                raise


def get(name: str) -> DerivedSpec:
    load_plugins()
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown derived value {name!r}") from None


def compute(spec: DerivedSpec, x: DerivedInput) -> float:
    """Call a derived function; a missing input or a math error is ``nan``, never a crash."""
    try:
        out = float(spec.fn(x))
    except (ZeroDivisionError, ValueError, KeyError, FloatingPointError):
        return math.nan
    return out


# ---- built-ins -------------------------------------------------------------------------------
TON_KW = 3.516853  # 1 refrigeration ton = 3.516853 kW (12,000 BTU/h)


@register(
    "chiller.chw_delta_t",
    kinds=("chiller",),
    inputs=("chw_return_temp", "chw_supply_temp"),
    unit="K",
    description="chilled-water ΔT = return − supply",
)
def _chw_delta_t(x: DerivedInput) -> float:
    return x.v("chw_return_temp") - x.v("chw_supply_temp")


@register(
    "chiller.cw_delta_t",
    kinds=("chiller",),
    inputs=("cw_leaving_temp", "cw_entering_temp"),
    unit="K",
    description="condenser-water ΔT = leaving − entering",
)
def _cw_delta_t(x: DerivedInput) -> float:
    return x.v("cw_leaving_temp") - x.v("cw_entering_temp")


@register(
    "chiller.lift",
    kinds=("chiller",),
    inputs=("cw_leaving_temp", "chw_supply_temp"),
    unit="K",
    description="temperature lift = condenser leaving − chilled supply",
)
def _lift(x: DerivedInput) -> float:
    return x.v("cw_leaving_temp") - x.v("chw_supply_temp")


def _load_kw(x: DerivedInput) -> float:
    """Cooling delivered in kW: ``load`` is % of the nameplate ``capacity_kw``."""
    cap = x.equipment.rated.get("capacity_kw", math.nan) if x.equipment is not None else math.nan
    return x.v("load") / 100.0 * cap


@register(
    "chiller.kw_per_ton",
    kinds=("chiller",),
    inputs=("power", "load"),
    unit="kW/ton",
    description="electric kW per refrigeration ton delivered (load % × rated capacity); nan when idle",
)
def _kw_per_ton(x: DerivedInput) -> float:
    q = _load_kw(x)
    if not q > 0:
        return math.nan
    return x.v("power") / (q / TON_KW)


@register(
    "chiller.cop",
    kinds=("chiller",),
    inputs=("power", "load"),
    unit="-",
    description="coefficient of performance = cooling kW / electric kW",
)
def _cop(x: DerivedInput) -> float:
    p = x.v("power")
    return _load_kw(x) / p if p > 0 else math.nan


@register(
    "cdu.delta_t",
    kinds=("cdu",),
    inputs=("coolant_return_temp", "coolant_supply_temp"),
    unit="K",
    description="CDU secondary loop ΔT = return − supply",
)
def _cdu_delta_t(x: DerivedInput) -> float:
    return x.v("coolant_return_temp") - x.v("coolant_supply_temp")


@register(
    "cdu.supply_error",
    kinds=("cdu",),
    inputs=("coolant_supply_temp", "coolant_supply_setpoint"),
    unit="K",
    description="CDU coolant supply above its set point (supply − set point)",
)
def _cdu_supply_error(x: DerivedInput) -> float:
    return x.v("coolant_supply_temp") - x.v("coolant_supply_setpoint")


@register(
    "chiller.chw_supply_error",
    kinds=("chiller",),
    inputs=("chw_supply_temp", "chw_supply_setpoint"),
    unit="K",
    description="chilled-water supply above its set point (supply − set point)",
)
def _chw_supply_error(x: DerivedInput) -> float:
    return x.v("chw_supply_temp") - x.v("chw_supply_setpoint")


@register(
    "crah.supply_error",
    kinds=("crah",),
    inputs=("supply_air_temp", "supply_air_setpoint"),
    unit="K",
    description="CRAH supply air above its set point (supply − set point): how far the unit "
    "falls short of the set point it has",
)
def _crah_supply_error(x: DerivedInput) -> float:
    return x.v("supply_air_temp") - x.v("supply_air_setpoint")


@register(
    "crah.delta_t",
    kinds=("crah",),
    inputs=("return_air_temp", "supply_air_temp"),
    unit="K",
    description="CRAH air ΔT = return − supply",
)
def _crah_delta_t(x: DerivedInput) -> float:
    return x.v("return_air_temp") - x.v("supply_air_temp")


@register(
    "const",
    kinds=None,
    inputs=(),
    unit="",
    description="a constant (args: value) — for tests and benchmarks",
)
def _const(x: DerivedInput) -> float:
    return float(x.args.get("value", math.nan))


def _model_now(x: DerivedInput) -> Any:
    """The performance model's steady state for the present readings (once per cycle)."""
    if "model.now" not in x.memo:
        from tools.whatif import check

        x.memo["model.now"] = check(x.site, x.values, [])
    return x.memo["model.now"]


@register(
    "model.pue_residual",
    kinds=None,
    inputs=("plant.pue",),
    unit="-",
    description="measured PUE − the calibrated performance model's PUE at the same operating point",
)
def _pue_residual(x: DerivedInput) -> float:
    return x.v("plant.pue") - float(_model_now(x).pue)


@register(
    "model.cooling_power_residual",
    kinds=None,
    inputs=("plant.cooling_power",),
    unit="kW",
    description="measured cooling power − the performance model's cooling power (kW)",
)
def _cooling_residual(x: DerivedInput) -> float:
    return x.v("plant.cooling_power") - float(_model_now(x).cooling_kw)


def describe() -> list[dict[str, Any]]:
    """The registry as JSON-able rows (for the LLM's tool descriptions and docs)."""
    load_plugins()
    return [
        {
            "name": s.name,
            "kinds": sorted(s.kinds) if s.kinds is not None else None,
            "inputs": list(s.inputs),
            "unit": s.unit,
            "description": s.description,
        }
        for s in sorted(REGISTRY.values(), key=lambda s: s.name)
    ]
