"""The performance model: pure, vectorised physics of the plant's power and cooling.

Component families, each a few numpy functions with units and sources in
their docstrings (scalars or arrays in, arrays out — the twin can call them
per step for one plant, the optimiser for ten thousand candidates):

* :mod:`perfmodel.chiller` — DOE-2/EnergyPlus EIR chiller (``chiller_performance``);
  :mod:`perfmodel.idf` reads ``Chiller:Electric:EIR`` from IDF text,
  :mod:`perfmodel.curves_data` embeds a few curve sets from EnergyPlus's Chillers.idf;
* :mod:`perfmodel.tower` — CoolTools approach, fan speed for a leaving-water target,
  fan power, wet bulb (psychrolib);
* :mod:`perfmodel.pumps` — affinity laws, VFD and motor efficiency;
* :mod:`perfmodel.liquid` — CDU loop, GPU die temperature, DVFS power ↔ clock;
* :mod:`perfmodel.air` — CRAH supply air, recirculation, rack inlet, ASHRAE envelope;
* :mod:`perfmodel.power` — transformer, UPS, PDU losses, Peukert battery runtime;
* :mod:`perfmodel.kpi` — PUE, kW/ton, COP.

On top: :mod:`perfmodel.state` (``PlantState``, ``Change``), :mod:`perfmodel.plant`
(the chained steady state, ``solve`` over arrays / ``steady_state`` for one
plant), :mod:`perfmodel.whatif` (prediction after changes, constraints,
validity), :mod:`perfmodel.optimise` (grid search for the lowest power) and
:mod:`perfmodel.calibrate` (least-squares fits to telemetry, Guideline 14
metrics). Nothing here does I/O or imports the rest of the project.
"""

from perfmodel.optimise import OptimiseResult, optimise
from perfmodel.whatif import (
    Change,
    Constraint,
    PlantState,
    Prediction,
    PredictionBatch,
    steady_state,
    whatif,
    whatif_many,
)

__all__ = [
    "Change",
    "Constraint",
    "OptimiseResult",
    "PlantState",
    "Prediction",
    "PredictionBatch",
    "optimise",
    "steady_state",
    "whatif",
    "whatif_many",
]
