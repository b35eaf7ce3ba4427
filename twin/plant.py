"""The data hall's physical state and its dynamics (no control, no I/O).

:class:`Plant` holds the state of every piece of equipment and advances it with
:meth:`Plant.step` under actuator :class:`Commands` (from :mod:`twin.control`) and
:class:`EquipmentFaults` (from :mod:`twin.faults`).

The physics is the performance model's (:mod:`perfmodel`): every state moves
towards the steady state its component functions give — DOE-2/EnergyPlus EIR
chillers, the CoolTools tower correlation, affinity-law pumps and fans with VFD
and motor efficiency, the CDU/GPU thermal chain and DVFS, CRAH supply air and
recirculation, UPS/PDU/transformer losses, Peukert battery runtime — through a
first-order lag whose time constant stands for a thermal mass or an actuator
(the ``TAU_*`` constants, seconds). The equipment itself is the plant file's
(:mod:`twin.plantspec`, ``PlantConfig``'s ``*_factor`` fields and ``chiller_curves``):
with the catalogue plant the twin settles where :func:`perfmodel.whatif.steady_state`
says it will; the default plant departs from it as a real one does. Faults play out
physically: a fouled condenser raises the condenser approach (the chiller sees
warmer condenser water) and its kW; a lost CDU pump raises GPU temperatures
until the GPUs throttle.

Heat path: GPUs → CDU coolant (liquid share) and room air (the rest, plus
PDU/UPS losses and fan heat) → CDU exchanger and CRAH coils → chilled-water
loop (plus CHW pump heat) → running chillers → condenser water → cooling tower
→ outdoor wet bulb. Power path: utility → transformer → UPS (→ battery on
utility loss) → PDUs → IT, with the CDU pump on the UPS; chillers, tower fan,
CHW/CW pumps and CRAH fans on the transformer (in a utility loss the CRAH fans
ride the UPS, the rest stops).

:meth:`Plant.tags` gives the true value of every point of the twin's site.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perfmodel import air, chiller, liquid, power, pumps, tower
from perfmodel.plant import solve_state
from twin import physics as ph
from twin.config import PlantConfig

TAU_GPU = 2.0
TAU_DIE = 10.0
TAU_PUMP = 5.0
TAU_FAN = 10.0
TAU_COOLANT = 60.0
TAU_COOLANT_RETURN = 20.0
TAU_CRAH_SUPPLY = 60.0
TAU_RACK = 30.0
TAU_CHW_RETURN = 120.0
TAU_CHILLER = 60.0
TAU_CHILLER_OFF = 300.0
TAU_CW = 30.0
TAU_TOWER = 180.0
TAU_WINDING = 1800.0
TAU_SMOKE = 20.0
CHILLER_RAMP_S = 120.0  # start to full capacity
C_LOCAL_KJ_K = 30_000.0  # water in the CDU exchanger, CRAH coils and branch piping (≈7 m3)
SHUTDOWN_MARGIN_C = 15.0  # GPUs power off this far above the throttle temperature
THROTTLE_GAIN = 0.001  # 1/(K·s): cap fraction per kelvin-second over the target
HOTSPOT_K = 3.0  # hottest GPU die over the mean (manufacturing spread, flow distribution)
FREE_CONVECTION = 0.125  # tower air-flow ratio with the fan off (EnergyPlus default)
RHO_CP_WATER = liquid.CP_WATER * liquid.RHO_WATER / 1e6  # kJ/(L·K)
RHO_CP_AIR = air.RHO_AIR * air.CP_AIR / 1000.0  # kJ/(m3·K)
N_CHILLERS = 3
N_CRAHS = 4

__all__ = ["Commands", "EquipmentFaults", "Plant", "PlantConfig"]


def scalar(x: object) -> float:
    """The single value of a numpy result (0-d or 1-element)."""
    return float(np.asarray(x).reshape(-1)[0])


class _Reuse:
    """Reuse the last result of an expensive model call while every input stays within
    its tolerance of the inputs it was computed for (the model's numpy calls on scalars
    dominate a step; slow-moving inputs do not need a fresh evaluation every 10 s)."""

    def __init__(self, tol: tuple[float, ...]) -> None:
        self.tol = tol
        self.key: tuple[float, ...] | None = None
        self.value: Any = None

    def get(self, key: tuple[float, ...], fn: Callable[[], Any]) -> Any:
        k = self.key
        if k is None or any(abs(a - b) > t for a, b, t in zip(key, k, self.tol, strict=True)):
            self.value = fn()
            self.key = key
        return self.value


@dataclass
class Commands:
    """Actuator commands from the BMS (:mod:`twin.control`). Fractions 0–1, temps degC."""

    chiller_on: list[bool] = field(default_factory=lambda: [True, True, False])
    chw_setpoint: list[float] = field(default_factory=lambda: [7.0] * N_CHILLERS)
    tower_fan: float = 0.6
    chw_pump_speed: float = 1.0
    cw_pump_speed: float = 1.0
    crah_supply_setpoint: list[float] = field(default_factory=lambda: [18.0] * N_CRAHS)
    crah_fan: list[float] = field(default_factory=lambda: [0.8] * N_CRAHS)
    cdu_setpoint: float = 27.0
    cdu_pump_speed: float = 1.0
    gpu_cap: float = 1.0


@dataclass
class EquipmentFaults:
    """The physical effect of the active equipment faults (built by :mod:`twin.faults`)."""

    chiller_tripped: set[int] = field(default_factory=set)
    fouling: dict[int, float] = field(default_factory=dict)
    pump_failed: set[str] = field(default_factory=set)  # "chw", "cw", "cdu"
    crah_fan_failed: set[int] = field(default_factory=set)
    cdu_flow_loss: float = 0.0
    utility_lost: bool = False
    leak_zone: int = 0
    it_surge: float = 0.0
    smoke: float = 0.0


def _tower_reference_flow(cfg: PlantConfig) -> float:
    """Tower water flow (L/s) at the CoolTools correlation's reference (as perfmodel sizes it)."""
    return cfg.cw_pump_flow_ls / float(solve_state(cfg.plant_state()).tower.tower_fr_water[0])


@dataclass
class Plant:
    """State of the whole hall. ``step`` advances it; ``tags`` reads it out."""

    cfg: PlantConfig
    seed: int = 0
    hold_conditions: bool = False  # weather and IT work stay as they are (what-if tests)
    # real weather: seconds since the twin's start → (dry bulb °C, RH %, wet bulb °C);
    # None = the synthetic summer day
    weather: Callable[[float], tuple[float, float, float]] | None = None
    # weather
    t_db: float = 28.0
    rh: float = 55.0
    wb: float = 21.2
    _wx_offset: float = 0.0
    _wb_due: float = -math.inf
    _weather_set: bool = False
    # IT
    training: float = 0.65
    inference: float = 0.15
    _job_until: float = -math.inf
    demand_kw: float = 790.0
    it_kw: float = 790.0
    slowdown: float = 1.0
    throttle_cap: float = 1.0
    die_avg: float = 58.0
    die_max: float = 61.0
    cold_plate: float = 40.0
    shutdown: bool = False
    # power chain
    soc: float = 100.0
    winding: float = 60.0
    ups_out: float = 0.0
    ups_in: float = 0.0
    ups_loss_kw: float = 0.0
    pdu_loss_kw: float = 0.0
    tx_load: float = 0.0
    tx_loss_kw: float = 0.0
    facility_kw: float = 0.0
    cooling_kw: float = 0.0
    battery_kw: float = 0.0
    # pumps and fans
    chw_pump: float = 1.0
    cw_pump: float = 1.0
    cdu_pump: float = 1.0
    tower_kw: float = 0.0
    chw_pump_kw: float = 0.0
    cw_pump_kw: float = 0.0
    cdu_pump_kw: float = 0.0
    # CDU
    cdu_supply: float = 27.0
    cdu_return: float = 33.0
    q_liquid: float = 630.0
    # air side
    crah_fan: list[float] = field(default_factory=lambda: [0.8] * N_CRAHS)
    crah_fan_kw: list[float] = field(default_factory=lambda: [4.4] * N_CRAHS)
    crah_supply: list[float] = field(default_factory=lambda: [18.0] * N_CRAHS)
    crah_return: list[float] = field(default_factory=lambda: [30.0] * N_CRAHS)
    crah_q: list[float] = field(default_factory=lambda: [65.0] * N_CRAHS)
    crah_valve: list[float] = field(default_factory=lambda: [0.5] * N_CRAHS)
    rack_inlet: list[float] = field(default_factory=lambda: [18.6] * N_CRAHS)
    q_air: float = 260.0
    # chilled water
    chw_return: float = 10.6
    chw_supply: float = 7.0
    chw_local: float = 7.0
    q_chw: float = 900.0
    chiller_running: list[bool] = field(default_factory=lambda: [True, True, False])
    chiller_ramp: list[float] = field(default_factory=lambda: [1.0, 1.0, 0.0])
    chiller_leave: list[float] = field(default_factory=lambda: [7.0, 7.0, 10.0])
    chiller_cap: list[float] = field(default_factory=lambda: [730.0] * N_CHILLERS)
    chiller_q: list[float] = field(default_factory=lambda: [450.0, 450.0, 0.0])
    chiller_p: list[float] = field(default_factory=lambda: [69.0, 69.0, 0.0])
    chiller_chw_flow: list[float] = field(default_factory=lambda: [30.0, 30.0, 0.0])
    chiller_cw_flow: list[float] = field(default_factory=lambda: [36.0, 36.0, 0.0])
    chiller_cw_leave: list[float] = field(default_factory=lambda: [30.6, 30.6, 27.2])
    # condenser water / tower
    tower_leave: float = 27.2
    cw_return: float = 30.6
    tower_fan: float = 0.0
    q_rej: float = 1040.0
    # safety
    smoke: float = 0.005
    leak_zone: int = 0
    utility_lost: bool = False
    faults: EquipmentFaults = field(default_factory=EquipmentFaults)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._tower_ref_flow = _tower_reference_flow(self.cfg)
        # kW of load / K / flow ratios: stale results stay within ~0.1 % of the model's
        self._chiller_memo = _Reuse((0.5,) * N_CHILLERS + (0.005,) * (2 * N_CHILLERS))
        self._tower_memo = _Reuse((0.005, 0.005, 0.001, 0.001))
        self._pump_memo = _Reuse((1e-4,) * (3 + N_CRAHS))

    # ------------------------------------------------------------ weather & load
    def _weather(self, t_s: float, hour: float, dt: float) -> None:
        if self.hold_conditions and self._weather_set:
            return
        if self.weather is not None:
            self.t_db, self.rh, self.wb = self.weather(t_s)
            self._weather_set = True
            return
        d = ph.diurnal(hour, 15.0)
        self._wx_offset = ph.lag(self._wx_offset, self._rng.gauss(0.0, 1.5), dt, 3 * 3600.0)
        self.t_db = 29.0 + 6.0 * d + self._wx_offset
        self.rh = ph.clamp(58.0 - 18.0 * d - 2.0 * self._wx_offset, 15.0, 100.0)
        if t_s >= self._wb_due:  # wet bulb is iterative: once a simulated minute is plenty
            self.wb = scalar(tower.wet_bulb(self.t_db, self.rh))
            self._wb_due = t_s + 60.0
            self._weather_set = True

    def _jobs(self, t_s: float, hour: float) -> None:
        if self.hold_conditions and self._job_until > -math.inf:
            return
        if t_s >= self._job_until:  # a training job ends, the scheduler fills the cluster again
            self.training = self._rng.uniform(0.55, 0.75)
            self._job_until = max(t_s, 0.0) + self._rng.uniform(2.0, 10.0) * 3600.0
        self.inference = 0.08 + 0.06 * (ph.diurnal(hour, 14.0) + 1.0)

    # ------------------------------------------------------------ the step
    def step(self, t_s: float, hour: float, dt: float, cmd: Commands, eq: EquipmentFaults) -> None:
        """Advance ``dt`` seconds (≤ ~10 s for fidelity) at simulated time ``t_s``/``hour``."""
        c = self.cfg
        self.faults = eq
        self._weather(t_s, hour, dt)
        self._jobs(t_s, hour)
        self._it(dt, cmd, eq)

        # -- pumps (VFD ramps; a failed pump stops); CHW/CW pumps are not on the UPS
        mech = not eq.utility_lost
        chw_cmd = cmd.chw_pump_speed if ("chw" not in eq.pump_failed and mech) else 0.0
        cw_cmd = cmd.cw_pump_speed if ("cw" not in eq.pump_failed and mech) else 0.0
        cdu_cmd = cmd.cdu_pump_speed if "cdu" not in eq.pump_failed else 0.0
        self.chw_pump = ph.lag(self.chw_pump, chw_cmd, dt, TAU_PUMP)
        self.cw_pump = ph.lag(self.cw_pump, cw_cmd, dt, TAU_PUMP)
        self.cdu_pump = ph.lag(self.cdu_pump, cdu_cmd, dt, TAU_PUMP)
        chw_flow = c.chw_flow_ls * self.chw_pump
        cw_flow = c.cw_flow_ls * self.cw_pump
        cdu_frac = self.cdu_pump * (1.0 - ph.clamp(eq.cdu_flow_loss, 0.0, 1.0))
        cdu_flow = c.cdu_flow_ls * cdu_frac
        fans = [0.0 if i in eq.crah_fan_failed else cmd.crah_fan[i] for i in range(N_CRAHS)]
        self.crah_fan = [ph.lag(self.crah_fan[i], fans[i], dt, TAU_FAN) for i in range(N_CRAHS)]
        self.tower_fan = ph.lag(self.tower_fan, cmd.tower_fan if mech else 0.0, dt, TAU_FAN)
        # electric power of pumps and fans (affinity laws, VFD and motor efficiency)
        speeds = (self.chw_pump, self.cw_pump, self.cdu_pump, *self.crah_fan)
        rated = [
            c.chw_pump_kw * c.chw_pump_power_factor,
            c.cw_pump_kw * c.cw_pump_power_factor,
            c.cdu_pump_kw,
        ] + [c.crah_fan_kw] * N_CRAHS
        kw = self._pump_memo.get(
            speeds, lambda: pumps.electric_power(np.array(rated), np.array(speeds)).tolist()
        )
        self.chw_pump_kw, self.cw_pump_kw = kw[0], kw[1]
        self.cdu_pump_kw = kw[2] * (1.0 - 0.5 * eq.cdu_flow_loss)
        self.crah_fan_kw = kw[3:]
        self.tower_kw = (
            scalar(tower.fan_power(c.tower_fan_kw, self.tower_fan))
            if self.tower_fan > 0.01
            else 0.0
        )

        # -- power chain (losses heat the hall)
        self.pdu_loss_kw = (
            scalar(power.pdu_loss(self.it_kw, c.pdu_rated_kw, 1.0)) * c.pdu_loss_fraction
        )
        fans_on_ups = sum(self.crah_fan_kw) if eq.utility_lost else 0.0
        self.ups_out = self.it_kw + self.pdu_loss_kw + self.cdu_pump_kw + fans_on_ups
        self.ups_loss_kw = scalar(power.ups_loss(self.ups_out, c.ups_capacity_kw))

        # -- water at the CDU exchanger and CRAH coils: the loop's supply while it flows;
        # without flow it heats up with the load it can no longer carry away
        short = ph.clamp(1.0 - chw_flow / (0.3 * c.chw_flow_ls), 0.0, 1.0)
        local = ph.lag(self.chw_local, self.chw_supply, dt, TAU_CHILLER)
        self.chw_local = min(local + short * self.q_chw / C_LOCAL_KJ_K * dt, 70.0)

        self._cdu(dt, cmd, cdu_flow, cdu_frac)
        self._air(dt, cmd)

        # -- chilled water loop and chillers
        self.q_chw = self.q_liquid + self.cdu_pump_kw + sum(self.crah_q) + self.chw_pump_kw
        self._chillers(dt, cmd, eq, chw_flow, cw_flow, mech)
        self._tower(dt, cw_flow)

        # -- totals
        mech_kw = sum(self.chiller_p) + self.tower_kw + self.chw_pump_kw + self.cw_pump_kw
        self.cooling_kw = mech_kw + sum(self.crah_fan_kw) + self.cdu_pump_kw
        self.utility_lost = eq.utility_lost
        if eq.utility_lost:
            self.battery_kw = self.ups_out + self.ups_loss_kw
            self.soc = max(0.0, self.soc - self.battery_kw / c.battery_kwh * 100.0 * dt / 3600.0)
            self.ups_in = 0.0
            self.tx_load = 0.0
        else:
            charge = 0.05 * c.battery_kwh if self.soc < 100.0 else 0.0
            self.soc = min(100.0, self.soc + charge / c.battery_kwh * 100.0 * dt / 3600.0)
            self.battery_kw = -charge
            self.ups_in = self.ups_out + self.ups_loss_kw + charge
            self.tx_load = self.ups_in + mech_kw + sum(self.crah_fan_kw)
        kva = self.tx_load / c.power_factor
        self.tx_loss_kw = (
            scalar(power.transformer_loss(kva, c.tx_rated_kva, c.tx_nl_kw, c.tx_ll_kw))
            if mech
            else 0.0
        )
        hot = ph.winding_hotspot(self.tx_load, c.tx_rated_kva, self.t_db + 5.0, c.power_factor)
        self.winding = ph.lag(self.winding, hot, dt, TAU_WINDING)
        self.facility_kw = self.tx_load + self.tx_loss_kw

        # -- safety devices
        self.leak_zone = eq.leak_zone
        self.smoke = ph.lag(self.smoke, max(eq.smoke, 0.005), dt, TAU_SMOKE)

    def _it(self, dt: float, cmd: Commands, eq: EquipmentFaults) -> None:
        """Cluster power: work-driven demand under the DVFS cap and the thermal throttle."""
        c = self.cfg
        activity = ph.clamp(self.training * 0.95 + self.inference * 0.6 + eq.it_surge, 0.0, 1.0)
        self.demand_kw = c.gpu_rated_kw * (c.gpu_idle_share + (1.0 - c.gpu_idle_share) * activity)
        cap_kw = min(cmd.gpu_cap, self.throttle_cap) * c.gpu_rated_kw
        target = min(self.demand_kw, max(cap_kw, c.gpu_idle_share * c.gpu_rated_kw))
        if self.soc <= 0.0 or self.shutdown:  # battery exhausted / thermal trip: load dropped
            target = 0.0
        self.it_kw = ph.lag(self.it_kw, target, dt, TAU_GPU)
        if target >= self.demand_kw:
            self.slowdown = 1.0
        elif target > 0:
            f = liquid.clock_for_power_cap(
                np.array([target, self.demand_kw]), c.gpu_rated_kw, c.gpu_idle_share
            )
            self.slowdown = float(f[0] / f[1]) if f[1] > 0 else 1.0
        else:
            self.slowdown = 0.0
        self.q_liquid = c.liquid_fraction * self.it_kw

    def _cdu(self, dt: float, cmd: Commands, cdu_flow: float, cdu_frac: float) -> None:
        """CDU coolant loop and the GPU thermal chain (perfmodel.liquid)."""
        c = self.cfg
        heat = self.q_liquid + self.cdu_pump_kw  # pump work ends up in the coolant
        sup_target = max(cmd.cdu_setpoint, self.chw_local + c.cdu_approach_c)
        self.cdu_supply = ph.lag(self.cdu_supply, sup_target, dt, TAU_COOLANT)
        ret = min(
            scalar(liquid.coolant_return_temp(self.cdu_supply, heat, max(cdu_flow, 0.05))), 95.0
        )
        self.cdu_return = ph.lag(self.cdu_return, ret, dt, TAU_COOLANT_RETURN)
        heat_w = self.q_liquid * 1000.0 / c.gpus
        m_gpu = max(cdu_flow, 0.05) * liquid.RHO_WATER / 1000.0 / c.gpus
        half = 0.5 * c.r_th_k_per_w
        r_th = scalar(liquid.thermal_resistance(max(cdu_frac, 0.05), half, half))
        die = min(scalar(liquid.die_temperature(self.cdu_supply, heat_w, m_gpu, r_th)), 130.0)
        self.die_avg = ph.lag(self.die_avg, die, dt, TAU_DIE)
        self.die_max = ph.lag(self.die_max, min(die + HOTSPOT_K, 130.0), dt, TAU_DIE)
        plate = die - heat_w * half  # cold-plate surface: die minus the conduction drop
        self.cold_plate = ph.lag(self.cold_plate, plate, dt, TAU_DIE)
        if self.die_max > c.throttle_temp_c + SHUTDOWN_MARGIN_C:  # hardware protection trips
            self.shutdown = True
        elif self.shutdown and self.die_max < c.throttle_temp_c - 10.0:
            self.shutdown = False
        # firmware clock-down: integral action holding the hottest die 1 K under the threshold
        err = self.die_max - (c.throttle_temp_c - 1.0)
        if err > 0.0 or self.throttle_cap < 1.0:
            self.throttle_cap = ph.clamp(self.throttle_cap - THROTTLE_GAIN * err * dt, 0.3, 1.0)

    def _air(self, dt: float, cmd: Commands) -> None:
        """CRAHs, zones and rack inlets (perfmodel.air). A zone gets 70 % of its own CRAH's
        air and 10 % of each other CRAH's; shortfall against the racks' airflow recirculates."""
        c = self.cfg
        flows = [c.crah_airflow_m3s * s for s in self.crah_fan]
        v_tot = max(sum(flows), 0.05)
        air_it = self.it_kw - self.q_liquid
        self.q_air = air_it + self.pdu_loss_kw + self.ups_loss_kw + sum(self.crah_fan_kw)
        room_dt = min(self.q_air / (RHO_CP_AIR * v_tot), 30.0)
        sat = air.supply_air_temp(
            np.array(cmd.crah_supply_setpoint), self.chw_local, c.crah_coil_approach_c
        ).tolist()
        for i in range(N_CRAHS):
            tgt = sat[i] if flows[i] > 0.05 else self.crah_return[i]
            self.crah_supply[i] = ph.lag(self.crah_supply[i], tgt, dt, TAU_CRAH_SUPPLY)
        mean_supply = sum(flows[i] * self.crah_supply[i] for i in range(N_CRAHS)) / v_tot
        # racks' airflow (perfmodel: IT air heat + fan heat over the server ΔT)
        demand = (air_it + sum(self.crah_fan_kw)) / (RHO_CP_AIR * c.server_dt_k) / N_CRAHS
        v_eff, t_seen = [], []
        for i in range(N_CRAHS):
            self.crah_q[i] = self.q_air * flows[i] / v_tot
            self.crah_return[i] = ph.lag(
                self.crah_return[i], mean_supply + room_dt, dt, TAU_CRAH_SUPPLY
            )
            cap_now = 90.0 * max(self.crah_return[i] - self.chw_local, 0.5) / 15.0
            self.crah_valve[i] = (
                ph.clamp(self.crah_q[i] / cap_now, 0.0, 1.0) if flows[i] > 0.05 else 0.0
            )
            others = [j for j in range(N_CRAHS) if j != i]
            v = 0.7 * flows[i] + 0.1 * sum(flows[j] for j in others)
            v_eff.append(v)
            t_seen.append(
                (
                    0.7 * flows[i] * self.crah_supply[i]
                    + 0.1 * sum(flows[j] * self.crah_supply[j] for j in others)
                )
                / v
                if v > 1e-6
                else mean_supply
            )
        r = air.recirculation_share(np.array(v_eff), demand, c.recirculation_base)
        inlet = air.rack_inlet_temp(np.array(t_seen), c.server_dt_k, r).tolist()
        for i in range(N_CRAHS):
            self.rack_inlet[i] = ph.lag(self.rack_inlet[i], min(inlet[i], 60.0), dt, TAU_RACK)

    def _chillers(
        self,
        dt: float,
        cmd: Commands,
        eq: EquipmentFaults,
        chw_flow: float,
        cw_flow: float,
        mech: bool,
    ) -> None:
        """Chillers (perfmodel.chiller EIR model) on a headered chilled-water loop."""
        c = self.cfg
        can_run = [
            cmd.chiller_on[i] and i not in eq.chiller_tripped and mech for i in range(N_CHILLERS)
        ]
        n_req = sum(can_run)
        # flow switches: a chiller without enough evaporator/condenser flow stays off
        if n_req and (
            chw_flow / n_req < 0.3 * c.chiller_chw_flow_ls
            or cw_flow / n_req < 0.3 * c.chiller_cw_flow_ls
        ):
            can_run = [False] * N_CHILLERS
            n_req = 0
        for i in range(N_CHILLERS):
            if can_run[i] and not self.chiller_running[i]:
                self.chiller_ramp[i] = 0.0
            self.chiller_running[i] = can_run[i]
            self.chiller_ramp[i] = (
                min(1.0, self.chiller_ramp[i] + dt / CHILLER_RAMP_S) if can_run[i] else 0.0
            )
            self.chiller_chw_flow[i] = chw_flow / n_req if can_run[i] else 0.0
            self.chiller_cw_flow[i] = cw_flow / n_req if can_run[i] else 0.0
        # return header: supply + load / (flow · cp), lagged by the loop's water volume
        ret_target = min(self.chw_supply + self.q_chw / (RHO_CP_WATER * max(chw_flow, 1.0)), 60.0)
        self.chw_return = ph.lag(self.chw_return, ret_target, dt, TAU_CHW_RETURN)
        q = [0.0] * N_CHILLERS
        for i in range(N_CHILLERS):
            if can_run[i]:
                f = self.chiller_chw_flow[i]
                cap = self.chiller_cap[i] * self.chiller_ramp[i]
                tgt = max(cmd.chw_setpoint[i], self.chw_return - cap / (RHO_CP_WATER * f))
                self.chiller_leave[i] = ph.lag(self.chiller_leave[i], tgt, dt, TAU_CHILLER)
                q[i] = max(0.0, f * RHO_CP_WATER * (self.chw_return - self.chiller_leave[i]))
            else:
                self.chiller_leave[i] = ph.lag(
                    self.chiller_leave[i], self.chw_return, dt, TAU_CHILLER_OFF
                )
        # a fouled condenser runs warmer than the water entering it: the chiller sees a higher lift
        t_cw = [
            self.tower_leave + c.fouling_approach_k * eq.fouling.get(i, 0.0)
            for i in range(N_CHILLERS)
        ]
        leave = list(self.chiller_leave)

        def model() -> tuple[list[float], list[float]]:
            res = chiller.chiller_performance(
                c.chiller_curves, np.array(q), np.array(leave), np.array(t_cw),
                capacity_kw=c.chiller_cap_kw * c.chiller_cap_factor,
                cop=c.chiller_cop * c.chiller_cop_factor,
            )  # fmt: skip
            return res.capacity_kw.tolist(), res.power_kw.tolist()

        cap, p_kw = self._chiller_memo.get((*q, *leave, *t_cw), model)
        self.chiller_cap = list(cap)
        self.chiller_q = [q[i] if can_run[i] else 0.0 for i in range(N_CHILLERS)]
        self.chiller_p = [float(p_kw[i]) if can_run[i] else 0.0 for i in range(N_CHILLERS)]
        if n_req:
            self.chw_supply = sum(
                self.chiller_chw_flow[i] * self.chiller_leave[i] for i in range(N_CHILLERS)
            ) / max(sum(self.chiller_chw_flow), 1e-6)
        else:  # no chiller: the loop only mixes
            self.chw_supply = ph.lag(self.chw_supply, self.chw_return, dt, TAU_CHW_RETURN)

    def _tower(self, dt: float, cw_flow: float) -> None:
        """Condenser water and the tower (perfmodel.tower, CoolTools correlation)."""
        self.q_rej = sum(self.chiller_q[i] + self.chiller_p[i] for i in range(N_CHILLERS))
        rng = self.q_rej / (RHO_CP_WATER * cw_flow) if cw_flow > 0.5 else 0.0
        fr_w = max(cw_flow / self._tower_ref_flow, 0.05)
        # a fouled fill moves less air at the same fan speed (twin.plantspec)
        fr_air = max(self.tower_fan, FREE_CONVECTION) * self.cfg.tower_air_factor
        wb = self.wb
        target = (
            self._tower_memo.get(
                (wb, rng, fr_w, fr_air),
                lambda: scalar(tower.leaving_water_temp(wb, rng, fr_w, fr_air)),
            )
            if rng > 0
            else wb + 1.0
        )
        self.tower_leave = ph.lag(self.tower_leave, max(target, self.wb), dt, TAU_TOWER)
        for i in range(N_CHILLERS):
            g = self.chiller_cw_flow[i]
            rise = (self.chiller_q[i] + self.chiller_p[i]) / (RHO_CP_WATER * g) if g > 0.5 else 0.0
            self.chiller_cw_leave[i] = ph.lag(
                self.chiller_cw_leave[i], min(self.tower_leave + rise, 60.0), dt, TAU_CW
            )
        g_tot = sum(self.chiller_cw_flow)
        self.cw_return = (
            sum(self.chiller_cw_flow[i] * self.chiller_cw_leave[i] for i in range(N_CHILLERS))
            / g_tot
            if g_tot > 0.5
            else self.tower_leave
        )
