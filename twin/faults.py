"""Faults the twin can play out: sensor faults on served values, equipment faults in the physics.

A :class:`Fault` names its ``kind``, a ``target`` (a tag for sensor faults, an
equipment id for equipment faults and ``comm_loss``), when it starts
(``start_s`` seconds after it is injected — for a scenario file, after the twin
starts), how long it lasts (``duration_s``, ``None`` = until cleared) and a
``magnitude`` whose meaning depends on the kind (defaults in :data:`DEFAULT_MAGNITUDE`):

==========================  ======================================================
sensor ``stuck``            value frozen at its served reading when the fault began
sensor ``drift``            offset growing by ``magnitude`` units per hour
sensor ``noise``            Gaussian noise, standard deviation ``magnitude`` units
sensor ``spike``            each read, with 3 % probability, ±``magnitude`` units
sensor ``bias``             a fixed offset of ``magnitude`` units from the start (a knocked
                            or mis-calibrated transmitter)
sensor ``flapping``         a state input that toggles: each read, with probability
                            ``magnitude`` (0.3), the opposite of the true state
sensor ``dropout``          each read, with probability ``magnitude`` (0.3), the device's
                            "no value" marker (NaN for floats, −32768 / 65535 raw for
                            int16 / uint16, 0 for booleans)
``comm_loss`` (equipment)   the device stops answering (Modbus exception 11 when served)
``chiller_trip``            the chiller trips and stays tripped until cleared
``condenser_fouling``       fouling 0–1 raises the condenser approach (+6 K at 1)
``pump_failure``            the pump (or CDU pump) stops
``crah_fan_failure``        the CRAH fan stops
``cdu_pump_degradation``    the CDU loses ``magnitude`` (0–1) of its coolant flow
``utility_loss``            utility gone: UPS on battery, chillers restart on generator
``leak``                    leak detected in zone ``magnitude``
``it_load_surge``           IT activity up by ``magnitude`` (0–1, of the cluster)
``vesda_alarm``             smoke at ``magnitude`` %obs/m (0.2 = fire 1)
==========================  ======================================================

Command line form: ``KIND:TARGET[:start_s[:magnitude]]`` (:func:`parse_fault_spec`).
Scenario file (YAML, :func:`load_scenario`)::

    name: fouling-then-trip
    faults:
      - {kind: condenser_fouling, target: chiller_1, start_s: 600, magnitude: 0.6}
      - {kind: chiller_trip, target: chiller_2, start_s: 3600, duration_s: 1800}
      - {kind: stuck, target: chiller_1.chw_supply_temp, start_s: 0}
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.config import describe_validation_error, read_yaml_mapping
from connectors.errors import ScenarioConfigError
from connectors.site import DataType, Site
from twin.plant import EquipmentFaults


class FaultKind(StrEnum):
    STUCK = "stuck"
    DRIFT = "drift"
    NOISE = "noise"
    SPIKE = "spike"
    DROPOUT = "dropout"
    BIAS = "bias"
    FLAPPING = "flapping"
    COMM_LOSS = "comm_loss"
    CHILLER_TRIP = "chiller_trip"
    CONDENSER_FOULING = "condenser_fouling"
    PUMP_FAILURE = "pump_failure"
    CRAH_FAN_FAILURE = "crah_fan_failure"
    CDU_PUMP_DEGRADATION = "cdu_pump_degradation"
    UTILITY_LOSS = "utility_loss"
    LEAK = "leak"
    IT_LOAD_SURGE = "it_load_surge"
    VESDA_ALARM = "vesda_alarm"

    @property
    def is_sensor(self) -> bool:
        return self in SENSOR_KINDS


SENSOR_KINDS = frozenset(
    {
        FaultKind.STUCK,
        FaultKind.DRIFT,
        FaultKind.NOISE,
        FaultKind.SPIKE,
        FaultKind.DROPOUT,
        FaultKind.BIAS,
        FaultKind.FLAPPING,
    }
)

DEFAULT_MAGNITUDE: dict[FaultKind, float] = {
    FaultKind.STUCK: 0.0,
    FaultKind.DRIFT: 1.0,
    FaultKind.NOISE: 0.5,
    FaultKind.SPIKE: 10.0,
    FaultKind.DROPOUT: 0.3,
    FaultKind.BIAS: 2.0,
    FaultKind.FLAPPING: 0.3,
    FaultKind.COMM_LOSS: 0.0,
    FaultKind.CHILLER_TRIP: 0.0,
    FaultKind.CONDENSER_FOULING: 0.6,
    FaultKind.PUMP_FAILURE: 0.0,
    FaultKind.CRAH_FAN_FAILURE: 0.0,
    FaultKind.CDU_PUMP_DEGRADATION: 0.75,
    FaultKind.UTILITY_LOSS: 0.0,
    FaultKind.LEAK: 3.0,
    FaultKind.IT_LOAD_SURGE: 0.3,
    FaultKind.VESDA_ALARM: 0.25,
}

# equipment kinds each equipment fault applies to (by equipment id prefix)
_EQUIPMENT_TARGETS: dict[FaultKind, tuple[str, ...]] = {
    FaultKind.CHILLER_TRIP: ("chiller_",),
    FaultKind.CONDENSER_FOULING: ("chiller_",),
    FaultKind.PUMP_FAILURE: ("chw_pump_", "cw_pump_", "cdu_"),
    FaultKind.CRAH_FAN_FAILURE: ("crah_",),
    FaultKind.CDU_PUMP_DEGRADATION: ("cdu_",),
    FaultKind.UTILITY_LOSS: ("ups_",),
    FaultKind.LEAK: ("leak_",),
    FaultKind.IT_LOAD_SURGE: ("gpu",),
    FaultKind.VESDA_ALARM: ("vesda_",),
    FaultKind.COMM_LOSS: ("",),
}


class Fault(BaseModel):
    """One fault. ``start_s`` counts from injection; ``duration_s=None`` lasts until cleared."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FaultKind
    target: str = Field(min_length=1, description="tag (sensor faults) or equipment id")
    start_s: float = Field(0.0, ge=0)
    duration_s: float | None = Field(None, gt=0)
    magnitude: float | None = None
    id: str | None = Field(None, description="assigned on injection when absent")

    @property
    def size(self) -> float:
        """The magnitude, or the kind's default."""
        return DEFAULT_MAGNITUDE[self.kind] if self.magnitude is None else self.magnitude


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "scenario"
    description: str = ""
    faults: list[Fault] = Field(default_factory=list)


def check_target(fault: Fault, site: Site) -> None:
    """Raise :class:`ScenarioConfigError` when the fault's target does not fit the site."""
    if fault.kind.is_sensor:
        if fault.target not in site.points_by_tag:
            raise ScenarioConfigError(
                f"{fault.kind.value} fault: target {fault.target!r} is not a point tag of site "
                f"{site.name!r} (expected <equipment>.<point>)"
            )
        return
    eq_ids = {eq.id for eq in site.equipment}
    eq = fault.target.split(".", 1)[0] if fault.kind is FaultKind.COMM_LOSS else fault.target
    if eq not in eq_ids:
        raise ScenarioConfigError(
            f"{fault.kind.value} fault: target {fault.target!r} is not an equipment id of "
            f"site {site.name!r}"
        )
    prefixes = _EQUIPMENT_TARGETS[fault.kind]
    if not any(eq.startswith(p) for p in prefixes):
        raise ScenarioConfigError(
            f"{fault.kind.value} fault: target {fault.target!r} must be one of "
            f"{sorted(i for i in eq_ids if any(i.startswith(p) for p in prefixes))}"
        )


def parse_fault_spec(spec: str) -> Fault:
    """Parse ``KIND:TARGET[:start_s[:magnitude]]`` (the ``--fault`` option)."""
    parts = spec.split(":")
    if not 2 <= len(parts) <= 4:
        raise ScenarioConfigError(f"--fault {spec!r}: expected KIND:TARGET[:start_s[:magnitude]]")
    data: dict[str, Any] = {"kind": parts[0], "target": parts[1]}
    try:
        if len(parts) >= 3 and parts[2] != "":
            data["start_s"] = float(parts[2])
        if len(parts) == 4 and parts[3] != "":
            data["magnitude"] = float(parts[3])
    except ValueError as err:
        raise ScenarioConfigError(f"--fault {spec!r}: {err}") from None
    try:
        return Fault.model_validate(data)
    except ValidationError as err:
        raise ScenarioConfigError(describe_validation_error(err, f"--fault {spec!r}")) from None


def parse_scenario(data: Any, origin: str = "<scenario>") -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        raise ScenarioConfigError(describe_validation_error(err, origin)) from None


def load_scenario(path: str | Path) -> Scenario:
    """Load a scenario YAML file; errors name the file and the field."""
    data, origin = read_yaml_mapping(path, ScenarioConfigError)
    return parse_scenario(data, origin=origin)


# --------------------------------------------------------------------------- runtime


@dataclass
class _Entry:
    fault: Fault
    on_s: float  # twin seconds when it becomes active
    captured: dict[str, float] = field(default_factory=dict)
    started: bool = False
    reading: float | None = None  # stuck: the served reading it froze at

    def active(self, now_s: float) -> bool:
        d = self.fault.duration_s
        return self.on_s <= now_s and (d is None or now_s < self.on_s + d)


_PUMPS = {"chw_pump_1": "chw", "cw_pump_1": "cw", "cdu_1": "cdu"}


def _index(eq_id: str) -> int:
    """``chiller_2`` → 1."""
    return int(eq_id.rsplit("_", 1)[1]) - 1


class FaultBook:
    """The faults injected into one twin, and what they do at a given moment."""

    def __init__(self, site: Site, seed: int = 0) -> None:
        self.site = site
        self._rng = random.Random(seed + 7919)
        self._entries: dict[str, _Entry] = {}
        self._n = 0

    def inject(self, fault: Fault, now_s: float) -> str:
        check_target(fault, self.site)
        self._n += 1
        fid = fault.id or f"{fault.kind.value}-{self._n}"
        if fid in self._entries:
            raise ScenarioConfigError(f"fault id {fid!r} is already injected")
        self._entries[fid] = _Entry(fault.model_copy(update={"id": fid}), now_s + fault.start_s)
        return fid

    def clear(self, fault_id: str) -> None:
        if self._entries.pop(fault_id, None) is None:
            raise KeyError(f"no fault {fault_id!r} (active: {sorted(self._entries)})")

    def faults(self) -> list[Fault]:
        return [e.fault for e in self._entries.values()]

    def active(self, now_s: float) -> list[Fault]:
        return [e.fault for e in self._entries.values() if e.active(now_s)]

    def starting(self, now_s: float) -> list[_Entry]:
        """Entries that became active and have not captured their start values yet."""
        out = []
        for e in self._entries.values():
            if not e.started and e.active(now_s):
                e.started = True
                out.append(e)
        return out

    def equipment(self, now_s: float) -> EquipmentFaults:
        eq = EquipmentFaults()
        for e in self._entries.values():
            if not e.active(now_s) or e.fault.kind.is_sensor:
                continue
            f, k, t = e.fault, e.fault.kind, e.fault.target
            if k is FaultKind.CHILLER_TRIP:
                eq.chiller_tripped.add(_index(t))
            elif k is FaultKind.CONDENSER_FOULING:
                eq.fouling[_index(t)] = max(0.0, f.size)
            elif k is FaultKind.PUMP_FAILURE:
                eq.pump_failed.add(_PUMPS.get(t, t))
            elif k is FaultKind.CRAH_FAN_FAILURE:
                eq.crah_fan_failed.add(_index(t))
            elif k is FaultKind.CDU_PUMP_DEGRADATION:
                eq.cdu_flow_loss = min(1.0, max(eq.cdu_flow_loss, f.size))
            elif k is FaultKind.UTILITY_LOSS:
                eq.utility_lost = True
            elif k is FaultKind.LEAK:
                eq.leak_zone = max(1, int(f.size))
            elif k is FaultKind.IT_LOAD_SURGE:
                eq.it_surge += f.size
            elif k is FaultKind.VESDA_ALARM:
                eq.smoke = max(eq.smoke, f.size)
        return eq

    def comm_lost(self, now_s: float) -> set[str]:
        """Equipment ids whose device does not answer."""
        return {
            e.fault.target.split(".", 1)[0]
            for e in self._entries.values()
            if e.fault.kind is FaultKind.COMM_LOSS and e.active(now_s)
        }

    def frozen(self, now_s: float) -> dict[str, float]:
        """Values captured when each active comm loss began (its device's last image)."""
        out: dict[str, float] = {}
        for e in self._entries.values():
            if e.fault.kind is FaultKind.COMM_LOSS and e.active(now_s):
                out.update(e.captured)
        return out

    def apply_sensor(self, values: dict[str, float], now_s: float) -> None:
        """Corrupt ``values`` in place as the active sensor faults do."""
        for e in self._entries.values():
            f = e.fault
            if not f.kind.is_sensor or not e.active(now_s) or f.target not in values:
                continue
            t, m = f.target, f.size
            if f.kind is FaultKind.STUCK:
                if e.reading is None:  # the first read after it began: what the sensor showed
                    e.reading = values[t]
                values[t] = e.reading
            elif f.kind is FaultKind.BIAS:
                values[t] += m
            elif f.kind is FaultKind.FLAPPING:
                if self._rng.random() < m:
                    values[t] = 0.0 if values[t] >= 0.5 else 1.0
            elif f.kind is FaultKind.DRIFT:
                values[t] += m * (now_s - e.on_s) / 3600.0
            elif f.kind is FaultKind.NOISE:
                values[t] += self._rng.gauss(0.0, m)
            elif f.kind is FaultKind.SPIKE:
                if self._rng.random() < 0.03:
                    values[t] += m if self._rng.random() < 0.5 else -m
            elif f.kind is FaultKind.DROPOUT and self._rng.random() < m:
                values[t] = no_value(self.site, t)


def no_value(site: Site, tag: str) -> float:
    """What a device serves for a sensor it cannot read: NaN, or its integer marker."""
    src = site.point(tag).source
    raw = {DataType.INT16: -32768.0, DataType.UINT16: 65535.0, DataType.INT32: -2147483648.0}.get(
        src.data_type
    )
    if src.data_type in (DataType.BOOL, DataType.BIT):
        return 0.0
    if raw is None:
        return math.nan
    return raw * src.scale + src.offset
