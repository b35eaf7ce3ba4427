"""Read ``Chiller:Electric:EIR`` objects and their performance curves from IDF text.

Pure: takes the text of an EnergyPlus input file (IDF), returns dataclasses.
Reading the file is the caller's job (``Path(...).read_text()``).

IDF grammar used here (EnergyPlus Input Output Reference, "IDF syntax"):
objects end with ``;``, fields are separated by ``,``, and ``!`` starts a
comment that runs to the end of the line. Object and curve names are
case-insensitive.

Field order follows the EnergyPlus IDD for ``Chiller:Electric:EIR``,
``Curve:Biquadratic`` and ``Curve:Quadratic`` (EnergyPlus Input Output
Reference, "Chiller:Electric:EIR", "Curve:Biquadratic", "Curve:Quadratic").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "Biquadratic",
    "ChillerEIR",
    "IdfError",
    "Quadratic",
    "parse_chillers",
    "parse_objects",
]


class IdfError(ValueError):
    """The IDF text does not hold what was asked for (missing object or bad field)."""


@dataclass(frozen=True)
class Biquadratic:
    """``z = c1 + c2·x + c3·x² + c4·y + c5·y² + c6·x·y`` valid on [x_min, x_max] × [y_min, y_max].

    For chiller CAPFT / EIRFT curves x is the leaving chilled-water temperature
    (°C) and y the entering condenser-fluid temperature (°C).
    """

    name: str
    coefficients: tuple[float, float, float, float, float, float]
    x_min: float
    x_max: float
    y_min: float
    y_max: float


@dataclass(frozen=True)
class Quadratic:
    """``z = c1 + c2·x + c3·x²`` valid on [x_min, x_max]; x is the part-load ratio (–)."""

    name: str
    coefficients: tuple[float, float, float]
    x_min: float
    x_max: float


@dataclass(frozen=True)
class ChillerEIR:
    """One ``Chiller:Electric:EIR`` with its three curves resolved.

    Units: capacity W (None when ``Autosize``), COP W/W, temperatures °C, flows m³/s, part-load ratios –.
    """

    name: str
    ref_capacity_w: float | None  # None when the IDF says Autosize
    ref_cop: float
    ref_chw_leaving_c: float
    ref_cond_entering_c: float
    ref_chw_flow_m3s: float | None
    ref_cond_flow_m3s: float | None
    capft: Biquadratic
    eirft: Biquadratic
    eirfplr: Quadratic
    min_plr: float
    max_plr: float
    opt_plr: float
    min_unloading_ratio: float
    condenser_type: str = "WaterCooled"
    #: leaving CHW / entering CW spans (°C) where site data validated this chiller's
    #: (calibrated) curves beyond their own ranges; the curves are still evaluated with
    #: inputs held inside their own ranges, as EnergyPlus does
    validated_chw_c: tuple[float, float] | None = None
    validated_cw_c: tuple[float, float] | None = None


def _strip_comments(text: str) -> str:
    return "\n".join(line.split("!", 1)[0] for line in text.splitlines())


def parse_objects(text: str) -> list[list[str]]:
    """Every object in IDF ``text`` as its list of fields (the first is the object type)."""
    body = _strip_comments(text)
    out: list[list[str]] = []
    for chunk in body.split(";"):
        fields = [f.strip() for f in chunk.split(",")]
        if fields and fields[0]:
            out.append(fields)
    return out


def _num(fields: list[str], i: int, what: str, *, required: bool = True) -> float | None:
    raw = fields[i] if i < len(fields) else ""
    if raw == "" or raw.lower() == "autosize":
        if required:
            raise IdfError(f"{fields[0]} {fields[1] if len(fields) > 1 else '?'}: {what} is empty")
        return None
    try:
        return float(raw)
    except ValueError:
        raise IdfError(f"{fields[0]} {fields[1]}: {what} is not a number: {raw!r}") from None


def _req(fields: list[str], i: int, what: str) -> float:
    v = _num(fields, i, what)
    assert v is not None
    return v


def _biquadratic(f: list[str]) -> Biquadratic:
    c = tuple(_req(f, 2 + k, f"Coefficient{k + 1}") for k in range(6))
    return Biquadratic(
        name=f[1],
        coefficients=(c[0], c[1], c[2], c[3], c[4], c[5]),
        x_min=_req(f, 8, "Minimum Value of x"),
        x_max=_req(f, 9, "Maximum Value of x"),
        y_min=_req(f, 10, "Minimum Value of y"),
        y_max=_req(f, 11, "Maximum Value of y"),
    )


def _quadratic(f: list[str]) -> Quadratic:
    return Quadratic(
        name=f[1],
        coefficients=(
            _req(f, 2, "Coefficient1 Constant"),
            _req(f, 3, "Coefficient2 x"),
            _req(f, 4, "Coefficient3 x**2"),
        ),
        x_min=_req(f, 5, "Minimum Value of x"),
        x_max=_req(f, 6, "Maximum Value of x"),
    )


def parse_chillers(text: str) -> dict[str, ChillerEIR]:
    """All ``Chiller:Electric:EIR`` objects in ``text`` by name, with curves resolved.

    Raises :class:`IdfError` naming the chiller and field when a curve is
    missing or a required number is empty.
    """
    objects = parse_objects(text)
    bi: dict[str, Biquadratic] = {}
    quad: dict[str, Quadratic] = {}
    raw_chillers: list[list[str]] = []
    for f in objects:
        kind = f[0].lower()
        if kind == "curve:biquadratic":
            bi[f[1].lower()] = _biquadratic(f)
        elif kind == "curve:quadratic":
            quad[f[1].lower()] = _quadratic(f)
        elif kind == "chiller:electric:eir":
            raw_chillers.append(f)
    out: dict[str, ChillerEIR] = {}
    for f in raw_chillers:
        name = f[1]

        def curve(i: int, table: Mapping[str, object], what: str, f: list[str] = f) -> object:
            key = f[i].lower() if i < len(f) else ""
            if key not in table:
                raise IdfError(f"Chiller:Electric:EIR {f[1]}: {what} curve {f[i]!r} not found")
            return table[key]

        capft = curve(8, bi, "CAPFT")
        eirft = curve(9, bi, "EIRFT")
        eirfplr = curve(10, quad, "EIRFPLR")
        assert isinstance(capft, Biquadratic) and isinstance(eirft, Biquadratic)
        assert isinstance(eirfplr, Quadratic)
        out[name] = ChillerEIR(
            name=name,
            ref_capacity_w=_num(f, 2, "Reference Capacity", required=False),
            ref_cop=_req(f, 3, "Reference COP"),
            ref_chw_leaving_c=_req(f, 4, "Reference Leaving Chilled Water Temperature"),
            ref_cond_entering_c=_req(f, 5, "Reference Entering Condenser Fluid Temperature"),
            ref_chw_flow_m3s=_num(f, 6, "Reference Chilled Water Flow Rate", required=False),
            ref_cond_flow_m3s=_num(f, 7, "Reference Condenser Fluid Flow Rate", required=False),
            capft=capft,
            eirft=eirft,
            eirfplr=eirfplr,
            min_plr=_req(f, 11, "Minimum Part Load Ratio"),
            max_plr=_req(f, 12, "Maximum Part Load Ratio"),
            opt_plr=_req(f, 13, "Optimum Part Load Ratio"),
            min_unloading_ratio=_req(f, 14, "Minimum Unloading Ratio"),
            condenser_type=f[19] if len(f) > 19 and f[19] else "WaterCooled",
        )
    return out
