"""Vanderbilt ESB chiller-plant telemetry → a SI DataFrame and a one-plant site.

``esb/esb_chiller1.csv``: chiller 1 of the Engineering Science Building,
5-minute samples (with some 10–20 min gaps and two multi-day holes),
2018-05-01 → 2018-06-06. The file is in SI base units; :func:`read_esb`
converts to the project's engineering units and keeps the column names:

* temperatures K → °C (``TempAmbient``, ``TempCondIn``/``Out``, ``TempEvapIn``/``Out``, ``TempWetbulb``);
* powers W → kW (``PowChi`` chiller, ``PowChiP`` chilled-water pump, ``PowConP`` condenser
  pump, ``PowFanA``/``B`` tower fans, ``PowIn`` total);
* ``Tons`` is really W of cooling → kW of cooling (the name is kept);
* ``FlowEvap`` m³/s → L/s (the recorded values, ~1.8 L/s, are far too small for
  the recorded cooling at a 2–3 K ΔT; kept as recorded — the data-quality
  physics check should notice, the importer does not clean);
* fractions ``PerChilLoad``, ``PerFreqFanA``/``B``, ``PerHumidity`` → %;
* ``KWPerTon`` unchanged (kW/ton).

Nothing is resampled, filled or cleaned. ``df.attrs["units"]`` maps columns to units.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from connectors.errors import ConfigError
from connectors.importers._common import PointSpec, build_site
from connectors.site import Site

PERIOD_S = 300.0
K_TO_C = 273.15

TEMPS = ["TempAmbient", "TempCondIn", "TempCondOut", "TempEvapIn", "TempEvapOut", "TempWetbulb"]
POWERS = ["PowChi", "PowChiP", "PowConP", "PowFanA", "PowFanB", "PowIn", "Tons"]
FRACTIONS = ["PerChilLoad", "PerFreqFanA", "PerFreqFanB", "PerHumidity"]
FLOWS = ["FlowEvap"]
REQUIRED = ["Time", "PowChi", "Tons", "TempEvapOut", "TempCondIn"]

_SPECS: dict[str, PointSpec] = {
    "FlowEvap": PointSpec(
        "L/s", "Chilled_Water_Flow_Sensor", 0, 500, None, "evaporator water flow"
    ),
    "KWPerTon": PointSpec("kW/ton", None, 0, 5, None, "chiller kW per ton of cooling"),
    "PerChilLoad": PointSpec("%", None, 0, 120, None, "chiller load, % of capacity"),
    "PerFreqFanA": PointSpec("%", "Fan_Speed_Sensor", 0, 100, None, "tower fan A drive frequency"),
    "PerFreqFanB": PointSpec("%", "Fan_Speed_Sensor", 0, 100, None, "tower fan B drive frequency"),
    "PerHumidity": PointSpec(
        "%", "Outside_Air_Humidity_Sensor", 0, 100, None, "outdoor relative humidity"
    ),
    "PowChi": PointSpec("kW", "Electric_Power_Sensor", 0, 1000, None, "chiller electric power"),
    "PowChiP": PointSpec("kW", "Electric_Power_Sensor", 0, 200, None, "chilled-water pump power"),
    "PowConP": PointSpec("kW", "Electric_Power_Sensor", 0, 200, None, "condenser-water pump power"),
    "PowFanA": PointSpec("kW", "Electric_Power_Sensor", 0, 100, None, "tower fan A power"),
    "PowFanB": PointSpec("kW", "Electric_Power_Sensor", 0, 100, None, "tower fan B power"),
    "PowIn": PointSpec("kW", "Electric_Power_Sensor", 0, 1500, None, "plant total power"),
    "TempAmbient": PointSpec(
        "degC", "Outside_Air_Temperature_Sensor", -40, 55, 0.05, "outdoor dry bulb"
    ),
    "TempCondIn": PointSpec(
        "degC", "Condenser_Water_Supply_Temperature_Sensor", 0, 50, 0.1, "condenser water entering"
    ),
    "TempCondOut": PointSpec(
        "degC", "Condenser_Water_Return_Temperature_Sensor", 0, 60, 0.1, "condenser water leaving"
    ),
    "TempEvapIn": PointSpec(
        "degC",
        "Chilled_Water_Return_Temperature_Sensor",
        0,
        30,
        0.1,
        "chilled water entering (return)",
    ),
    "TempEvapOut": PointSpec(
        "degC",
        "Chilled_Water_Supply_Temperature_Sensor",
        0,
        25,
        0.1,
        "chilled water leaving (supply)",
    ),
    "TempWetbulb": PointSpec(
        "degC", "Outside_Air_Wet_Bulb_Temperature_Sensor", -40, 40, 0.05, "outdoor wet bulb"
    ),
    "Tons": PointSpec(
        "kW", "Thermal_Power_Sensor", 0, 5000, None, "cooling delivered (kW; column named Tons)"
    ),
}
UNITS: dict[str, str] = {col: spec.unit for col, spec in _SPECS.items()}


def read_esb(path: str | Path) -> pd.DataFrame:
    """The ESB chiller CSV in °C, kW, L/s and %, indexed by its ``Time`` column (``ts``).

    Raises :class:`ConfigError` naming the file when it cannot be read, lacks
    a required column, or holds a non-numeric value.
    """
    path = Path(path)
    try:
        raw = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise ConfigError(f"{path}: cannot read ESB CSV: {err}") from err
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise ConfigError(f"{path}: missing ESB columns {missing}")
    try:
        ts = pd.to_datetime(raw["Time"], errors="raise")
    except (ValueError, TypeError) as err:
        raise ConfigError(
            f"{path}: column 'Time' holds a value that is not a timestamp: {err}"
        ) from err
    out: dict[str, np.ndarray] = {}
    for col in raw.columns:
        if col == "Time":
            continue
        try:
            v = pd.to_numeric(raw[col], errors="raise").to_numpy(dtype=np.float64)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"{path}: column {col!r} is not numeric: {err}") from err
        out[str(col)] = _to_units(str(col), v)
    df = pd.DataFrame(out, index=pd.DatetimeIndex(ts, name="ts"))
    df.attrs["units"] = {c: UNITS.get(c, "1") for c in df.columns}
    df.attrs["source"] = str(path)
    return df


def _to_units(col: str, v: np.ndarray) -> np.ndarray:
    if col in TEMPS:
        return v - K_TO_C
    if col in POWERS:
        return v / 1000.0
    if col in FLOWS:
        return v * 1000.0
    if col in FRACTIONS:
        return v * 100.0
    return v


def esb_site(columns: Sequence[str] | None = None, name: str = "esb") -> Site:
    """A site with one chiller plant (equipment id ``chiller``) whose points are the columns.

    Default: every ESB column (except ``Time``), names unchanged.
    """
    cols = list(columns) if columns is not None else list(_SPECS)
    return build_site(
        name,
        "chiller",
        "chiller",
        cols,
        _SPECS,
        poll_interval_s=PERIOD_S,
        default=PointSpec("1"),
        description="Vanderbilt ESB chiller 1 with pumps and tower fans (replayed)",
    )
