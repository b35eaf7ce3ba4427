"""A few ``Chiller:Electric:EIR`` curve sets embedded as data, so the project runs without the file.

Source: EnergyPlus ``datasets/Chillers.idf`` (reference data from the CoolTools
project, curves developed from manufacturers' data 1991–2001), copied field for
field. EnergyPlus is distributed under a BSD-style licence: "EnergyPlus,
Copyright (c) 1996-2025, The Board of Trustees of the University of Illinois,
The Regents of the University of California, through Lawrence Berkeley National
Laboratory, Oak Ridge National Laboratory, managed by UT-Battelle, Alliance for
Sustainable Energy, LLC, and other contributors. All rights reserved."; see
``../shared/datasets/energyplus/LICENSE.txt``. The values below are exactly as
in that file (tests compare them with it when it is present).

``DEFAULT_CHILLER`` is the twin's chiller: a 1407 kW (400 ton) variable-speed
centrifugal whose curves cover leaving chilled water 4.44–10 °C and entering
condenser water 12.78–32.22 °C.
"""

from __future__ import annotations

from perfmodel.idf import Biquadratic, ChillerEIR, Quadratic

__all__ = ["CHILLERS", "DEFAULT_CHILLER", "chiller"]

_SETS: tuple[ChillerEIR, ...] = (
    ChillerEIR(
        name="ElectricEIRChiller Carrier 19XR 1407kW/6.04COP/VSD",
        ref_capacity_w=1406600.0,
        ref_cop=6.04,
        ref_chw_leaving_c=6.67,
        ref_cond_entering_c=29.44,
        ref_chw_flow_m3s=0.06057,
        ref_cond_flow_m3s=0.07571,
        capft=Biquadratic(
            name="ElectricEIRChiller Carrier 19XR 1407kW/6.04COP/VSD CAPFT",
            coefficients=(
                1.042261,
                0.002644821,
                -0.001468026,
                0.01366256,
                -0.0008302334,
                0.001573579,
            ),
            x_min=4.44,
            x_max=10.0,
            y_min=12.78,
            y_max=32.22,
        ),
        eirft=Biquadratic(
            name="ElectricEIRChiller Carrier 19XR 1407kW/6.04COP/VSD EIRFT",
            coefficients=(
                1.02634,
                -0.01612819,
                -0.001092591,
                -0.01784393,
                0.0007961842,
                -9.586049e-05,
            ),
            x_min=4.44,
            x_max=10.0,
            y_min=12.78,
            y_max=32.22,
        ),
        eirfplr=Quadratic(
            name="ElectricEIRChiller Carrier 19XR 1407kW/6.04COP/VSD EIRFPLR",
            coefficients=(0.118888, 0.6723542, 0.2068754),
            x_min=0.2,
            x_max=1.04,
        ),
        min_plr=0.2,
        max_plr=1.04,
        opt_plr=1.0,
        min_unloading_ratio=0.2,
        condenser_type="WaterCooled",
    ),
    ChillerEIR(
        name="ElectricEIRChiller Trane CVHE 1407kW/7.14COP/VSD",
        ref_capacity_w=1406600.0,
        ref_cop=7.14,
        ref_chw_leaving_c=5.56,
        ref_cond_entering_c=23.89,
        ref_chw_flow_m3s=0.05047,
        ref_cond_flow_m3s=0.07571,
        capft=Biquadratic(
            name="ElectricEIRChiller Trane CVHE 1407kW/7.14COP/VSD CAPFT",
            coefficients=(
                0.4521342,
                0.005248142,
                -0.006687636,
                0.05869437,
                -0.002390647,
                0.005040171,
            ),
            x_min=4.44,
            x_max=8.89,
            y_min=12.78,
            y_max=29.44,
        ),
        eirft=Biquadratic(
            name="ElectricEIRChiller Trane CVHE 1407kW/7.14COP/VSD EIRFT",
            coefficients=(
                0.5674858,
                0.04461513,
                -0.006341978,
                0.004674972,
                0.0004387295,
                0.0002778096,
            ),
            x_min=4.44,
            x_max=8.89,
            y_min=12.78,
            y_max=29.44,
        ),
        eirfplr=Quadratic(
            name="ElectricEIRChiller Trane CVHE 1407kW/7.14COP/VSD EIRFPLR",
            coefficients=(0.05963988, 0.3503067, 0.587),
            x_min=0.3,
            x_max=1.06,
        ),
        min_plr=0.3,
        max_plr=1.06,
        opt_plr=1.0,
        min_unloading_ratio=0.3,
        condenser_type="WaterCooled",
    ),
    ChillerEIR(
        name="ElectricEIRChiller York YK 1881kW/6.53COP/Vanes",
        ref_capacity_w=1881400.0,
        ref_cop=6.53,
        ref_chw_leaving_c=8.89,
        ref_cond_entering_c=26.67,
        ref_chw_flow_m3s=0.04397,
        ref_cond_flow_m3s=0.1041,
        capft=Biquadratic(
            name="ElectricEIRChiller York YK 1881kW/6.53COP/Vanes CAPFT",
            coefficients=(
                0.8561286,
                0.04130164,
                -0.0007109335,
                0.004306273,
                -0.0006336613,
                0.0007211635,
            ),
            x_min=7.22,
            x_max=12.78,
            y_min=9.44,
            y_max=26.67,
        ),
        eirft=Biquadratic(
            name="ElectricEIRChiller York YK 1881kW/6.53COP/Vanes EIRFT",
            coefficients=(
                0.4434989,
                0.04361264,
                -0.001733337,
                0.009915503,
                0.0004312717,
                -0.001122346,
            ),
            x_min=7.22,
            x_max=12.78,
            y_min=9.44,
            y_max=26.67,
        ),
        eirfplr=Quadratic(
            name="ElectricEIRChiller York YK 1881kW/6.53COP/Vanes EIRFPLR",
            coefficients=(0.03626231, 0.5378739, 0.4265341),
            x_min=0.19,
            x_max=1.03,
        ),
        min_plr=0.19,
        max_plr=1.03,
        opt_plr=1.0,
        min_unloading_ratio=0.19,
        condenser_type="WaterCooled",
    ),
    ChillerEIR(
        name="ElectricEIRChiller McQuay WSC 471kW/5.89COP/Vanes",
        ref_capacity_w=471200.0,
        ref_cop=5.89,
        ref_chw_leaving_c=8.89,
        ref_cond_entering_c=26.67,
        ref_chw_flow_m3s=0.01035,
        ref_cond_flow_m3s=0.01924,
        capft=Biquadratic(
            name="ElectricEIRChiller McQuay WSC 471kW/5.89COP/Vanes CAPFT",
            coefficients=(
                0.252113,
                0.01324053,
                -0.008637329,
                0.08581056,
                -0.004261176,
                0.008661899,
            ),
            x_min=7.22,
            x_max=12.78,
            y_min=12.78,
            y_max=26.67,
        ),
        eirft=Biquadratic(
            name="ElectricEIRChiller McQuay WSC 471kW/5.89COP/Vanes EIRFT",
            coefficients=(
                0.4475238,
                -0.0258821,
                -0.001459053,
                0.04342595,
                -0.001000651,
                0.001920106,
            ),
            x_min=7.22,
            x_max=12.78,
            y_min=12.78,
            y_max=26.67,
        ),
        eirfplr=Quadratic(
            name="ElectricEIRChiller McQuay WSC 471kW/5.89COP/Vanes EIRFPLR",
            coefficients=(0.2778889, 0.2338363, 0.4883748),
            x_min=0.1,
            x_max=1.15,
        ),
        min_plr=0.1,
        max_plr=1.15,
        opt_plr=1.0,
        min_unloading_ratio=0.1,
        condenser_type="WaterCooled",
    ),
)

CHILLERS: dict[str, ChillerEIR] = {c.name: c for c in _SETS}
DEFAULT_CHILLER: ChillerEIR = _SETS[0]


def chiller(name: str | None = None) -> ChillerEIR:
    """An embedded chiller by name (case-insensitive; a unique substring is enough)."""
    if name is None:
        return DEFAULT_CHILLER
    if name in CHILLERS:
        return CHILLERS[name]
    hits = [c for n, c in CHILLERS.items() if name.lower() in n.lower()]
    if len(hits) != 1:
        raise KeyError(f"no unique embedded chiller matches {name!r}; have {sorted(CHILLERS)}")
    return hits[0]
