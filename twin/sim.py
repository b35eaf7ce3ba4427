"""The twin: plant + native control + agent interface + faults, stepped offline or served.

Offline (tests, evals) — deterministic for a seed, a simulated day at 10 s steps
in a few seconds::

    from twin.sim import Twin
    from twin.faults import Fault

    twin = Twin(seed=1)                     # default site twin/site.yaml, starts warm
    twin.step(600)                          # advance 10 simulated minutes (10 s sub-steps)
    v = twin.values()                       # {tag: value} as served (sensor faults,
                                            #  register quantisation applied)
    fid = twin.inject(Fault(kind="chiller_trip", target="chiller_1"))
    twin.write("chiller_1.chw_supply_setpoint", 9.0)   # as if the agent wrote it over Modbus
    twin.write("agent.heartbeat", 1)                    # keep it: heartbeat must change
    twin.unavailable()                      # tags whose device is in comm loss
    twin.clear(fid)

API (stable — other packages build on it):

* ``Twin(site=None, *, seed=0, start=None, native_control=True, heartbeat_timeout_s=None,
  hold_conditions=False, control="legacy", weather=None, plant=None)``; ``start`` defaults
  to 2026-07-01 00:00 UTC (a summer day; the synthetic weather peaks at 15:00, inference
  load at 14:00); ``now`` is timezone-aware UTC. ``control`` is the BMS's mode:
  ``legacy`` fixed set points or ``g36`` Guideline 36 resets (:mod:`twin.g36`);
  ``weather`` a TMY3 station of :mod:`twin.weather` (e.g. ``"723170TYA"``, its hours
  read as the start's date and hour in local standard time) instead of the synthetic day.
  ``plant`` is the twin's own equipment against its nameplates (:mod:`twin.plantspec`:
  None = ``twin/plant.yaml``, a plant that is *not* the agent's catalogue model;
  ``"catalogue"`` = the model itself; a path or a ``PlantSpec``).
  ``hold_conditions=True`` freezes weather and IT work where they are (for settling tests).
* ``step(dt)``, ``values()``, ``true_values()`` (no sensor faults), ``unavailable()``,
  ``write(tag, value)``, ``inject(fault) -> id``, ``clear(id)``, ``active_faults()``,
  ``operator_override(tag, value | None)``, ``elapsed_s``, ``plant``, ``agent``, ``control``.
* ``native_control=False`` freezes the BMS supervisory loops (staging, tower fan, CRAH
  fan failover) at their start state; equipment-level control (chillers and CDU
  holding their setpoints) still runs.

What is where: physics in :mod:`twin.plant` (the performance model's components plus
first-order dynamics — settled, a catalogue-plant twin sits where
``perfmodel.whatif.steady_state`` says, ``tests/test_twin_whatif.py`` holds it to that; the
default plant departs from it as ``twin/plant.yaml`` states, ``tests/test_plant_model.py``), the BMS and the agent's virtual
points (heartbeat, enable, operator overrides; legacy defaults 7 °C CHW, 29 °C CW,
constant-speed pumps) in :mod:`twin.control`, faults in :mod:`twin.faults`. Sensor
faults corrupt only what is served (the BMS keeps its own good sensors); a device in
comm loss keeps serving nothing new — ``values()`` holds its last values and
``unavailable()`` lists its tags. Served analog readings go through their instruments
(:mod:`twin.sensors`: lag, bias, noise, resolution from the site file's ``sensor``
specs; an exact zero stays zero; readings stay inside the point's min/max), so a live
signal is never perfectly flat; ``true_values()`` has none. ``gpu.gpu_temp_avg`` is the model's die temperature;
``gpu.gpu_temp_max`` adds a 3 K hot spot and is what the GPUs throttle on.

Served (``facility-agent twin``, ``demo``, Modbus tests): :class:`TwinRunner` binds a
twin to a :class:`twin.server.SiteServer`: every tick it steps the twin by
``tick_s × speed`` simulated seconds, copies :meth:`Twin.values` into the register
images, and routes client writes to :meth:`Twin.write`. A device in ``comm_loss``
answers every request with Modbus exception 11 (gateway target device failed to
respond) — what a Modbus TCP gateway does when the serial device behind it is
silent; the TCP connection itself stays up, as it does for a real gateway.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import math
import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.site import DataType, Point, Site, load_site
from twin import default_site_path
from twin.control import CONTROL_MODES, AgentInterface, ControlMode, NativeControl
from twin.faults import Fault, FaultBook
from twin.plant import Plant, PlantConfig
from twin.plantspec import PlantChoice, resolve_plant
from twin.readout import plant_tags
from twin.sensors import Instruments
from twin.weather import load_weather

log = logging.getLogger(__name__)

DEFAULT_START = datetime(2026, 7, 1, tzinfo=UTC)
MAX_SUBSTEP_S = 10.0
WARMUP_S = 3 * 3600.0

_INT_RANGE = {
    DataType.INT16: (-32768, 32767),
    DataType.UINT16: (0, 65535),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
}
_DEFAULT_SITE: Site | None = None
WarmKey = tuple[int, datetime, str, str]
_WARM: dict[WarmKey, tuple[Plant, NativeControl]] = {}
"""Settled plants by everything that settles them: seed, start, the site (its nameplates,
set points and equipment) and the plant configuration. Read-only once stored (a twin
gets a deep copy), so it can be shared by every twin of the process."""


def warm_key(
    seed: int, start: datetime, site: Site, cfg: PlantConfig, conditions: str = ""
) -> WarmKey:
    """The key of a settled plant: two twins share a warm start only when nothing that
    determines it differs (not only the chiller capacity; also the BMS's control mode
    and the weather, in ``conditions``)."""
    fingerprint = hashlib.sha256(site.model_dump_json().encode()).hexdigest()
    return (seed, start, fingerprint, f"{cfg!r}|{conditions}")


def default_site() -> Site:
    """The twin's own site (loaded once per process)."""
    global _DEFAULT_SITE
    if _DEFAULT_SITE is None:
        _DEFAULT_SITE = load_site(default_site_path())
    return _DEFAULT_SITE


def _quantiser(point: Point) -> Callable[[float], float]:
    """What the register image holds for a value: float32 rounding, integer steps, bits."""
    src = point.source
    dt = src.data_type
    if dt in (DataType.BOOL, DataType.BIT):
        return lambda v: 1.0 if v >= 0.5 else 0.0
    if dt is DataType.FLOAT32:
        pack = struct.Struct(">f")
        return lambda v: pack.unpack(pack.pack(v))[0] if math.isfinite(v) else v
    if dt is DataType.FLOAT64:
        return float
    lo, hi = _INT_RANGE[dt]
    scale, offset = src.scale, src.offset
    sentinel = (lo if lo < 0 else hi) * scale + offset

    def q(v: float) -> float:
        if not math.isfinite(v):
            return sentinel
        raw = min(max(round((v - offset) / scale), lo), hi)
        return raw * scale + offset

    return q


class Twin:
    """The simulated data hall (see the module docstring)."""

    def __init__(
        self,
        site: Site | None = None,
        *,
        seed: int = 0,
        start: datetime | None = None,
        native_control: bool = True,
        heartbeat_timeout_s: float | None = None,
        hold_conditions: bool = False,
        control: ControlMode = "legacy",
        weather: str | None = None,
        plant: PlantChoice = None,
    ) -> None:
        self.site = site or default_site()
        self.plant_spec = resolve_plant(plant)
        self.seed = seed
        self.start = start or DEFAULT_START
        if self.start.tzinfo is None:
            self.start = self.start.replace(tzinfo=UTC)
        if control not in CONTROL_MODES:
            raise ValueError(f"control must be one of {list(CONTROL_MODES)}, not {control!r}")
        self.control_mode: ControlMode = control
        s = self.start
        self.weather = (
            load_weather(weather, s.month, s.day, s.hour + s.minute / 60.0 + s.second / 3600.0)
            if weather is not None
            else None
        )
        self.elapsed_s = 0.0
        self.agent = AgentInterface(self.site, heartbeat_timeout_s)
        self.book = FaultBook(self.site, seed)
        cfg = PlantConfig.from_site(self.site, self.plant_spec)
        self.plant, self.control = self._warm(cfg)
        self.plant.hold_conditions = hold_conditions
        self.control.enabled = native_control
        self._quant = {t: _quantiser(p) for t, (_, p) in self.site.points_by_tag.items()}
        self.instruments = Instruments(self.site, seed)
        self._cache: dict[str, float] | None = None
        self._device_tags: dict[str, list[str]] = {}
        for eq in self.site.equipment:  # every tag on the same Modbus device as the equipment
            keys = {p.source.device_key for p in eq.points}
            self._device_tags[eq.id] = [
                t for t, (_, p) in self.site.points_by_tag.items() if p.source.device_key in keys
            ]

    # ---- warm start ------------------------------------------------------------
    def _hour(self, elapsed: float) -> float:
        s = self.start
        return (s.hour + s.minute / 60.0 + s.second / 3600.0 + elapsed / 3600.0) % 24.0

    def _warm(self, cfg: PlantConfig) -> tuple[Plant, NativeControl]:
        """Plant and BMS settled at the start conditions (cached per :func:`warm_key`)."""
        wx = self.weather.key() if self.weather is not None else "synthetic"
        key = warm_key(self.seed, self.start, self.site, cfg, f"{self.control_mode}|{wx}")
        if key not in _WARM:
            plant = Plant(cfg, seed=self.seed, weather=self.weather)
            control = NativeControl(cap_kw=cfg.chiller_cap_kw, mode=self.control_mode)
            hour = self._hour(0.0)
            sp = AgentInterface(self.site).setpoints()
            eq = FaultBook(self.site).equipment(0.0)
            t = -WARMUP_S
            while t < 0:
                cmd = control.commands(plant, sp, eq, MAX_SUBSTEP_S)
                plant.step(t, hour, MAX_SUBSTEP_S, cmd, eq)
                t += MAX_SUBSTEP_S
            plant._wb_due = -math.inf  # fresh wet bulb at the first step
            plant._weather_set = False
            _WARM[key] = (plant, control)
        plant, control = _WARM[key]
        return copy.deepcopy(plant), copy.deepcopy(control)

    # ---- time ------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed_s)

    def step(self, dt: float) -> None:
        """Advance physics, native control, agent watchdog and faults by ``dt`` seconds."""
        if dt < 0:
            raise ValueError(f"dt must be ≥ 0, not {dt}")
        remaining = float(dt)
        while remaining > 1e-9:
            h = min(remaining, MAX_SUBSTEP_S)
            self._substep(h)
            remaining -= h
        self._cache = None

    def _substep(self, h: float) -> None:
        now = self.elapsed_s
        self.agent.tick(now)
        eq = self.book.equipment(now)
        cmd = self.control.commands(
            self.plant, self.agent.setpoints(), eq, h, written=self.agent.written()
        )
        self.plant.step(now, self._hour(now), h, cmd, eq)
        self.elapsed_s = now + h
        self.agent.tick(self.elapsed_s)
        starting = self.book.starting(self.elapsed_s)
        if starting:
            true = self.true_values()
            for e in starting:
                tags = (
                    self._device_tags.get(e.fault.target.split(".", 1)[0], [])
                    if e.fault.kind == "comm_loss"
                    else [e.fault.target]
                )
                e.captured = {t: true[t] for t in tags if t in true}

    # ---- read ------------------------------------------------------------------
    def true_values(self) -> dict[str, float]:
        """Every tag's true value, before sensor faults and register quantisation."""
        v = plant_tags(self.plant)
        v.update(self.agent.setpoints())
        written = self.agent.written()  # a write shows at once, before the BMS's next step
        v.update({t: x for t, x in self.control.active.items() if t not in written})
        v.update(self.agent.tags())
        return v

    def values(self) -> dict[str, float]:
        """Every tag of the site as it would be served: sensor faults applied, values
        quantised as the registers hold them, devices in comm loss frozen at their last
        served values (see :meth:`unavailable`)."""
        if self._cache is None:
            v = self.true_values()
            self.instruments.read(v, self.elapsed_s)
            self.book.apply_sensor(v, self.elapsed_s)
            out: dict[str, float] = {}
            for t, q in self._quant.items():
                if t in v:
                    out[t] = q(v[t])
            for t, val in self.book.frozen(self.elapsed_s).items():
                if t in out:  # a silent device's image keeps its last values
                    out[t] = self._quant[t](val)
            self._cache = out
        return dict(self._cache)

    def unavailable(self) -> set[str]:
        """Tags whose device is in comm loss (it does not answer)."""
        out: set[str] = set()
        for eq_id in self.book.comm_lost(self.elapsed_s):
            out.update(self._device_tags.get(eq_id, []))
        return out

    def offline_devices(self) -> set[tuple[int, int]]:
        """(port, device id) of every device in comm loss."""
        out: set[tuple[int, int]] = set()
        for eq_id in self.book.comm_lost(self.elapsed_s):
            for t in self._device_tags.get(eq_id, []):
                k = self.site.point(t).source.device_key
                out.add((k.port, k.device_id))
        return out

    # ---- write -----------------------------------------------------------------
    def write(self, tag: str, value: float) -> None:
        """A Modbus client wrote ``tag`` (the agent, or an operator's override coil)."""
        point = self.site.point(tag)
        if not point.source.table.writable:
            raise ValueError(f"{tag} is read-only ({point.source.table.value} table)")
        self.agent.write(tag, float(value))
        self._cache = None

    def relinquish(self, tag: str) -> None:
        """The agent gave its command on ``tag`` up (BACnet): native control takes it back."""
        self.agent.relinquish(tag)
        self._cache = None

    def operator_override(self, tag: str, value: float | None) -> None:
        """The operator holds ``tag`` at ``value`` at the BMS (``None`` releases it)."""
        if value is None:
            self.agent.set_override(tag, False)
        else:
            self.agent.operator_set(tag, value)
        self._cache = None

    # ---- faults ----------------------------------------------------------------
    def inject(self, fault: Fault) -> str:
        """Inject ``fault`` (its ``start_s`` counts from now); returns its id."""
        fid = self.book.inject(fault, self.elapsed_s)
        self._cache = None
        return fid

    def clear(self, fault_id: str) -> None:
        self.book.clear(fault_id)
        self._cache = None

    def active_faults(self) -> list[Fault]:
        return self.book.active(self.elapsed_s)


class TwinRunner:
    """Binds a :class:`Twin` to a :class:`twin.server.SiteServer` at ``speed`` × real time."""

    def __init__(
        self,
        twin: Twin,
        server: Any,
        *,
        speed: float = 1.0,
        tick_s: float = 1.0,
        bacnet: Any = None,
    ) -> None:
        if speed <= 0 or tick_s <= 0:
            raise ValueError("speed and tick_s must be > 0")
        self.twin = twin
        self.server = server
        self.bacnet = bacnet  # a twin.bacnet_server.BacnetSiteServer, or None
        if bacnet is not None:
            bacnet.on_command(self._on_command)
        self.speed = speed
        self.tick_s = tick_s
        self.ticks = 0
        self.rejected_writes = 0
        self._offline: set[tuple[int, int]] = set()
        server.on_write(self._on_write)

    def _on_write(self, tag: str, value: float) -> None:
        try:
            self.twin.write(tag, value)
        except (KeyError, ValueError) as err:
            self.rejected_writes += 1
            log.warning("twin ignored a client write to %s: %s", tag, err)
        self.push()  # the image shows at once what the BMS made of the write

    def _on_command(self, tag: str, slots: dict[int, float]) -> None:
        """A BACnet client commanded ``tag``; ``slots`` are its non-null priorities 1–15.

        The highest command wins, as in the device: above the agent's priority it is an
        operator override (the twin holds that value, agent writes are ignored); at or
        below it, the agent's value; none left, native control again."""
        try:
            agent_priority = int(getattr(self.twin.site.point(tag).source, "priority", 13))
            if not slots:
                self.twin.operator_override(tag, None)
                self.twin.relinquish(tag)
            else:
                top = min(slots)
                if top < agent_priority:
                    self.twin.operator_override(tag, slots[top])
                else:
                    self.twin.operator_override(tag, None)
                    self.twin.write(tag, slots[top])
        except (KeyError, ValueError) as err:
            self.rejected_writes += 1
            log.warning("twin ignored a BACnet command to %s: %s", tag, err)
        self.push()

    def _drop_lapsed_commands(self) -> None:
        """A BACnet command the twin does not run (its heartbeat lapsed, the agent is
        disabled) leaves the priority array: the BMS lets it go, so the agent reads back
        what the plant really runs."""
        agent = self.twin.agent
        for tag in self.bacnet.commandable():
            pr = int(getattr(self.twin.site.point(tag).source, "priority", 13))
            if tag in agent.agent_values or tag in agent.overrides:
                continue
            if pr in self.bacnet.slots(tag):
                self.bacnet.drop(tag, pr)

    def push(self) -> None:
        """Copy the twin's served values and device states into the server(s)."""
        values = self.twin.values()
        self.server.set_many(values)
        bacnet_ports: set[int] = set()
        if self.bacnet is not None:
            # a BACnet set point's priority 16 is native control's own value; the agent's
            # and an operator's commands sit above it in the priority array
            self.bacnet.set_many({**values, **self.twin.agent.defaults})
            bacnet_ports = set(self.bacnet.ports)
            self._drop_lapsed_commands()
        offline = self.twin.offline_devices()
        for port, dev in offline ^ self._offline:
            if port in bacnet_ports:
                self.bacnet.set_device_offline(dev, (port, dev) in offline)
            else:
                self.server.set_device_offline(dev, (port, dev) in offline, port=port)
        self._offline = offline

    def tick(self) -> None:
        self.twin.step(self.tick_s * self.speed)
        self.push()
        self.ticks += 1

    async def run(self, duration_s: float | None = None, stop: asyncio.Event | None = None) -> None:
        """Tick at ``tick_s`` wall seconds until ``duration_s`` wall seconds pass or ``stop`` is set."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        self.push()
        n = 0
        while True:
            n += 1
            deadline = t0 + n * self.tick_s
            if duration_s is not None and deadline - t0 > duration_s + 1e-9:
                break
            delay = deadline - loop.time()
            if stop is not None:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=max(delay, 0.0))
                    return
                except TimeoutError:
                    pass
            elif delay > 0:
                await asyncio.sleep(delay)
            self.tick()
