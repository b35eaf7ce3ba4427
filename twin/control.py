"""The twin's own control: a BMS with legacy fixed setpoints, and the agent interface.

:class:`NativeControl` is what the plant runs without any agent — the baseline
the eval suite compares the agent against. It has two modes: ``legacy`` (below)
and ``g36``, where the set points nobody wrote follow the Guideline 36-2021 style
resets of :mod:`twin.g36` (chilled-water plant reset of supply temperature and pump
speed by trim & respond from CRAH and CDU valve requests, condenser water on wet
bulb + approach, condenser pump by chiller stage, CRAH fan reset from rack-inlet
requests); staging, tower-fan loop and fan failover are shared. Legacy:

* a chiller ``enable`` the agent or an operator wrote is a start/stop command: 1 runs
  the chiller, and staging stages nothing down while it is held (stage-up still acts);
  0 locks it out; unwritten (native 1) the chiller is available to staging;
* chiller staging, lead/lag 1 → 2 → 3: stage up when the running chillers are
  above 90 % of capacity or the chilled-water supply is 1.5 K over setpoint for
  5 min; stage down when the load would fit in one chiller fewer below 70 % for
  15 min; a tripped or disabled chiller is replaced at once;
* each chiller tracks its ``chw_supply_setpoint`` (legacy 7 °C);
* tower fan: PI on ``ct_1.cw_supply_setpoint`` (legacy 29 °C), 20–100 %; it starts
  when the water is 0.2 K over setpoint and stops when no chiller runs or the water
  is 0.5 K under setpoint at minimum speed (then the tower runs on free convection);
* CHW and CW pumps: constant speed (``speed_setpoint`` 100 %);
* CRAHs: supply air at ``supply_air_setpoint`` (18 °C), fans at
  ``fan_speed_setpoint`` (80 %), and every healthy fan to 100 % when one fails;
* CDU: coolant supply at ``coolant_supply_setpoint`` (27 °C), pump at
  ``pump_speed_setpoint`` (legacy 100 %);
* GPU power cap ``gpu.power_cap`` 100 %.

:class:`AgentInterface` holds the agent's virtual points (device ``agent``):

* ``heartbeat`` — the agent writes a *changing* value (a counter, a clock); a
  write equal to the last one does not count. If no change arrives within
  ``heartbeat_timeout_s`` (site ``agent.rated.heartbeat_timeout_s``, default 120 s)
  of the last change — or of the agent's first setpoint write when it never sent
  one — every setpoint the agent wrote reverts to its native default
  (``reverts`` counts the events) and later agent writes start afresh.
* ``enable`` — the operator's switch: while 0, agent writes are ignored and what
  the agent had written reverts to native defaults.
* ``override_<equipment>__<point>`` — operator override of one writable point:
  while set the point holds the value it had (or the value the operator set via
  :meth:`AgentInterface.operator_set`); agent writes to it are ignored and
  counted in ``ignored_writes``, and the served setpoint shows the held value,
  so the agent can see its write did not take.

Setpoint writes are clamped to the point's write limits (min/max), as a BMS
does; rate limits (max_step, min_interval_s) are the agent's own guard's job.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal

from connectors.site import AGENT_EQUIPMENT, HEARTBEAT_TAG, Site
from twin import physics as ph
from twin.g36 import G36Sequences
from twin.plant import N_CHILLERS, N_CRAHS, Commands, EquipmentFaults, Plant

ControlMode = Literal["legacy", "g36"]
CONTROL_MODES: tuple[ControlMode, ...] = ("legacy", "g36")

NATIVE_DEFAULTS: dict[str, float] = {
    "gpu.power_cap": 100.0,
    **{f"chiller_{i}.enable": 1.0 for i in (1, 2, 3)},
    **{f"chiller_{i}.chw_supply_setpoint": 7.0 for i in (1, 2, 3)},
    "ct_1.cw_supply_setpoint": 29.0,
    "chw_pump_1.speed_setpoint": 100.0,
    "cw_pump_1.speed_setpoint": 100.0,
    **{f"crah_{i}.supply_air_setpoint": 18.0 for i in (1, 2, 3, 4)},
    **{f"crah_{i}.fan_speed_setpoint": 80.0 for i in (1, 2, 3, 4)},
    "cdu_1.coolant_supply_setpoint": 27.0,
    "cdu_1.pump_speed_setpoint": 100.0,
}
"""Legacy fixed setpoints: what every agent-written setpoint reverts to."""

OVERRIDE_PREFIX = "override_"
DEFAULT_HEARTBEAT_TIMEOUT_S = 120.0


def override_tag(tag: str) -> str:
    """``chiller_1.chw_supply_setpoint`` → ``agent.override_chiller_1__chw_supply_setpoint``."""
    eq, point = tag.split(".", 1)
    return f"{AGENT_EQUIPMENT}.{OVERRIDE_PREFIX}{eq}__{point}"


def overridden_tag(flag_tag: str) -> str:
    """Inverse of :func:`override_tag`."""
    name = flag_tag.split(".", 1)[1].removeprefix(OVERRIDE_PREFIX)
    eq, point = name.split("__", 1)
    return f"{eq}.{point}"


class AgentInterface:
    """Agent virtual points: heartbeat, enable, per-point operator overrides."""

    def __init__(self, site: Site | None, timeout_s: float | None = None) -> None:
        self.defaults = dict(NATIVE_DEFAULTS)
        self._limits: dict[str, tuple[float, float]] = {}
        rated_timeout: float | None = None
        if site is not None:
            self.defaults = {t: v for t, v in NATIVE_DEFAULTS.items() if t in site.points_by_tag}
            for t, (_, p) in site.points_by_tag.items():
                if p.write is not None:
                    self._limits[t] = (p.write.min, p.write.max)
            try:
                rated_timeout = site.equipment_by_id(AGENT_EQUIPMENT).rated.get(
                    "heartbeat_timeout_s"
                )
            except KeyError:
                rated_timeout = None
        self.timeout_s = float(timeout_s or rated_timeout or DEFAULT_HEARTBEAT_TIMEOUT_S)
        self.agent_values: dict[str, float] = {}
        self.overrides: dict[str, float] = {}
        self.enable = True
        self.heartbeat = 0.0
        self.last_heartbeat_s: float | None = None
        self._first_write_s: float | None = None
        self.ignored_writes = 0
        self.reverts = 0
        self.now_s = 0.0

    # ---- writes --------------------------------------------------------------
    def write(self, tag: str, value: float) -> bool:
        """A Modbus client wrote ``tag``. Returns whether the write took effect."""
        if tag == HEARTBEAT_TAG:
            if self.last_heartbeat_s is None or value != self.heartbeat:
                self.last_heartbeat_s = self.now_s
            self.heartbeat = value
            return True
        if tag == f"{AGENT_EQUIPMENT}.enable":
            self.enable = value >= 0.5
            if not self.enable:
                self._revert(count=False)
            return True
        if tag.startswith(f"{AGENT_EQUIPMENT}.{OVERRIDE_PREFIX}"):
            self.set_override(overridden_tag(tag), value >= 0.5)
            return True
        if tag not in self.defaults:
            raise KeyError(f"{tag!r} is not a writable setpoint of the twin")
        if not self.enable or tag in self.overrides:
            self.ignored_writes += 1
            return False
        lo, hi = self._limits.get(tag, (-1e9, 1e9))
        self.agent_values[tag] = ph.clamp(float(value), lo, hi)
        if self._first_write_s is None:
            self._first_write_s = self.now_s
        return True

    def relinquish(self, tag: str) -> None:
        """The agent gave its command on ``tag`` up (BACnet relinquish): native control again."""
        self.agent_values.pop(tag, None)

    def set_override(self, tag: str, on: bool, value: float | None = None) -> None:
        """Operator override of ``tag``: hold ``value`` (default: its current value)."""
        if tag not in self.defaults:
            raise KeyError(f"{tag!r} is not a writable setpoint of the twin")
        if on:
            self.overrides[tag] = self.effective(tag) if value is None else float(value)
        else:
            self.overrides.pop(tag, None)

    def operator_set(self, tag: str, value: float) -> None:
        """The operator sets a setpoint at the BMS: it is held as an override."""
        self.set_override(tag, True, value)

    # ---- time ----------------------------------------------------------------
    def tick(self, now_s: float) -> None:
        self.now_s = now_s
        if not self.agent_values:
            return
        ref = self.last_heartbeat_s if self.last_heartbeat_s is not None else self._first_write_s
        if ref is not None and now_s - ref > self.timeout_s:
            self._revert(count=True)

    def _revert(self, count: bool) -> None:
        if self.agent_values and count:
            self.reverts += 1
        self.agent_values.clear()
        self._first_write_s = None

    @property
    def heartbeat_ok(self) -> bool:
        return (
            self.last_heartbeat_s is not None
            and self.now_s - self.last_heartbeat_s <= self.timeout_s
        )

    # ---- reads ---------------------------------------------------------------
    def effective(self, tag: str) -> float:
        if tag in self.overrides:
            return self.overrides[tag]
        if tag in self.agent_values:
            return self.agent_values[tag]
        return self.defaults[tag]

    def setpoints(self) -> dict[str, float]:
        return {t: self.effective(t) for t in self.defaults}

    def written(self) -> set[str]:
        """Set points the agent or an operator holds (the BMS's own value does not apply)."""
        return set(self.agent_values) | set(self.overrides)

    def tags(self) -> dict[str, float]:
        a = AGENT_EQUIPMENT
        v = {
            f"{a}.heartbeat": self.heartbeat,
            f"{a}.heartbeat_ok": float(self.heartbeat_ok),
            f"{a}.enable": float(self.enable),
            f"{a}.ignored_writes": float(self.ignored_writes % 65536),
            f"{a}.reverts": float(self.reverts % 65536),
        }
        for t in self.defaults:
            v[override_tag(t)] = float(t in self.overrides)
        return v


@dataclass
class NativeControl:
    """The BMS's supervisory loops (see the module docstring). ``mode="g36"`` replaces
    the legacy fixed set points the agent and operators have not written by the
    Guideline 36 resets of :mod:`twin.g36` (``active`` holds the values in use)."""

    enabled: bool = True
    mode: ControlMode = "legacy"
    cap_kw: float = 700.0
    chiller_on: list[bool] = field(default_factory=lambda: [True, True, False])
    tower_fan: float = 0.6
    _tower_i: float = 0.6
    _up_s: float = 0.0
    _down_s: float = 0.0
    g36: G36Sequences = field(default_factory=G36Sequences)
    active: dict[str, float] = field(default_factory=dict)

    def commands(
        self,
        plant: Plant,
        sp: Mapping[str, float],
        eq: EquipmentFaults,
        dt: float,
        written: Collection[str] = (),
    ) -> Commands:
        if self.enabled and self.mode == "g36":
            own = self.g36.setpoints(plant, sp, sum(self.chiller_on), dt)
            self.active = {t: v for t, v in own.items() if t in sp and t not in written}
            sp = {**sp, **self.active}
        else:
            self.active = {}
        chw_sp = [sp.get(f"chiller_{i + 1}.chw_supply_setpoint", 7.0) for i in range(N_CHILLERS)]
        if self.enabled:
            held = [f"chiller_{i + 1}.enable" in written for i in range(N_CHILLERS)]
            self._stage(plant, sp, eq, chw_sp, dt, held)
            self._tower(plant, sp.get("ct_1.cw_supply_setpoint", 29.0), dt)
        fans = [sp.get(f"crah_{i + 1}.fan_speed_setpoint", 80.0) / 100.0 for i in range(N_CRAHS)]
        if self.enabled and eq.crah_fan_failed:
            fans = [1.0] * N_CRAHS
        return Commands(
            chiller_on=list(self.chiller_on),
            chw_setpoint=chw_sp,
            tower_fan=self.tower_fan,
            chw_pump_speed=sp.get("chw_pump_1.speed_setpoint", 100.0) / 100.0,
            cw_pump_speed=sp.get("cw_pump_1.speed_setpoint", 100.0) / 100.0,
            crah_supply_setpoint=[
                sp.get(f"crah_{i + 1}.supply_air_setpoint", 18.0) for i in range(N_CRAHS)
            ],
            crah_fan=fans,
            cdu_setpoint=sp.get("cdu_1.coolant_supply_setpoint", 27.0),
            cdu_pump_speed=sp.get("cdu_1.pump_speed_setpoint", 100.0) / 100.0,
            gpu_cap=sp.get("gpu.power_cap", 100.0) / 100.0,
        )

    def _stage(
        self,
        plant: Plant,
        sp: Mapping[str, float],
        eq: EquipmentFaults,
        chw_sp: list[float],
        dt: float,
        held: list[bool] | None = None,
    ) -> None:
        avail = [
            sp.get(f"chiller_{i + 1}.enable", 1.0) >= 0.5 and i not in eq.chiller_tripped
            for i in range(N_CHILLERS)
        ]
        # an enable the agent or an operator wrote is a command: 1 runs the chiller (staging
        # neither waits for a stage-up nor stages any chiller down while it is held: the
        # writer owns the count), 0 locks it out; the native 1 only makes it available
        forced = [avail[i] and bool(held and held[i]) for i in range(N_CHILLERS)]
        before = sum(self.chiller_on)
        self.chiller_on = [
            (self.chiller_on[i] or forced[i]) and avail[i] for i in range(N_CHILLERS)
        ]
        n = sum(self.chiller_on)
        if n < before or n == 0:  # lost one (trip, disable): replace at once
            self._add(avail)
            n = sum(self.chiller_on)
            self._up_s = self._down_s = 0.0
        q = plant.q_chw
        hot = plant.chw_supply > min(chw_sp) + 1.5 and any(plant.chiller_running)
        if n and (q > 0.9 * n * self.cap_kw or hot):
            self._up_s += dt
        else:
            self._up_s = 0.0
        if n > 1 and q < 0.7 * (n - 1) * self.cap_kw and not hot:
            self._down_s += dt
        else:
            self._down_s = 0.0
        if self._up_s >= 300.0:
            self._add(avail)
            self._up_s = 0.0
        if self._down_s >= 900.0 and not any(forced):  # a held start owns the count
            on = [i for i in range(N_CHILLERS) if self.chiller_on[i]]
            self.chiller_on[on[-1]] = False
            self._down_s = 0.0

    def _add(self, avail: list[bool]) -> None:
        for i in range(N_CHILLERS):
            if avail[i] and not self.chiller_on[i]:
                self.chiller_on[i] = True
                return

    def _tower(self, plant: Plant, cw_sp: float, dt: float) -> None:
        if not any(plant.chiller_running):
            self.tower_fan = 0.0
            return
        err = plant.tower_leave - cw_sp
        kp, ki = 0.15, 0.002
        if self.tower_fan <= 0.0 and err < 0.2:  # off until the water is 0.2 K over setpoint
            self._tower_i = 0.2
            return
        self._tower_i = ph.clamp(self._tower_i + ki * err * dt, 0.2, 1.0)
        cmd = kp * err + self._tower_i
        if self._tower_i <= 0.2 and err < -0.5:  # at minimum speed and still too cold
            self.tower_fan = 0.0
        else:
            self.tower_fan = ph.clamp(cmd, 0.2, 1.0)
