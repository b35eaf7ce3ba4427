"""The site model: site → equipment → points, loaded from YAML and validated.

A point knows what it measures (unit, Brick class, physical range), how often it
is polled, where it lives on the wire (a Modbus register or a BACnet object property,
with per-device connection defaults under ``device_defaults``) and,
when it is writable, the limits every write is held to.

A bad file never yields a traceback: :func:`load_site` raises
:class:`SiteConfigError` whose message names the file and the field, e.g.
``site.yaml: equipment[3].points[7].address: must be ≤ 65535``.

Example (YAML)::

    name: hall-a
    equipment:
      - id: chiller_1
        kind: chiller
        points:
          - name: chw_supply_temp
            unit: degC
            brick: Chilled_Water_Supply_Temperature_Sensor
            min: 0
            max: 30
            source: {host: 127.0.0.1, port: 5020, device_id: 10, table: input,
                     address: 0, data_type: float32}
          - name: chw_supply_setpoint
            unit: degC
            min: 4
            max: 18
            source: {host: 127.0.0.1, port: 5020, device_id: 10, table: holding,
                     address: 100, data_type: float32}
            write: {min: 5, max: 14, max_step: 1.0, min_interval_s: 60}
"""

from __future__ import annotations

import builtins
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from connectors.config import describe_validation_error, read_yaml_mapping
from connectors.errors import NonFiniteValue, SiteConfigError
from connectors.schedule_config import ScheduleConfig

IDENT = r"^[A-Za-z_][A-Za-z0-9_\-]*$"


class EquipmentKind(StrEnum):
    CHILLER = "chiller"
    COOLING_TOWER = "cooling_tower"
    PUMP = "pump"
    CRAH = "crah"
    CDU = "cdu"
    GPU_CLUSTER = "gpu_cluster"
    UPS = "ups"
    TRANSFORMER = "transformer"
    PDU = "pdu"
    LEAK_DETECTOR = "leak_detector"
    VESDA = "vesda"
    AHU = "ahu"
    WEATHER = "weather"
    PLANT = "plant"
    AGENT = "agent"
    METER = "meter"
    OTHER = "other"


#: Id of the agent's own virtual equipment on a site (heartbeat, enable, operator overrides).
AGENT_EQUIPMENT = "agent"
#: The point the agent writes a changing value to while it is alive; when it stops
#: changing, the plant reverts every agent-written set point.
HEARTBEAT_TAG = f"{AGENT_EQUIPMENT}.heartbeat"


class Table(StrEnum):
    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE = "discrete"

    @property
    def is_bit_table(self) -> bool:
        return self in (Table.COIL, Table.DISCRETE)

    @property
    def writable(self) -> bool:
        return self in (Table.HOLDING, Table.COIL)


class DataType(StrEnum):
    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    BIT = "bit"  # one bit of a 16-bit register; `bit` selects it (0 = LSB)

    @property
    def registers(self) -> int:
        """Registers (16-bit words) the type occupies; 1 for bit-table booleans."""
        return _REGISTERS[self]


_REGISTERS = {
    DataType.BOOL: 1,
    DataType.INT16: 1,
    DataType.UINT16: 1,
    DataType.BIT: 1,
    DataType.INT32: 2,
    DataType.UINT32: 2,
    DataType.FLOAT32: 2,
    DataType.FLOAT64: 4,
}


class Order(StrEnum):
    """Byte order inside a register, or word order across registers."""

    BIG = "big"
    LITTLE = "little"


class _Strict(BaseModel):
    # every number in a site file is finite: NaN or ±inf limits would let any write through
    model_config = ConfigDict(
        extra="forbid", frozen=True, use_enum_values=False, allow_inf_nan=False
    )


class ModbusSource(_Strict):
    """Where a point lives on a Modbus TCP device.

    ``byte_order`` orders the two bytes of each register, ``word_order`` the
    registers of a multi-register value. Real devices ship all four layouts:
    ABCD (big/big), CDAB (big bytes, little words), BADC (little bytes, big
    words) and DCBA (little/little). ``layout`` is a shorthand for both.
    """

    protocol: Literal["modbus"] = Field(
        "modbus", description="modbus (the default): a Modbus TCP register"
    )
    host: str = "127.0.0.1"
    port: int = Field(502, ge=1, le=65535)
    device_id: int = Field(1, ge=0, le=255)
    table: Table
    address: int = Field(ge=0, le=65535)
    data_type: DataType = DataType.UINT16
    bit: int | None = Field(None, ge=0, le=15)
    byte_order: Order = Order.BIG
    word_order: Order = Order.BIG
    scale: float = 1.0
    offset: float = 0.0

    @model_validator(mode="before")
    @classmethod
    def _layout(cls, data: Any) -> Any:
        if isinstance(data, dict) and "layout" in data:
            data = dict(data)
            layout = str(data.pop("layout")).upper()
            orders = {
                "ABCD": ("big", "big"),
                "CDAB": ("big", "little"),
                "BADC": ("little", "big"),
                "DCBA": ("little", "little"),
            }
            if layout not in orders:
                raise _FieldError("layout", f"must be one of {sorted(orders)}, not {layout!r}")
            data.setdefault("byte_order", orders[layout][0])
            data.setdefault("word_order", orders[layout][1])
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ModbusSource:
        if self.table.is_bit_table and self.data_type is not DataType.BOOL:
            raise ValueError(f"{self.table.value} table holds single bits: data_type must be bool")
        if not self.table.is_bit_table and self.data_type is DataType.BOOL:
            raise ValueError(
                "bool lives in a coil/discrete table; use data_type: bit for a register bit"
            )
        if self.data_type is DataType.BIT and self.bit is None:
            raise ValueError("data_type bit needs `bit` (0–15)")
        if self.data_type is not DataType.BIT and self.bit is not None:
            raise ValueError("`bit` is only for data_type bit")
        if self.scale == 0:
            raise ValueError("scale must not be 0")
        end = self.address + self.register_count - 1
        if end > 65535:
            raise _FieldError(
                "address",
                f"{self.data_type.value} at address {self.address} ends at {end}, past 65535",
            )
        return self

    @property
    def register_count(self) -> int:
        return 1 if self.table.is_bit_table else self.data_type.registers

    @property
    def device_key(self) -> DeviceKey:
        return DeviceKey(self.host, self.port, self.device_id)


class DeviceKey(tuple[str, int, int]):
    """(host, port, device id): one Modbus device, one poll loop."""

    def __new__(cls, host: str, port: int, device_id: int) -> DeviceKey:
        return super().__new__(cls, (host, port, device_id))

    @property
    def host(self) -> str:
        return self[0]

    @property
    def port(self) -> int:
        return self[1]

    @property
    def device_id(self) -> int:
        return self[2]

    def __str__(self) -> str:
        return f"{self[0]}:{self[1]}/{self[2]}"


#: BACnet object types a point may reference, and the Modbus-like table each behaves as
#: (input: read-only measurement; holding: commandable analog; discrete/coil: binary).
BACNET_OBJECT_TABLES: dict[str, Table] = {
    "analog-input": Table.INPUT,
    "analog-output": Table.HOLDING,
    "analog-value": Table.HOLDING,
    "binary-input": Table.DISCRETE,
    "binary-output": Table.COIL,
    "binary-value": Table.COIL,
    "multi-state-input": Table.INPUT,
    "multi-state-value": Table.HOLDING,
}
#: Object types whose present-value is commandable (a priority array, relinquish).
BACNET_COMMANDABLE = frozenset(
    {"analog-output", "analog-value", "binary-output", "binary-value", "multi-state-value"}
)
#: Priority the agent writes at unless a device or point says otherwise (BACnet's
#: "available" level below the operator's manual 8 and above native control's 16).
DEFAULT_BACNET_PRIORITY = 13


def _host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"address must be HOST:PORT (port 1–65535), not {address!r}")
    return host, int(port)


class BacnetSource(_Strict):
    """Where a point lives on a BACnet/IP device: one property of one object.

    ``object`` is ``"TYPE,INSTANCE"`` as BACnet tools print it (``analog-input,3``).
    Analog and binary *value*/*output* objects are commandable: the agent writes them at
    ``priority`` and relinquishes (writes null there) to hand control back.
    """

    protocol: Literal["bacnet"] = Field(description="bacnet: a BACnet/IP object property")
    address: str = Field(description="the device's BACnet/IP address, HOST:PORT (UDP)")
    device: int = Field(ge=0, le=4194302, description="the device's instance number")
    object: str = Field(
        description="object identifier TYPE,INSTANCE, e.g. analog-input,3 or analog-value,1"
    )
    property: str = Field("present-value", description="property read and written (present-value)")
    units: str | None = Field(
        None,
        description="engineering units the device must report for this object (BACnet "
        "name, e.g. degreesCelsius); default: derived from the point's unit",
    )
    priority: int = Field(
        DEFAULT_BACNET_PRIORITY,
        ge=1,
        le=16,
        description="priority-array slot the agent writes at and relinquishes (not 6: "
        "minimum on/off)",
    )

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        _host_port(v)
        return v

    @field_validator("object")
    @classmethod
    def _object(cls, v: str) -> str:
        kind, sep, inst = v.replace(" ", "").partition(",")
        if not sep or kind not in BACNET_OBJECT_TABLES:
            raise ValueError(
                f"object must be TYPE,INSTANCE with TYPE one of "
                f"{sorted(BACNET_OBJECT_TABLES)}, not {v!r}"
            )
        if not inst.isdigit() or int(inst) > 4194302:
            raise ValueError(f"object instance must be 0–4194302, not {inst!r}")
        return f"{kind},{int(inst)}"

    @field_validator("priority")
    @classmethod
    def _priority(cls, v: int) -> int:
        if v == 6:
            raise ValueError("priority 6 is reserved for minimum on/off time")
        return v

    @builtins.property
    def host(self) -> str:
        return _host_port(self.address)[0]

    @builtins.property
    def port(self) -> int:
        return _host_port(self.address)[1]

    @builtins.property
    def object_type(self) -> str:
        return self.object.split(",")[0]

    @builtins.property
    def instance(self) -> int:
        return int(self.object.split(",")[1])

    @builtins.property
    def table(self) -> Table:
        """The Modbus table this object behaves like (read-only, commandable, binary)."""
        return BACNET_OBJECT_TABLES[self.object_type]

    @builtins.property
    def binary(self) -> bool:
        return self.object_type.startswith("binary-")

    @builtins.property
    def commandable(self) -> bool:
        return self.object_type in BACNET_COMMANDABLE

    @builtins.property
    def data_type(self) -> DataType:
        """What the value is on the wire: BACnet REAL (float32), enumerated bool, unsigned."""
        if self.binary:
            return DataType.BOOL
        if self.object_type.startswith("multi-state"):
            return DataType.UINT32
        return DataType.FLOAT32

    @builtins.property
    def scale(self) -> float:
        return 1.0  # BACnet carries engineering values (REAL), never scaled integers

    @builtins.property
    def offset(self) -> float:
        return 0.0

    @builtins.property
    def device_key(self) -> DeviceKey:
        return DeviceKey(self.host, self.port, self.device)


Source = Annotated[ModbusSource | BacnetSource, Field(discriminator="protocol")]


class ModbusDevice(_Strict):
    """Defaults for every point that names this device (``source: {device_ref: NAME}``)."""

    protocol: Literal["modbus"] = Field("modbus", description="modbus: a Modbus TCP device")
    host: str = Field("127.0.0.1", description="the device's (or gateway's) IP address")
    port: int = Field(502, ge=1, le=65535, description="TCP port")
    device_id: int = Field(1, ge=0, le=255, description="Modbus unit id")
    byte_order: Order | None = Field(None, description="byte order inside a register")
    word_order: Order | None = Field(None, description="word order of multi-register values")
    layout: str | None = Field(None, description="ABCD, CDAB, BADC or DCBA (both orders)")


class BacnetDevice(_Strict):
    """Defaults for every point that names this device (``source: {device_ref: NAME}``)."""

    protocol: Literal["bacnet"] = Field(description="bacnet: a BACnet/IP device")
    address: str = Field(description="HOST:PORT (UDP)")
    device: int = Field(ge=0, le=4194302, description="the device's instance number")
    priority: int | None = Field(
        None, ge=1, le=16, description="priority the agent writes at (default 13)"
    )

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        _host_port(v)
        return v


DeviceDefaults = Annotated[ModbusDevice | BacnetDevice, Field(discriminator="protocol")]


class WriteLimits(_Strict):
    """Bounds every write to a point is held to (engineering units)."""

    min: float
    max: float
    max_step: float | None = Field(None, gt=0, description="largest change per write")
    min_interval_s: float = Field(0.0, ge=0, description="shortest time between writes")
    safe_direction: Literal["up", "down"] | None = Field(
        None,
        description=(
            "the direction that adds safety margin (a CDU pump speeding up): a move that way "
            "is held to min and max only, not to max_step or min_interval_s — those keep an "
            "optimiser from ratcheting the plant, not a protection from restoring it"
        ),
    )

    def toward_safety(self, previous: float | None, value: float) -> bool:
        """True when ``previous`` → ``value`` is a move toward safety (see ``safe_direction``)."""
        if previous is None or self.safe_direction is None:
            return False
        return value > previous if self.safe_direction == "up" else value < previous

    @model_validator(mode="after")
    def _ordered(self) -> WriteLimits:
        if self.min > self.max:
            raise ValueError(f"write min {self.min} is above write max {self.max}")
        return self

    def clamp(self, value: float) -> float:
        """``value`` held to [min, max]; NaN or ±inf is refused, never turned into a limit."""
        if not math.isfinite(value):
            raise NonFiniteValue(f"write value {value} is not a finite number")
        return min(self.max, max(self.min, value))


class SensorSpec(_Strict):
    """How the instrument behind a point measures (datasheet values, engineering units).

    Used by the twin to make its readings imperfect like a real transmitter's, and by the
    data-quality scorer to judge a reading against the sensor's own noise and resolution
    (a reading that never changes is stuck when the sensor's noise says it should move).
    """

    noise: float = Field(0.0, ge=0, description="white noise σ, absolute units")
    noise_rel: float = Field(0.0, ge=0, description="white noise σ, fraction of the reading")
    resolution: float = Field(0.0, ge=0, description="smallest step of the reading (0: none)")
    time_constant_s: float = Field(0.0, ge=0, description="first-order lag of the sensor")
    bias: float = Field(0.0, description="fixed offset of the reading, absolute units")

    def sigma(self, value: float) -> float:
        """Noise σ at a reading of ``value``."""
        return self.noise + self.noise_rel * abs(value)


class Point(_Strict):
    name: str = Field(pattern=IDENT)
    unit: str = Field(min_length=1, description="engineering unit, e.g. degC, kW, L/s, %, bool")
    brick: str | None = Field(None, description="Brick class, e.g. Supply_Air_Temperature_Sensor")
    description: str = ""
    poll_interval_s: float = Field(1.0, gt=0)
    min: float | None = Field(None, description="lowest physically plausible value")
    max: float | None = Field(None, description="highest physically plausible value")
    max_rate: float | None = Field(
        None, gt=0, description="fastest physically plausible change, units per second"
    )
    source: Source = Field(
        description="where the point lives: a Modbus register (protocol: modbus, the "
        "default) or a BACnet object property (protocol: bacnet); `device_ref: NAME` takes "
        "the location from the site's `device_defaults:` entry NAME"
    )
    write: WriteLimits | None = None
    sensor: SensorSpec | None = Field(
        None, description="the instrument's noise, resolution, lag, bias (else the site default)"
    )

    @model_validator(mode="before")
    @classmethod
    def _default_protocol(cls, data: Any) -> Any:
        src = data.get("source") if isinstance(data, dict) else None
        if isinstance(src, dict) and "protocol" not in src:  # site files before BACnet
            data = {**data, "source": {"protocol": "modbus", **src}}
        return data

    @model_validator(mode="after")
    def _check(self) -> Point:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        if self.write is not None and not self.source.table.writable:
            what = (
                self.source.object_type
                if isinstance(self.source, BacnetSource)
                else self.source.table.value
            )
            raise ValueError(f"point has write limits but {what} is read-only")
        return self

    @property
    def is_bacnet(self) -> bool:
        return isinstance(self.source, BacnetSource)

    @property
    def modbus(self) -> ModbusSource:
        """The point's Modbus source (TypeError for a BACnet point)."""
        if not isinstance(self.source, ModbusSource):
            raise TypeError(f"point {self.name} is not on Modbus")
        return self.source

    @property
    def writable(self) -> bool:
        return self.write is not None


class Equipment(_Strict):
    id: str = Field(pattern=IDENT)
    kind: EquipmentKind
    name: str = ""
    description: str = ""
    rated: dict[str, float] = Field(
        default_factory=dict, description="nameplate values, e.g. capacity_kw: 1000"
    )
    device_ref: str | None = Field(
        None,
        description="default device (a name under the site's `device_defaults:`) for every point "
        "of this equipment whose source names no device or location of its own",
    )
    points: list[Point] = Field(default_factory=list)

    @field_validator("points")
    @classmethod
    def _unique(cls, points: list[Point]) -> list[Point]:
        seen: set[str] = set()
        for p in points:
            if p.name in seen:
                raise ValueError(f"duplicate point name {p.name!r}")
            seen.add(p.name)
        return points


class QualityThresholds(_Strict):
    """Data-quality score → highest autonomy level it allows.

    Each threshold is above 0 (a score of 0 — no usable data — must never allow
    a level) and a higher level needs a strictly higher score.
    """

    level3: float = Field(0.95, gt=0, le=1)
    level2: float = Field(0.80, gt=0, le=1)
    level1: float = Field(0.50, gt=0, le=1)

    @model_validator(mode="after")
    def _monotone(self) -> QualityThresholds:
        if not (self.level3 > self.level2 > self.level1):
            raise ValueError(
                f"thresholds must satisfy level3 > level2 > level1, got "
                f"{self.level3} / {self.level2} / {self.level1}"
            )
        return self

    def level(self, score: float) -> int:
        if score >= self.level3:
            return 3
        if score >= self.level2:
            return 2
        if score >= self.level1:
            return 1
        return 0


class Site(_Strict):
    name: str
    description: str = ""
    autonomy_ceiling: int = Field(2, ge=0, le=3, description="admin-set highest autonomy level")
    quality: QualityThresholds = Field(default_factory=QualityThresholds)
    sensor_defaults: dict[str, SensorSpec] = Field(
        default_factory=dict,
        description="instrument spec per unit (degC, kW, L/s, …) for measured points "
        "without their own `sensor:` block",
    )
    device_defaults: dict[str, DeviceDefaults] = Field(
        default_factory=dict,
        description="named devices: connection defaults (Modbus host, port, device_id, "
        "byte/word order; BACnet address, device instance, priority) written once and "
        "referred to by points as `source: {device_ref: NAME, ...}`",
    )
    equipment: list[Equipment]
    schedule: ScheduleConfig = Field(
        default_factory=ScheduleConfig,
        description="when `run`'s jobs run (cycle, optimisation, FDD, report, retention) "
        "and how long raw readings are kept",
    )

    @model_validator(mode="before")
    @classmethod
    def _resolve_devices(cls, data: Any) -> Any:
        return resolve_device_refs(data)

    @model_validator(mode="after")
    def _check(self) -> Site:
        ids: set[str] = set()
        for i, eq in enumerate(self.equipment):
            if eq.id in ids:
                raise _located(f"equipment[{i}].id", f"duplicate equipment id {eq.id!r}")
            ids.add(eq.id)
        _check_overlaps(self)
        return self

    # ---- lookups -------------------------------------------------------------
    def iter_points(self) -> Iterator[tuple[Equipment, Point]]:
        for eq in self.equipment:
            for p in eq.points:
                yield eq, p

    @cached_property
    def point_ids(self) -> dict[str, int]:
        """Stable integer id per point tag (``equipment.point``), in file order."""
        return {f"{eq.id}.{p.name}": i for i, (eq, p) in enumerate(self.iter_points())}

    @cached_property
    def points_by_tag(self) -> dict[str, tuple[Equipment, Point]]:
        return {f"{eq.id}.{p.name}": (eq, p) for eq, p in self.iter_points()}

    def point(self, tag: str) -> Point:
        try:
            return self.points_by_tag[tag][1]
        except KeyError:
            raise KeyError(f"unknown point {tag!r}") from None

    def sensor(self, tag: str) -> SensorSpec | None:
        """The instrument spec of a measured point: its own ``sensor:`` block, else the site's
        default for its unit; None for setpoints, states and points without either."""
        p = self.point(tag)
        if p.sensor is not None:
            return p.sensor
        if p.writable or p.source.table is not Table.INPUT:
            return None
        return self.sensor_defaults.get(p.unit)

    def equipment_by_id(self, eq_id: str) -> Equipment:
        for eq in self.equipment:
            if eq.id == eq_id:
                return eq
        raise KeyError(f"unknown equipment {eq_id!r}")

    def devices(self) -> dict[DeviceKey, list[tuple[str, Point]]]:
        """Points grouped by the Modbus device that serves them: {device: [(tag, point)]}."""
        out: dict[DeviceKey, list[tuple[str, Point]]] = defaultdict(list)
        for eq, p in self.iter_points():
            if isinstance(p.source, ModbusSource):
                out[p.source.device_key].append((f"{eq.id}.{p.name}", p))
        return dict(out)

    def bacnet_devices(self) -> dict[DeviceKey, list[tuple[str, Point]]]:
        """Points grouped by the BACnet device that serves them: {(host, port, instance):
        [(tag, point)]}."""
        out: dict[DeviceKey, list[tuple[str, Point]]] = defaultdict(list)
        for eq, p in self.iter_points():
            if isinstance(p.source, BacnetSource):
                out[p.source.device_key].append((f"{eq.id}.{p.name}", p))
        return dict(out)


def device_count(site: Site) -> int:
    """Devices of every protocol (Modbus TCP and BACnet/IP)."""
    return len(site.devices()) + len(site.bacnet_devices())


def endpoints(keys: Iterable[DeviceKey], most: int = 3) -> str:
    """``host:port`` of the devices, consecutive ports of a host as one range
    (``127.0.0.1:47810–47814``), at most ``most`` items then ``…``."""
    by_host: dict[str, set[int]] = defaultdict(set)
    for k in keys:
        by_host[k.host].add(k.port)
    items: list[str] = []
    for host in sorted(by_host):
        ports = sorted(by_host[host])
        start = prev = ports[0]
        for p in [*ports[1:], None]:
            if p is not None and p == prev + 1:
                prev = p
                continue
            items.append(f"{host}:{start}" if start == prev else f"{host}:{start}–{prev}")
            if p is not None:
                start = prev = p
    return ", ".join(items[:most]) + (" …" if len(items) > most else "")


def protocol_summary(site: Site) -> str:
    """Which protocol reaches how many devices, and where: ``16 Modbus TCP devices at
    127.0.0.1:5020, 5 BACnet/IP devices at 127.0.0.1:47810–47814`` (one protocol: one part)."""
    parts = []
    for name, devs in (("Modbus TCP", site.devices()), ("BACnet/IP", site.bacnet_devices())):
        if devs:
            n = len(devs)
            parts.append(f"{n} {name} device{'s' if n != 1 else ''} at {endpoints(devs)}")
    return ", ".join(parts) or "no devices"


def tag(equipment_id: str, point_name: str) -> str:
    return f"{equipment_id}.{point_name}"


class _FieldError(ValueError):
    """Raised by a model validator about one field of that model (the field joins the path)."""

    def __init__(self, field: str, msg: str) -> None:
        super().__init__(msg)
        self.field = field
        self.msg = msg


class _LocatedError(ValueError):
    def __init__(self, loc: str, msg: str) -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


def _located(loc: str, msg: str) -> _LocatedError:
    return _LocatedError(loc, msg)


_LOCATION_KEYS = frozenset({"protocol", "host", "port", "device_id", "device"})


def _has_location(src: dict[str, Any]) -> bool:
    """A source that says where it is (a Modbus register ``address`` is an int, not one)."""
    return bool(_LOCATION_KEYS & src.keys()) or isinstance(src.get("address"), str)


def resolve_device_refs(data: Any) -> Any:
    """Fill each point's source from the site's named ``device_defaults:`` (explicit fields win).

    A source names its device with ``device_ref``; an equipment's ``device_ref`` applies to
    its points whose source has neither a ``device_ref`` nor a location of its own. An
    unknown name is an error naming the field. Sites without ``device_defaults:`` pass unchanged.
    """
    if not isinstance(data, dict):
        return data
    devices = data.get("device_defaults") or {}
    equipment = data.get("equipment")
    if not isinstance(devices, dict) or not isinstance(equipment, list):
        return data
    devices = {
        k: ({"protocol": "modbus", **v} if isinstance(v, dict) and "protocol" not in v else v)
        for k, v in devices.items()
    }
    out_eq: list[Any] = []
    for ei, eq in enumerate(equipment):
        if not isinstance(eq, dict) or not isinstance(eq.get("points"), list):
            out_eq.append(eq)
            continue
        eq_ref = eq.get("device_ref")
        points: list[Any] = []
        for pi, p in enumerate(eq["points"]):
            src = p.get("source") if isinstance(p, dict) else None
            if not isinstance(src, dict):
                points.append(p)
                continue
            ref = src.get("device_ref")
            where = f"equipment[{ei}].points[{pi}].source.device_ref"
            if ref is None and eq_ref is not None and not _has_location(src):
                ref, where = eq_ref, f"equipment[{ei}].device_ref"
            if ref is None:
                points.append(p)
                continue
            dev = devices.get(ref)
            if not isinstance(dev, dict):
                known = ", ".join(sorted(devices)) or "none"
                raise _located(where, f"unknown device {ref!r} (device_defaults: {known})")
            merged = {k: v for k, v in dev.items() if v is not None}
            merged.setdefault("protocol", "modbus")
            if "layout" in src:  # the point's own layout beats the device's orders
                merged.pop("byte_order", None)
                merged.pop("word_order", None)
                merged.pop("layout", None)
            if (
                merged["protocol"] == "modbus"
                and "layout" in merged
                and ("byte_order" in src or "word_order" in src)
            ):
                merged.pop("layout")
            merged.update({k: v for k, v in src.items() if k != "device_ref"})
            points.append({**p, "source": merged})
        out_eq.append({**eq, "points": points})
    return {**data, "device_defaults": devices, "equipment": out_eq}


def _check_overlaps(site: Site) -> None:
    """Two points may not claim the same register of the same device and table.

    Bit points may share a register with each other (different bits), never
    with a whole-register point.
    """
    claims: dict[tuple[DeviceKey, Table, int], tuple[str, Point]] = {}
    objects: dict[tuple[DeviceKey, str, str], str] = {}
    for ei, eq in enumerate(site.equipment):
        for pi, p in enumerate(eq.points):
            if isinstance(p.source, BacnetSource):
                b = p.source
                okey = (b.device_key, b.object, b.property)
                if okey in objects:
                    raise _located(
                        f"equipment[{ei}].points[{pi}].source.object",
                        f"{b.object} {b.property} on BACnet device {b.device} at {b.address} "
                        f"is already point {objects[okey]}",
                    )
                objects[okey] = f"{eq.id}.{p.name}"
                continue
            s = p.source
            for r in range(s.address, s.address + s.register_count):
                key = (s.device_key, s.table, r)
                other = claims.get(key)
                if other is not None:
                    o_tag, o = other
                    both_bits = (
                        s.data_type is DataType.BIT
                        and o.modbus.data_type is DataType.BIT
                        and s.bit != o.modbus.bit
                    )
                    if not both_bits:
                        raise _located(
                            f"equipment[{ei}].points[{pi}].source.address",
                            f"{s.table.value} register {r} on device {s.device_key} "
                            f"overlaps point {o_tag}",
                        )
                claims[key] = (f"{eq.id}.{p.name}", p)


def parse_site(data: Any, origin: str = "<site>") -> Site:
    """Validate a site from already-parsed YAML/JSON data; errors name ``origin``."""
    try:
        return Site.model_validate(data)
    except ValidationError as err:
        inner = err.errors()[0].get("ctx", {}).get("error")
        if isinstance(inner, _LocatedError):  # a site-wide check that knows its field
            raise SiteConfigError(f"{origin}: {inner.loc}: {inner.msg}") from None
        extra = (inner.field,) if isinstance(inner, _FieldError) else ()
        raise SiteConfigError(
            describe_validation_error(err, origin, skip=("modbus", "bacnet"), extra_loc=extra)
        ) from None


def load_site(path: str | Path) -> Site:
    """Load and validate a site file. Raises :class:`SiteConfigError` naming file and field."""
    data, origin = read_yaml_mapping(path, SiteConfigError)
    return parse_site(data, origin=origin)


def with_port(site: Site, port: int, host: str | None = None) -> Site:
    """The same site with every Modbus source on ``port`` (and ``host``): e.g. the twin's
    site when the twin was started with ``--port``."""
    data = site.model_dump(mode="json")
    for eq in data["equipment"]:
        for p in eq["points"]:
            if p["source"]["protocol"] != "modbus":
                continue
            p["source"]["port"] = port
            if host is not None:
                p["source"]["host"] = host
    return parse_site(data, origin=f"{site.name}@{port}")


def with_bacnet_port(site: Site, port: int) -> Site:
    """The same site with its BACnet/IP devices moved so that the first (lowest UDP port)
    is on ``port`` and the others keep their offsets from it: e.g. the twin's site when the
    twin was started with ``--bacnet-port``. A site without BACnet devices is unchanged."""
    ports = sorted({k.port for k in site.bacnet_devices()})
    if not ports:
        return site
    shift = port - ports[0]
    if ports[-1] + shift > 65535 or port < 1:
        raise SiteConfigError(
            f"{site.name}: BACnet ports {ports[0]}–{ports[-1]} do not fit from {port} "
            "(UDP ports 1–65535)"
        )

    def moved(address: str) -> str:
        host, p = _host_port(address)
        return f"{host}:{p + shift}"

    data = site.model_dump(mode="json")
    for dev in (data.get("device_defaults") or {}).values():
        if dev.get("protocol") == "bacnet":
            dev["address"] = moved(dev["address"])
    for eq in data["equipment"]:
        for p in eq["points"]:
            if p["source"]["protocol"] == "bacnet":
                p["source"]["address"] = moved(p["source"]["address"])
    return parse_site(data, origin=f"{site.name}@bacnet:{port}")
