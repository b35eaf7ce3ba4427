"""The IDF reader and the chiller curves against EnergyPlus's Chillers.idf."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import dataset_file

from perfmodel import chiller
from perfmodel.curves_data import CHILLERS
from perfmodel.idf import IdfError, parse_chillers

SMALL = """
! a comment
  Chiller:Electric:EIR,
    Test Chiller,            !- Name
    Autosize,                !- Reference Capacity {W}
    5.5,                     !- Reference COP {W/W}
    6.67, 29.4, Autosize, Autosize,
    T CAPFT, T EIRFT, T PLR,
    0.1, 1.0, 1.0, 0.2,
    a, b, c, d, WaterCooled, , 1.0, 2.0, NotModulated;
  Curve:Biquadratic, T CAPFT, 1, 0.1, 0.01, 0.2, 0.02, 0.001, 5, 10, 20, 30;
  Curve:Biquadratic, T EIRFT, 0.5, 0, 0, 0.01, 0, 0, 5, 10, 20, 30;
  Curve:Quadratic, T PLR, 0.2, 0.3, 0.5, 0, 1;
"""


def test_parse_small_text() -> None:
    ch = parse_chillers(SMALL)["Test Chiller"]
    assert ch.ref_capacity_w is None and ch.ref_cop == 5.5
    assert ch.capft.coefficients == (1.0, 0.1, 0.01, 0.2, 0.02, 0.001)
    assert (ch.capft.x_min, ch.capft.x_max, ch.capft.y_min, ch.capft.y_max) == (5, 10, 20, 30)
    assert ch.eirfplr.coefficients == (0.2, 0.3, 0.5)
    assert (ch.min_plr, ch.max_plr, ch.min_unloading_ratio) == (0.1, 1.0, 0.2)
    # 1 + 0.1·7 + 0.01·49 + 0.2·25 + 0.02·625 + 0.001·175 = 19.865
    assert chiller.capft(ch, 7.0, 25.0) == pytest.approx(19.865, abs=1e-12)


def test_missing_curve_is_a_clear_error() -> None:
    text = SMALL.replace("Curve:Quadratic, T PLR", "Curve:Quadratic, OTHER")
    with pytest.raises(IdfError, match=r"Test Chiller: EIRFPLR curve 'T PLR' not found"):
        parse_chillers(text)


def _raw_curve(text: str, kind: str, name: str) -> list[float]:
    """Coefficients straight from the text with a regex (independent of the parser)."""
    pat = re.compile(
        rf"{kind},\s*\n\s*{re.escape(name)},[^\n]*\n((?:\s*[-0-9.Ee+]+,[^\n]*\n)+)", re.IGNORECASE
    )
    m = pat.search(text)
    assert m, f"{name} not in file"
    nums = re.findall(r"^\s*([-0-9.Ee+]+),", m.group(1), re.MULTILINE)
    return [float(v) for v in nums]


@pytest.fixture(scope="module")
def idf_text() -> str:
    return Path(dataset_file("energyplus", "Chillers.idf")).read_text()


THREE = [
    "ElectricEIRChiller McQuay WSC 471kW/5.89COP/Vanes",
    "ElectricEIRChiller York YT 1396kW/7.35COP/Vanes",
    "ElectricEIRChiller Carrier 19XR 1407kW/6.04COP/VSD",
    "ElectricEIRChiller Trane CVHE 1407kW/7.14COP/VSD",
]


def test_file_holds_162_eir_chillers(idf_text: str) -> None:
    assert len(parse_chillers(idf_text)) == 162


@pytest.mark.parametrize("name", THREE)
def test_chiller_functions_reproduce_file_curves(idf_text: str, name: str) -> None:
    ch = parse_chillers(idf_text)[name]
    x = np.linspace(ch.capft.x_min, ch.capft.x_max, 7)[:, None]
    y = np.linspace(ch.capft.y_min, ch.capft.y_max, 7)[None, :]
    for kind, fn in (("CAPFT", chiller.capft), ("EIRFT", chiller.eirft)):
        c = _raw_curve(idf_text, "Curve:Biquadratic", f"{name} {kind}")
        expect = c[0] + c[1] * x + c[2] * x**2 + c[3] * y + c[4] * y**2 + c[5] * x * y
        np.testing.assert_allclose(fn(ch, x, y), expect, rtol=0, atol=1e-9)
    q = _raw_curve(idf_text, "Curve:Quadratic", f"{name} EIRFPLR")
    plr = np.linspace(ch.eirfplr.x_min, ch.eirfplr.x_max, 11)
    np.testing.assert_allclose(
        chiller.eirfplr(ch, plr), q[0] + q[1] * plr + q[2] * plr**2, rtol=0, atol=1e-9
    )


@pytest.mark.parametrize("name", sorted(CHILLERS))
def test_embedded_curves_equal_the_file(idf_text: str, name: str) -> None:
    assert parse_chillers(idf_text)[name] == CHILLERS[name]
