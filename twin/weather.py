"""Real hourly weather for the twin: TMY3 files shipped inside the ``pvlib`` package.

``pvlib`` (a dependency) ships two NREL TMY3 typical-year files in ``pvlib/data``:
``723170TYA.CSV`` (Greensboro Piedmont Triad Intl, NC) and ``703165TY.csv`` (Sand
Point, AK). They are located with :mod:`importlib.resources` and parsed here (never
copied into this repository): dry bulb (°C), relative humidity (%) and station
pressure (mbar) of each hour; the wet bulb comes from psychrolib
(:func:`perfmodel.tower.wet_bulb`) at the station's pressure.

TMY3 stamps are local standard time, hour ending (``01:00`` … ``24:00``): the row
stamped ``MM/DD hh:00`` is taken as the value at that instant, and between rows the
twin interpolates linearly. A typical year mixes months from different years, so the
months' edges can jump; :class:`WeatherDay` only spans the chosen day (plus the twin's
3-hour warm-up before it).

    wx = load_weather("723170TYA", month=7, day=21)
    t_db, rh, wb = wx(3600.0 * 15)   # 15:00 local standard time on 21 July
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources

import numpy as np

from perfmodel.tower import wet_bulb

STATIONS: dict[str, str] = {
    "723170TYA": "Greensboro Piedmont Triad Intl, NC (TMY3)",
    "703165TY": "Sand Point, AK (TMY3)",
}
_HOURS_PER_YEAR = 8760


class WeatherError(ValueError):
    """A station that is not shipped, or a file that does not parse."""


def tmy3_text(station: str) -> str:
    """The text of the station's TMY3 file inside the installed ``pvlib`` package."""
    if station not in STATIONS:
        raise WeatherError(f"weather station {station!r} is not one of {sorted(STATIONS)}")
    try:
        data = resources.files("pvlib").joinpath("data")
    except ModuleNotFoundError:
        raise WeatherError(
            "the pvlib package (which ships the TMY3 files) is not installed"
        ) from None
    for entry in data.iterdir():
        if entry.name.rsplit(".", 1)[0] == station:
            return entry.read_text(encoding="latin-1")
    raise WeatherError(f"pvlib/data holds no TMY3 file for station {station!r}")


@dataclass(frozen=True)
class Tmy3:
    """One typical year, hour by hour (index 0 = 1 January 01:00 local standard time)."""

    station: str
    name: str
    t_db: np.ndarray  # °C
    rh: np.ndarray  # %
    pressure_pa: np.ndarray
    wb: np.ndarray  # °C, psychrolib


def parse_tmy3(text: str, station: str = "") -> Tmy3:
    """Parse a TMY3 CSV (two header lines, then 8760 hourly rows)."""
    lines = text.splitlines()
    if len(lines) < 2 + _HOURS_PER_YEAR:
        raise WeatherError(
            f"TMY3 {station}: {len(lines) - 2} data rows, expected {_HOURS_PER_YEAR}"
        )
    meta = next(csv.reader([lines[0]]))
    reader = csv.DictReader(io.StringIO("\n".join(lines[1 : 2 + _HOURS_PER_YEAR])))
    cols = ("Dry-bulb (C)", "RHum (%)", "Pressure (mbar)")
    vals: dict[str, list[float]] = {c: [] for c in cols}
    for n, row in enumerate(reader):
        for c in cols:
            try:
                vals[c].append(float(row[c]))
            except (KeyError, TypeError, ValueError):
                raise WeatherError(
                    f"TMY3 {station}: row {n + 3}: field {c!r} is missing or not a number"
                ) from None
    t_db = np.array(vals["Dry-bulb (C)"])
    rh = np.clip(np.array(vals["RHum (%)"]), 1.0, 100.0)
    p = np.array(vals["Pressure (mbar)"]) * 100.0
    p = np.where((p > 50_000.0) & (p < 110_000.0), p, 101_325.0)  # -9900 = missing
    wb = np.array([float(wet_bulb(t, r, pa)) for t, r, pa in zip(t_db, rh, p, strict=True)])
    return Tmy3(station, meta[1] if len(meta) > 1 else station, t_db, rh, p, wb)


@lru_cache(maxsize=4)
def load_tmy3(station: str) -> Tmy3:
    """The station's typical year (parsed once per process)."""
    return parse_tmy3(tmy3_text(station), station)


@dataclass(frozen=True)
class WeatherDay:
    """Outdoor conditions from ``start_h`` hours after 1 January 00:00: call with seconds
    since the twin's start (negative during its warm-up) → (dry bulb °C, RH %, wet bulb °C)."""

    station: str
    start_h: float
    hours: np.ndarray  # hours since 1 January 00:00 of each sample
    t_db: np.ndarray
    rh: np.ndarray
    wb: np.ndarray

    def __call__(self, t_s: float) -> tuple[float, float, float]:
        h = self.start_h + t_s / 3600.0
        return (
            float(np.interp(h, self.hours, self.t_db)),
            float(np.interp(h, self.hours, self.rh)),
            float(np.interp(h, self.hours, self.wb)),
        )

    def key(self) -> str:
        return f"{self.station}@{self.start_h:g}"


def load_weather(
    station: str, month: int, day: int, hour: float = 0.0, *, span_days: float = 3.0
) -> WeatherDay:
    """Conditions from ``month``/``day`` ``hour`` local standard time (a non-leap typical
    year), with a day of data before (the warm-up) and ``span_days`` after."""
    try:
        doy = date(2025, month, day).timetuple().tm_yday - 1  # 2025: not a leap year
    except ValueError as err:
        raise WeatherError(f"weather date {month:02d}-{day:02d}: {err}") from None
    y = load_tmy3(station)
    start_h = 24.0 * doy + hour
    # sample i is at i + 1 hours (hour ending); take [start − 24 h, start + 24 h · span]
    lo = int(24.0 * doy) - 24
    idx = np.arange(lo, lo + int(24 * (span_days + 1)) + 1)
    rows = (idx - 1) % _HOURS_PER_YEAR
    return WeatherDay(station, start_h, idx.astype(float), y.t_db[rows], y.rh[rows], y.wb[rows])
