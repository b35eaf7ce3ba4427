"""Guideline 36-2021 style plant sequences for the twin's BMS (``--control g36``).

The fair baseline (issue 15): what a competent BMS running ASHRAE Guideline 36-2021
sequences (and ASHRAE 90.1's variable flow and supply-temperature reset) does with the
same plant, without any agent. Every loop is a :mod:`twin.trim_respond` reset
(§5.1.14) fed by requests computed from what the BMS measures:

* **Chilled-water plant reset** (G36 chiller-plant sequences, as in OBC's
  ``ChilledWaterPlantReset``/``ChilledWaterSupply`` blocks): one trim & respond
  variable 0–100 % (SP0 100 %, Td 15 min, T 5 min, I 2, SPtrim −2 %, SPres +3 %,
  SPres-max +7 %) from the chilled-water reset requests of the coils it serves. Its
  first half raises the pump differential-pressure set point from minimum to maximum,
  its second half lowers the supply temperature set point from maximum (14 °C, the
  chillers' and the site's limit) to design (7 °C). The twin's loop has no DP sensor:
  the DP set point is carried as the pump speed it yields (speed ∝ √DP at fixed
  valves), from the larger of the pump's minimum speed and the running chillers'
  minimum evaporator flow (with 20 % margin) to 100 %.
* **Requests** (G36 cooling-coil "chilled water reset requests", AHU sequences
  §5.16): per CRAH coil 3 requests when its supply air is 3 K over set point for
  2 min, 2 when 2 K over for 2 min, else 1 while its valve is over 95 % (until it
  falls under 85 %). The CDU's exchanger is a coil too: its "valve" is the share of
  the exchanger's driving temperature difference the load needs (design approach over
  coolant set point minus chilled water), the same rules on its coolant supply.
* **Condenser water** tracks the outdoor wet bulb plus the tower's design approach
  (4 K) through tower fan speed, between the site's minimum condenser-water set point
  and 29 °C; the condenser pump runs at the design flow of the running chillers
  (G36: condenser pump speed by chiller stage), at least its minimum speed.
* **CRAH fans** on supply air and pressure: one trim & respond fan-speed set point
  (SP0 80 %, 40–100 %, Td 10 min, T 2 min, I 0, SPtrim −2 %, SPres +3 %, SPres-max
  +7 %) from the zones' cooling requests — per rack inlet 3 requests at 3 K over its
  24 °C set point, 2 at 2 K, 1 at 0.5 K — as G36 resets duct static pressure from the
  zones' requests, never under the containment-pressure floor (the CRAHs supply 5 %
  more air than the racks draw: :func:`containment_floor`); every healthy fan to
  100 % when one fails (as legacy).
* **Chiller staging** is the legacy BMS's capacity staging (:class:`twin.control.NativeControl`),
  which already follows G36's part-load-ratio logic in spirit (stage up over 90 %
  of running capacity or a supply 1.5 K over set point for 5 min, down under 70 %
  for 15 min).

* **CDU pump** on constant coolant ΔT at design (the variable-flow control CDU vendors
  ship next to constant flow and constant differential pressure): the pump delivers the
  flow that carries the measured coolant heat at the design ΔT — the cluster's rated
  liquid heat over the CDU's design flow, 8 K here (800 kW at 24 L/s) — between the
  pump's minimum speed (60 %, the site's write minimum) and 100 %. A steady-state ΔT
  loop (the flow a PI on return − supply settles at). Why this and not DP or flow:
  cold plates have no control valves, so a DP or flow set point "at design" is a fixed
  speed — 100 %, what G36 ran before — and would leave the baseline wasting pump energy
  no competent engineer would; constant ΔT at design follows the load, runs the design
  flow at the rated load, and at part load the GPU dies run cooler than at the rated
  load on design flow (the rise over the coolant, q/(2ṁc_p), stays at half the design
  ΔT; the die-to-coolant term q·R_th(ṁ) falls, as q ∝ ṁ and R_th ∝ ṁ^−0.8 at most): it is
  safe by construction, and it is the strongest fair baseline, not a strawman. With the
  controller's high limit: coolant supply 1 K over its set point runs the pump at full speed
  (back under 0.5 K, constant ΔT again) — without it, G36 throttled the GPUs for 4 minutes
  in twin-day-faults' utility loss.

Supply air (18 °C) and coolant (27 °C) set points stay as the IT side needs them. Any set
point the agent or an operator wrote takes precedence over the reset's value (the BMS's own
value returns when the agent's write reverts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from twin import physics as ph
from twin.plant import N_CHILLERS, N_CRAHS, RHO_CP_AIR, RHO_CP_WATER, Plant
from twin.trim_respond import TrimRespond, TrimRespondLoop

PLANT_RESET = TrimRespond(
    sp0=1.0, spmin=0.0, spmax=1.0, td=900.0, t=300.0, i=2, sptrim=-0.02, spres=0.03, spres_max=0.07
)
FAN_RESET = TrimRespond(
    sp0=0.8, spmin=0.4, spmax=1.0, td=600.0, t=120.0, i=0, sptrim=-0.02, spres=0.03, spres_max=0.07
)
CHWST_MIN_C = 7.0
CHWST_MAX_C = 14.0
CWST_MAX_C = 29.0
CWST_MIN_C = 20.0
TOWER_APPROACH_K = 4.0
RACK_INLET_SETPOINT_C = 24.0
REQUEST_PERSIST_S = 120.0
CONTAINMENT_MARGIN = 1.05
CDU_PUMP_MIN = 0.6  # the CDU pump's minimum speed (the site's write minimum)
CDU_HIGH_LIMIT_K = 1.0  # coolant supply this far over its set point: the CDU pump to full speed


@dataclass
class CoilRequests:
    """Chilled-water reset requests of one coil (G36 cooling-coil request rules)."""

    _over3_s: float = 0.0
    _over2_s: float = 0.0
    _valve_request: bool = False

    def step(self, supply_excess_k: float, valve: float, dt: float) -> int:
        """Requests now, for a coil whose supply is ``supply_excess_k`` over set point and
        whose valve is ``valve`` (0–1) open."""
        self._over3_s = self._over3_s + dt if supply_excess_k > 3.0 else 0.0
        self._over2_s = self._over2_s + dt if supply_excess_k > 2.0 else 0.0
        if valve > 0.95:
            self._valve_request = True
        elif valve < 0.85:
            self._valve_request = False
        if self._over3_s >= REQUEST_PERSIST_S:
            return 3
        if self._over2_s >= REQUEST_PERSIST_S:
            return 2
        return 1 if self._valve_request else 0


def zone_requests(inlet_c: float, setpoint_c: float = RACK_INLET_SETPOINT_C) -> int:
    """Cooling requests of one rack row from its inlet temperature (G36 zone requests)."""
    over = inlet_c - setpoint_c
    if over > 3.0:
        return 3
    if over > 2.0:
        return 2
    return 1 if over > 0.5 else 0


def plant_reset_setpoints(reset: float, dp_min_speed: float) -> tuple[float, float]:
    """(CHW supply set point °C, CHW pump speed 0–1) for a plant reset of 0–1: the first
    half raises the DP (speed) from minimum to maximum, the second half lowers the supply
    temperature from its maximum to design."""
    r = ph.clamp(reset, 0.0, 1.0)
    speed = dp_min_speed + (1.0 - dp_min_speed) * min(r / 0.5, 1.0)
    chwst = CHWST_MAX_C - (CHWST_MAX_C - CHWST_MIN_C) * max((r - 0.5) / 0.5, 0.0)
    return chwst, speed


def cdu_valve(plant: Plant, setpoint_c: float) -> float:
    """The CDU exchanger's equivalent valve position: the share of the driving temperature
    difference (coolant set point − chilled water) its design approach needs."""
    drive = setpoint_c - plant.chw_local
    if drive <= 0.0:
        return 1.0
    return ph.clamp(plant.cfg.cdu_approach_c / drive, 0.0, 1.0)


def cdu_design_delta_t(plant: Plant) -> float:
    """The CDU loop's design ΔT (K): the cluster's rated liquid heat at the design flow."""
    c = plant.cfg
    return c.liquid_fraction * c.gpu_rated_kw / (RHO_CP_WATER * c.cdu_flow_ls)


def cdu_pump_speed(plant: Plant) -> float:
    """The CDU pump speed (0–1) that carries the coolant's heat (GPU liquid heat plus the
    pump's own work) at the design ΔT: constant-ΔT variable flow, within its speed range."""
    c = plant.cfg
    heat = plant.q_liquid + plant.cdu_pump_kw
    flow = heat / (RHO_CP_WATER * cdu_design_delta_t(plant))
    return ph.clamp(flow / c.cdu_flow_ls, CDU_PUMP_MIN, 1.0)


def containment_floor(plant: Plant) -> float:
    """The CRAH fan speed (0–1) that keeps the hot/cold-aisle containment at a slight
    positive pressure: the CRAHs supply :data:`CONTAINMENT_MARGIN` more air than the
    racks draw (their air-side heat, fan heat included, over the servers' ΔT). The twin
    has no pressure sensor; the airflow balance is what a containment ΔP loop holds."""
    c = plant.cfg
    air_kw = plant.it_kw - plant.q_liquid + sum(plant.crah_fan_kw)
    demand_m3s = max(air_kw, 0.0) / (RHO_CP_AIR * c.server_dt_k)
    return CONTAINMENT_MARGIN * demand_m3s / (N_CRAHS * c.crah_airflow_m3s)


@dataclass
class G36Sequences:
    """The G36 loops' state; :meth:`setpoints` gives the BMS's own set points for a step."""

    plant_reset: TrimRespondLoop = field(default_factory=lambda: TrimRespondLoop(PLANT_RESET))
    fan_reset: TrimRespondLoop = field(default_factory=lambda: TrimRespondLoop(FAN_RESET))
    crah_coils: list[CoilRequests] = field(
        default_factory=lambda: [CoilRequests() for _ in range(N_CRAHS)]
    )
    cdu_coil: CoilRequests = field(default_factory=CoilRequests)
    chw_requests: int = 0
    zone_requests: int = 0
    cdu_high_limit: bool = False  # coolant supply over its set point: the CDU pump at full speed

    def setpoints(
        self, plant: Plant, sp: Mapping[str, float], n_chillers_on: int, dt: float
    ) -> dict[str, float]:
        """The G36 values (in the site's units: °C and %) of the plant's set points."""
        c = plant.cfg
        req = 0
        for i in range(N_CRAHS):
            sat_sp = sp.get(f"crah_{i + 1}.supply_air_setpoint", 18.0)
            req += self.crah_coils[i].step(plant.crah_supply[i] - sat_sp, plant.crah_valve[i], dt)
        cdu_sp = sp.get("cdu_1.coolant_supply_setpoint", 27.0)
        req += self.cdu_coil.step(plant.cdu_supply - cdu_sp, cdu_valve(plant, cdu_sp), dt)
        self.chw_requests = req
        on = n_chillers_on > 0
        reset = self.plant_reset.step(req, dt, on)
        chw_min = max(0.4, 1.2 * 0.5 * n_chillers_on * c.chiller_chw_flow_ls / c.chw_pump_flow_ls)
        chwst, chw_speed = plant_reset_setpoints(reset, min(chw_min, 1.0))
        cw_speed = ph.clamp(n_chillers_on * c.chiller_cw_flow_ls / c.cw_pump_flow_ls, 0.5, 1.0)
        cwst = ph.clamp(plant.wb + TOWER_APPROACH_K, CWST_MIN_C, CWST_MAX_C)
        zreq = sum(zone_requests(t) for t in plant.rack_inlet)
        self.zone_requests = zreq
        fan = self.fan_reset.step(zreq, dt, True)
        floor = containment_floor(plant)
        if fan < floor:  # the containment's pressure: never less air than the racks draw
            fan = self.fan_reset.sp = min(floor, FAN_RESET.spmax)
        out = {
            **{f"chiller_{i + 1}.chw_supply_setpoint": chwst for i in range(N_CHILLERS)},
            "chw_pump_1.speed_setpoint": 100.0 * chw_speed,
            "cw_pump_1.speed_setpoint": 100.0 * cw_speed,
            "ct_1.cw_supply_setpoint": cwst,
            **{f"crah_{i + 1}.fan_speed_setpoint": 100.0 * fan for i in range(N_CRAHS)},
            "cdu_1.pump_speed_setpoint": 100.0 * self._cdu_pump(plant, cdu_sp),
        }
        return out

    def _cdu_pump(self, plant: Plant, cdu_sp: float) -> float:
        """Constant ΔT, with the CDU controller's high limit: coolant supply more than
        :data:`CDU_HIGH_LIMIT_K` over its set point (the chilled water cannot hold it — a
        chiller trip, a utility loss) runs the pump at full speed until it is back within half
        of that: all the flow there is for the GPU dies while the coolant is warm."""
        over = plant.cdu_supply - cdu_sp
        if over > CDU_HIGH_LIMIT_K:
            self.cdu_high_limit = True
        elif over < 0.5 * CDU_HIGH_LIMIT_K:
            self.cdu_high_limit = False
        return 1.0 if self.cdu_high_limit else cdu_pump_speed(plant)
