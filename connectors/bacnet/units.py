"""Site units (``degC``, ``kW``, ``%`` …) ↔ BACnet engineering units (pure)."""

from __future__ import annotations

import re

#: The BACnet engineering unit a point of each site unit must report.
SITE_TO_BACNET: dict[str, str] = {
    "degC": "degrees-celsius",
    "degF": "degrees-fahrenheit",
    "K": "degrees-kelvin",
    "delta_degC": "delta-degrees-kelvin",
    "kW": "kilowatts",
    "W": "watts",
    "MW": "megawatts",
    "kWh": "kilowatt-hours",
    "kVA": "kilovolt-amperes",
    "%": "percent",
    "%RH": "percent-relative-humidity",
    "L/s": "liters-per-second",
    "m3/h": "cubic-meters-per-hour",
    "m3/s": "cubic-meters-per-second",
    "A": "amperes",
    "V": "volts",
    "Hz": "hertz",
    "Pa": "pascals",
    "kPa": "kilopascals",
    "bar": "bars",
    "rpm": "revolutions-per-minute",
    "ppm": "parts-per-million",
    "s": "seconds",
    "h": "hours",
    "1": "no-units",
}


def canonical(units: str) -> str:
    """``degreesCelsius`` / ``DEGREES_CELSIUS`` / ``degrees-celsius`` → ``degrees-celsius``."""
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", units.strip())
    return s.replace("_", "-").replace(" ", "-").lower()


def expected_units(site_unit: str, declared: str | None) -> str | None:
    """The BACnet unit a point must report: its source's ``units``, else the site unit's
    mapping; None when nothing can be checked (booleans, an unmapped unit)."""
    if declared is not None:
        return canonical(declared)
    return SITE_TO_BACNET.get(site_unit)


def site_unit_for(bacnet_units: str) -> str:
    """The site unit for a device's BACnet unit (discovery's draft); unknown → the name."""
    want = canonical(bacnet_units)
    for site, bac in SITE_TO_BACNET.items():
        if bac == want:
            return site
    return want
