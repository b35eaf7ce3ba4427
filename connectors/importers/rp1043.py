"""ASHRAE RP-1043 chiller spreadsheets → a SI DataFrame and a one-chiller site.

RP-1043 (Comstock & Braun, 1999, "Development of analysis tools for the
evaluation of fault detection and diagnostics in chillers") recorded a 90-ton
(≈316 kW) water-cooled centrifugal chiller (R-134a) every 10 s. Each ``.xls``
holds 5,190 rows × 65 columns in US units, the last column ``Y`` naming the
file's condition, and no time column.

:func:`read_rp1043` keeps the original column names, synthesises a 10-second
``DatetimeIndex`` from 2026-01-01T00:00 and converts to SI:

* temperatures °F → °C (``(F − 32) · 5/9``); temperature *differences*
  (approaches, superheat, subcooling, ΔT) °F → K (``· 5/9``);
* gauge pressures psig → kPa gauge and pressure differences psi → kPa (``· 6.894757``);
* water flows gpm → L/s (``· 0.0630902``);
* refrigeration tons → kW (``· 3.516853``);
* kW, A, %, valve positions and status codes unchanged; ``kW/Ton`` stays kW/ton.

Nothing is cleaned: denormals (~1e-45), cf12's corrupt kW (mean ≈ 7.9e9) and
the odd −99.4 °F reading reach the store as they are, for the data-quality
scorer to flag. :func:`rp1043_site` gives every column a physically plausible
range and rate from engineering knowledge of such a chiller, not from the data.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from xlrd.biffh import XLRDError

from connectors.errors import ConfigError
from connectors.importers._common import PointSpec, build_site
from connectors.site import Site

START = datetime(2026, 1, 1)
PERIOD_S = 10.0

F_TO_K = 5.0 / 9.0
PSI_TO_KPA = 6.894757
GPM_TO_LPS = 0.0630902
TON_TO_KW = 3.516853

# Column groups by conversion.
TEMPS = [
    "TEI",
    "TWEI",
    "TEO",
    "TWEO",
    "TCI",
    "TWCI",
    "TCO",
    "TWCO",
    "TSI",
    "TSO",
    "TBI",
    "TBO",
    "TRE",
    "TRC",
    "T_suc",
    "TR_dis",
    "TO_sump",
    "TO_feed",
    "TWI",
    "TWO",
    "THI",
    "THO",
]
TEMP_DIFFS = ["TEA", "TCA", "TRC_sub", "Tsh_suc", "Tsh_dis", "TWCD", "TWED"]
PRESSURES = ["PRE", "PRC", "P_lift", "PO_feed", "PO_net"]
FLOWS = ["FWC", "FWE", "FWW", "FWH", "FWB"]
TONS = (
    "Cond Tons",
    "Cooling Tons",
    "Shared Cond Tons",
    "Evap Tons",
    "Shared Evap Tons",
    "Building Tons",
)

# Water temperatures cannot swing faster than ~0.2 K/s in a loop of this size
# (the example: 5 K in 10 s is impossible); refrigerant-side and oil a
# bit faster at start-up.
_W = 0.2
_CHW = "Chilled_Water"
_SPECS: dict[str, PointSpec] = {
    "TEI": PointSpec(
        "degC", f"Entering_{_CHW}_Temperature_Sensor", 0, 35, _W, "evaporator water in"
    ),
    "TWEI": PointSpec(
        "degC", f"Entering_{_CHW}_Temperature_Sensor", 0, 35, _W, "evap water in (thermistor)"
    ),
    "TEO": PointSpec(
        "degC", f"Leaving_{_CHW}_Temperature_Sensor", 0, 35, _W, "evaporator water out"
    ),
    "TWEO": PointSpec(
        "degC", f"Leaving_{_CHW}_Temperature_Sensor", 0, 35, _W, "evap water out (thermistor)"
    ),
    "TCI": PointSpec(
        "degC", "Entering_Condenser_Water_Temperature_Sensor", 0, 50, _W, "condenser water in"
    ),
    "TWCI": PointSpec(
        "degC",
        "Entering_Condenser_Water_Temperature_Sensor",
        0,
        50,
        _W,
        "cond water in (thermistor)",
    ),
    "TCO": PointSpec(
        "degC", "Leaving_Condenser_Water_Temperature_Sensor", 0, 50, _W, "condenser water out"
    ),
    "TWCO": PointSpec(
        "degC",
        "Leaving_Condenser_Water_Temperature_Sensor",
        0,
        50,
        _W,
        "cond water out (thermistor)",
    ),
    "TSI": PointSpec("degC", "Water_Temperature_Sensor", 0, 60, _W, "shared HX water in"),
    "TSO": PointSpec("degC", "Water_Temperature_Sensor", 0, 60, _W, "shared HX water out"),
    "TBI": PointSpec("degC", "Water_Temperature_Sensor", 0, 40, _W, "building water in"),
    "TBO": PointSpec("degC", "Water_Temperature_Sensor", 0, 40, _W, "building water out"),
    "TWI": PointSpec("degC", "Water_Temperature_Sensor", 0, 40, _W, "city water in"),
    "TWO": PointSpec("degC", "Water_Temperature_Sensor", 0, 60, _W, "city water out"),
    "THI": PointSpec("degC", "Hot_Water_Temperature_Sensor", 0, 95, _W, "hot water in"),
    "THO": PointSpec("degC", "Hot_Water_Temperature_Sensor", 0, 95, _W, "hot water out"),
    "TRE": PointSpec(
        "degC", "Refrigerant_Temperature_Sensor", -15, 35, 2.0, "evaporating temperature"
    ),
    "TRC": PointSpec(
        "degC", "Refrigerant_Temperature_Sensor", 0, 65, 2.0, "condensing temperature"
    ),
    "T_suc": PointSpec(
        "degC", "Refrigerant_Temperature_Sensor", -15, 45, 2.0, "suction temperature"
    ),
    "TR_dis": PointSpec(
        "degC", "Refrigerant_Temperature_Sensor", 0, 110, 2.0, "discharge temperature"
    ),
    "TO_sump": PointSpec("degC", "Temperature_Sensor", 0, 80, 0.5, "oil sump temperature"),
    "TO_feed": PointSpec("degC", "Temperature_Sensor", 0, 80, 0.5, "oil feed temperature"),
    "TEA": PointSpec("K", "Temperature_Sensor", 0, 20, 1.0, "evaporator approach"),
    "TCA": PointSpec("K", "Temperature_Sensor", 0, 20, 1.0, "condenser approach"),
    "TRC_sub": PointSpec("K", "Temperature_Sensor", 0, 20, 1.0, "liquid subcooling"),
    "Tsh_suc": PointSpec("K", "Temperature_Sensor", 0, 30, 1.0, "suction superheat"),
    "Tsh_dis": PointSpec("K", "Temperature_Sensor", 0, 70, 2.0, "discharge superheat"),
    "TWCD": PointSpec("K", "Temperature_Sensor", 0, 20, 1.0, "condenser water ΔT"),
    "TWED": PointSpec("K", "Temperature_Sensor", 0, 20, 1.0, "evaporator water ΔT"),
    # R-134a: 1 900 kPa abs ≈ 64 °C condensing; gauge pressures.
    "PRE": PointSpec("kPa", "Pressure_Sensor", 0, 800, 20, "evaporator pressure (gauge)"),
    "PRC": PointSpec("kPa", "Pressure_Sensor", 0, 1900, 30, "condenser pressure (gauge)"),
    "P_lift": PointSpec("kPa", "Differential_Pressure_Sensor", 0, 1900, 30, "pressure lift"),
    "PO_feed": PointSpec("kPa", "Pressure_Sensor", 0, 1500, 50, "oil feed pressure (gauge)"),
    "PO_net": PointSpec("kPa", "Differential_Pressure_Sensor", 0, 1200, 50, "net oil pressure"),
    "FWC": PointSpec("L/s", "Condenser_Water_Flow_Sensor", 0, 40, 2.0, "condenser water flow"),
    "FWE": PointSpec("L/s", f"{_CHW}_Flow_Sensor", 0, 30, 2.0, "evaporator water flow"),
    "FWW": PointSpec("L/s", "Water_Flow_Sensor", 0, 30, 2.0, "city water flow"),
    "FWH": PointSpec("L/s", "Hot_Water_Flow_Sensor", 0, 30, 2.0, "hot water flow"),
    "FWB": PointSpec("L/s", "Water_Flow_Sensor", -30, 30, 2.0, "building water flow (signed)"),
    "kW": PointSpec("kW", "Electric_Power_Sensor", 0, 200, 10.0, "compressor power"),
    "COP": PointSpec("1", "Efficiency_Sensor", 0, 15, None, "coefficient of performance"),
    "kW/Ton": PointSpec("kW/ton", "Efficiency_Sensor", 0, 5, None, "specific power"),
    "Amps": PointSpec("A", "Current_Sensor", 0, 300, 30, "motor current"),
    "RLA%": PointSpec("%", "Load_Current_Sensor", 0, 120, 15, "current, % of rated load amps"),
    "Heat Balance (kW)": PointSpec("kW", None, -300, 300, None, "heat balance residual"),
    "Heat Balance%": PointSpec("%", None, -1000, 1000, None, "heat balance residual"),
    "Tolerance%": PointSpec("%", None, 0, 100, None, "heat balance tolerance"),
    "Cond Energy Balance": PointSpec("%", None, -1000, 1000, None, "condenser energy balance"),
    "Evap Energy Balance": PointSpec("%", None, -1000, 1000, None, "evaporator energy balance"),
    "Unit Status": PointSpec("code", "Status", 0, 255, None, "chiller status code"),
    "Active Fault": PointSpec("code", "Fault_Status", 0, 255, None, "active fault code"),
    "Cond Tons": PointSpec("kW", "Thermal_Power_Sensor", -20, 800, 20, "condenser heat rejection"),
    "Cooling Tons": PointSpec("kW", "Thermal_Power_Sensor", -20, 800, 20, "cooling load"),
    "Shared Cond Tons": PointSpec(
        "kW", "Thermal_Power_Sensor", -50, 2000, 40, "shared HX, condenser side"
    ),
    "Evap Tons": PointSpec(
        "kW", "Cooling_Thermal_Power_Sensor", -20, 600, 20, "evaporator capacity"
    ),
    "Shared Evap Tons": PointSpec(
        "kW", "Thermal_Power_Sensor", -50, 2000, 40, "shared HX, evaporator side"
    ),
    "Building Tons": PointSpec("kW", "Thermal_Power_Sensor", -50, 600, 20, "building load"),
}
for _v in ["VSS", "VSL", "VH", "VM", "VC", "VE", "VW"]:
    _SPECS[_v] = PointSpec("%", "Valve_Position_Sensor", 0, 100, None, f"valve {_v} position")

UNITS: dict[str, str] = {col: spec.unit for col, spec in _SPECS.items()}


def read_rp1043(path: str | Path) -> pd.DataFrame:
    """One RP-1043 spreadsheet in SI units, indexed every 10 s from 2026-01-01T00:00.

    ``df.attrs["label"]`` is the file's ``Y`` label (e.g. ``"Normal"``, ``"CF"``),
    ``df.attrs["units"]`` maps each column to its unit. Values are not cleaned.
    Raises :class:`ConfigError` naming the file when it cannot be read or lacks
    the expected columns.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas deprecates its xlrd engine; .xls needs it
            raw = pd.read_excel(path, engine="xlrd")
    except (OSError, ValueError, ImportError, XLRDError) as err:
        raise ConfigError(f"{path}: cannot read RP-1043 spreadsheet: {err}") from err
    if "Y" not in raw.columns:
        raise ConfigError(f"{path}: no 'Y' label column; not an RP-1043 file")
    missing = [c for c in ("TEI", "TEO", "TCI", "TCO", "kW") if c not in raw.columns]
    if missing:
        raise ConfigError(f"{path}: missing RP-1043 columns {missing}")
    labels = raw["Y"].dropna().astype(str).unique()
    data = raw.drop(columns="Y")
    out: dict[str, np.ndarray] = {}
    for col in data.columns:
        try:
            v = pd.to_numeric(data[col], errors="raise").to_numpy(dtype=np.float64)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"{path}: column {col!r} is not numeric: {err}") from err
        out[str(col)] = _to_si(str(col), v)
    index = pd.date_range(START, periods=len(raw), freq=pd.Timedelta(seconds=PERIOD_S), name="ts")
    df = pd.DataFrame(out, index=index)
    df.attrs["label"] = str(labels[0]) if len(labels) else ""
    df.attrs["units"] = {c: UNITS.get(c, "1") for c in df.columns}
    df.attrs["source"] = str(path)
    return df


def _to_si(col: str, v: np.ndarray) -> np.ndarray:
    # Multiplying a denormal by a factor keeps it denormal (e.g. 1.68e-45 gpm → 1.06e-46 L/s).
    if col in TEMPS:
        return (v - 32.0) * F_TO_K
    if col in TEMP_DIFFS:
        return v * F_TO_K
    if col in PRESSURES:
        return v * PSI_TO_KPA
    if col in FLOWS:
        return v * GPM_TO_LPS
    if col in TONS:
        return v * TON_TO_KW
    return v


def rp1043_site(columns: Sequence[str] | None = None, name: str = "rp1043") -> Site:
    """A site with one chiller (id ``chiller``) whose points are the given columns.

    Point names are the column names made safe (``kW/Ton`` → ``kW_per_Ton``,
    ``Cond Tons`` → ``Cond_Tons``); see :func:`connectors.importers._common.safe_name`.
    Default: every RP-1043 column.
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
        description="ASHRAE RP-1043 90-ton centrifugal chiller (replayed)",
    )
