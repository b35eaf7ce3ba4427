"""LBNL labelled air-handler fault datasets (Granderson & Lin, 2019) → SI DataFrame and site.

The CSVs (``SZCAV.csv``, ``MZVAV-2-2.csv``, …) hold 1-minute samples with a
``Datetime`` column (``3/11/2017 0:00``), measured temperatures in °F, control
signals 0–1, duct static pressure and a binary ``Fault Detection Ground Truth``
that is 1 for the whole day a fault was imposed (a blank cell: the row is unlabeled).

:func:`read_lbnl` renames the columns to short snake-case names (table
:data:`COLUMNS`), converts °F → °C and 0–1 signals → %, and the duct static
pressure — labelled "psi" in the inventory but with values (setpoint 1.4,
readings ≈ 0.1–1.5) that are inches of water — inH₂O → Pa (``· 249.089``).
The ground truth becomes a nullable boolean ``fault`` column (pandas ``"boolean"``):
``True`` faulted, ``False`` fault-free, ``<NA>`` unlabeled — a missing label is
neither, and scoring leaves such rows out. Nothing is cleaned.

:func:`fault_type_by_date` reads the inventory text
(``LBNLDataSynthesisInventory.txt``) and returns, per dataset, the fault that
was imposed on each date, e.g. ``{date(2017, 3, 18): "OA damper stuck: fully
open (100%)", date(2017, 4, 1): "unfaulted", …}``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from connectors.errors import ConfigError
from connectors.importers._common import PointSpec, build_site, safe_name
from connectors.site import Site

PERIOD_S = 60.0
INH2O_TO_PA = 249.089
TRUTH = "Fault Detection Ground Truth"

_T_RATE = 0.1  # K/s: air temperatures at an AHU move at most a few K per minute
_SIG = PointSpec("%", "Command", 0, 100, None)

# original column (stripped) → (name, spec, conversion)
COLUMNS: dict[str, tuple[str, PointSpec, str]] = {
    "AHU: Supply Air Temperature": (
        "supply_air_temp",
        PointSpec("degC", "Supply_Air_Temperature_Sensor", -10, 60, _T_RATE),
        "F",
    ),
    "AHU: Supply Air Temperature Set Point": (
        "supply_air_temp_setpoint",
        PointSpec("degC", "Supply_Air_Temperature_Setpoint", 0, 45, None),
        "F",
    ),
    "AHU: Supply Air Temperature Heating Set Point": (
        "supply_air_temp_heating_setpoint",
        PointSpec("degC", "Supply_Air_Temperature_Heating_Setpoint", 0, 45, None),
        "F",
    ),
    "AHU: Supply Air Temperature Cooling Set Point": (
        "supply_air_temp_cooling_setpoint",
        PointSpec("degC", "Supply_Air_Temperature_Cooling_Setpoint", 0, 45, None),
        "F",
    ),
    "AHU: Outdoor Air Temperature": (
        "outdoor_air_temp",
        PointSpec("degC", "Outside_Air_Temperature_Sensor", -40, 50, _T_RATE),
        "F",
    ),
    "AHU: Mixed Air Temperature": (
        "mixed_air_temp",
        PointSpec("degC", "Mixed_Air_Temperature_Sensor", -40, 50, _T_RATE),
        "F",
    ),
    "AHU: Return Air Temperature": (
        "return_air_temp",
        PointSpec("degC", "Return_Air_Temperature_Sensor", 0, 45, _T_RATE),
        "F",
    ),
    "AHU: Supply Air Fan Status": (
        "supply_fan_status",
        PointSpec("bool", "Supply_Fan_Status", 0, 1, None),
        "",
    ),
    "AHU: Return Air Fan Status": (
        "return_fan_status",
        PointSpec("bool", "Return_Fan_Status", 0, 1, None),
        "",
    ),
    "AHU: Supply Air Fan Speed Control Signal": ("supply_fan_speed", _SIG, "frac"),
    "AHU: Return Air Fan Speed Control Signal": ("return_fan_speed", _SIG, "frac"),
    "AHU: Outdoor Air Damper Control Signal": ("oa_damper", _SIG, "frac"),
    "AHU: Return Air Damper Control Signal": ("ra_damper", _SIG, "frac"),
    "AHU: Exhaust Air Damper Control Signal": ("ea_damper", _SIG, "frac"),
    "AHU: Cooling Coil Valve Control Signal": ("cooling_valve", _SIG, "frac"),
    "AHU: Heating Coil Valve Control Signal": ("heating_valve", _SIG, "frac"),
    "AHU: Supply Air Duct Static Pressure Set Point": (
        "duct_static_pressure_setpoint",
        PointSpec("Pa", "Static_Pressure_Setpoint", 0, 1500, None),
        "inH2O",
    ),
    "AHU: Supply Air Duct Static Pressure": (
        "duct_static_pressure",
        PointSpec("Pa", "Static_Pressure_Sensor", -500, 1500, 100.0),
        "inH2O",
    ),
    "Occupancy Mode Indicator": (
        "occupied",
        PointSpec("bool", "Occupancy_Status", 0, 1, None),
        "",
    ),
}


# the shipped files' spreadsheet export first; other units of the inventory come as ISO or
# with seconds
_STAMP_FORMATS = ("%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "ISO8601")


def _timestamps(path: Path, col: pd.Series) -> pd.Series:
    """``Datetime`` parsed with the first format that reads every cell; ConfigError naming the
    file and column (and the first cell none reads) otherwise."""
    for fmt in _STAMP_FORMATS:
        try:
            return pd.to_datetime(col, format=fmt)
        except ValueError:
            continue
    bad = next((str(v) for v in col if pd.isna(pd.to_datetime(v, errors="coerce"))), "?")
    raise ConfigError(
        f"{path}: column 'Datetime': cannot read {bad!r} as a time "
        f"(expected e.g. 3/11/2017 0:00 or 2017-03-11 00:00:00)"
    )


def read_lbnl(path: str | Path) -> pd.DataFrame:
    """One LBNL AHU CSV: 1-minute ``DatetimeIndex``, SI numeric columns and a ``fault`` label
    (nullable boolean: ``<NA>`` where the ground-truth cell is blank or not a number).

    ``df.attrs["units"]`` maps columns to units, ``df.attrs["columns"]`` maps
    the new names back to the original headers; cells that are not numbers
    (spreadsheet errors such as ``#VALUE!``) become NaN and are counted per
    column in ``df.attrs["bad_cells"]``. Raises :class:`ConfigError`
    naming the file when it is unreadable or lacks ``Datetime`` / the ground truth.
    """
    path = Path(path)
    try:
        raw = pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: cannot read LBNL CSV: {err}") from err
    raw.columns = [str(c).strip() for c in raw.columns]
    for need in ("Datetime", TRUTH):
        if need not in raw.columns:
            raise ConfigError(f"{path}: missing column {need!r}")
    ts = _timestamps(path, raw["Datetime"])
    out: dict[str, np.ndarray] = {}
    units: dict[str, str] = {}
    origin: dict[str, str] = {}
    bad_cells: dict[str, int] = {}
    for col in raw.columns:
        if col in ("Datetime", TRUTH):
            continue
        name, spec, conv = COLUMNS.get(col, (safe_name(col).lower(), PointSpec("1"), ""))
        # Spreadsheet error cells ("#VALUE!") become NaN: replay stores them as
        # decode errors, never as good readings.
        v = pd.to_numeric(raw[col], errors="coerce").to_numpy(dtype=np.float64)
        bad_cells[name] = int(np.count_nonzero(np.isnan(v) & raw[col].notna().to_numpy()))
        if conv == "F":
            v = (v - 32.0) * 5.0 / 9.0
        elif conv == "frac":
            v = v * 100.0
        elif conv == "inH2O":
            v = v * INH2O_TO_PA
        out[name] = v
        units[name] = spec.unit
        origin[name] = col
    df = pd.DataFrame(out, index=pd.DatetimeIndex(ts, name="ts"))
    df["fault"] = truth_labels(raw[TRUTH]).array
    df.attrs["units"] = units
    df.attrs["columns"] = origin
    df.attrs["bad_cells"] = {k: v for k, v in bad_cells.items() if v}
    df.attrs["source"] = str(path)
    return df


def truth_labels(column: pd.Series) -> pd.Series:
    """Ground-truth cells → nullable booleans: non-zero → True, 0 → False, blank/garbage → <NA>.

    A missing label is unlabeled, never faulted: ``NaN != 0`` must not count as a fault."""
    v = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    known = np.isfinite(v)
    out = pd.array(np.where(known, v != 0, False), dtype="boolean")
    out[~known] = pd.NA
    return pd.Series(out, index=column.index)


def lbnl_site(columns: Sequence[str], name: str = "lbnl") -> Site:
    """A site with one AHU (id ``ahu``) whose points are the given (renamed) columns.

    The ``fault`` ground-truth column is not a point and is skipped.
    """
    specs = {n: spec for n, spec, _ in COLUMNS.values()}
    cols = [c for c in columns if c != "fault"]
    return build_site(
        name,
        "ahu",
        "ahu",
        cols,
        specs,
        poll_interval_s=PERIOD_S,
        default=PointSpec("1"),
        description="LBNL labelled AHU fault dataset (replayed)",
    )


# ---- the inventory ---------------------------------------------------------------
# Which table of the inventory describes which dataset: (start marker, end marker).
_SECTIONS = {
    "SZCAV": ("Table 3-3. Experimental input scenarios", "Table 3-4."),
    "SZVAV": ("Table 3-4. Experimental input scenarios", "4. Experimental rooftop unit"),
    "MZVAV-2-1": ("Table 2-2. Experimental input scenarios", "Table 2-2. Simulation"),
    "MZVAV-2-2": ("Table 2-2. Simulation Input scenarios", "3. Experimental single-zone"),
}
_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})\b")
_INTENSITY = re.compile(
    r"(Fully (?:open|closed)(?: ?\(\d+%\))?|Partially open ?\(?\d+%\)?|"
    r"\d+% of max [a-z ]+|Stage \d: [\d.]+ GPM|\d+% Open|Minimum(?: position)?)",
    re.IGNORECASE,
)


def fault_type_by_date(inventory: str | Path, dataset: str) -> dict[date, str]:
    """Fault imposed on each date of ``dataset`` (``"SZCAV"``, ``"SZVAV"``, ``"MZVAV-2-1"``, ``"MZVAV-2-2"``).

    Parsed from the inventory's scenario table: component (``OA damper``,
    ``heating coil valve``, ``cooling coil valve``), mode (``stuck``/``leaking``)
    and intensity, or ``"unfaulted"``.
    """
    path = Path(inventory)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from err
    if dataset not in _SECTIONS:
        raise ConfigError(f"{path}: unknown dataset {dataset!r}; known: {sorted(_SECTIONS)}")
    start_m, end_m = _SECTIONS[dataset]
    start = text.find(start_m)
    if start < 0:
        raise ConfigError(f"{path}: no scenario table for {dataset} ({start_m!r})")
    end = text.find(end_m, start + len(start_m))
    section = text[start : end if end > 0 else len(text)]
    # PDF text breaks the component names over lines ("OA \nDamper", "Valve of \nHeating \nCoil").
    section = re.sub(r"\bOA\s*\n\s*Damper", "OA Damper", section)
    section = re.sub(
        r"Valve of\s*\n\s*(Heating|Cooling)\s*(?:\n\s*)?Coil", r"Valve of \1 Coil", section
    )

    out: dict[date, str] = {}
    component, mode, intensity = "", "", ""
    pending = ""  # an intensity phrase may run over two lines ("20% of max damper" / "flow")
    for line in section.splitlines()[1:]:
        low = line.lower().strip()
        if low.startswith("oa damper"):
            component, intensity = "OA damper", ""
        elif low.startswith(("heating coil", "valve of heating coil")):
            component, intensity = "heating coil valve", ""
        elif low.startswith(("cooling coil", "valve of cooling coil")):
            component, intensity = "cooling coil valve", ""
        if "unfaulted" in low:
            component, mode, intensity = "unfaulted", "", ""
        m_mode = re.search(r"\b(Stuck|Leaking)\b", line)
        if m_mode:
            mode, intensity = m_mode.group(1).lower(), ""
        m_int = _INTENSITY.search(line)
        if m_int:
            intensity = m_int.group(1).strip()
            pending = intensity if " of max " in intensity and "flow" not in intensity else ""
        elif pending and low in ("flow", "valve flow"):
            intensity = f"{pending} {low}"
            pending = ""
        for mo, d, y in _DATE.findall(line):
            year = int(y) + (2000 if len(y) == 2 else 0)
            day = date(year, int(mo), int(d))
            if component == "unfaulted":
                out[day] = "unfaulted"
            else:
                label = f"{component} {mode}".strip()
                out[day] = f"{label}: {intensity.lower()}" if intensity else label
    if not out:
        raise ConfigError(f"{path}: no dates found in the {dataset} scenario table")
    return out


def fault_labels(df: pd.DataFrame, by_date: dict[date, str]) -> pd.Series:
    """Per-row fault type (``"unfaulted"`` where the ground truth is 0, ``"unlabeled"`` where
    it is missing, ``"unknown"`` if undated)."""
    days = pd.Series(df.index.date, index=df.index)
    labels = days.map(lambda d: by_date.get(d, "unknown"))
    if "fault" in df.columns:
        truth = df["fault"].astype("boolean")
        labels = labels.where(truth.fillna(True), "unfaulted")
        labels = labels.where(truth.notna(), "unlabeled")
    return labels.astype(str)
