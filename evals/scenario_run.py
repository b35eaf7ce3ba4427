"""What running one scenario gives: the ``results.json`` entry and the frames the report plots."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from evals.scenario import Scenario

Progress = Callable[[float], None]
"""Called with the fraction of the scenario done (0–1)."""


@dataclass
class ScenarioRun:
    scenario: Scenario
    folder: Path
    result: dict[str, Any]
    telemetry: pd.DataFrame = field(default_factory=pd.DataFrame)
    decisions: pd.DataFrame = field(default_factory=pd.DataFrame)
    writes: pd.DataFrame = field(default_factory=pd.DataFrame)
    quality: pd.DataFrame = field(default_factory=pd.DataFrame)
    baseline: pd.DataFrame = field(default_factory=pd.DataFrame)
    detector_rows: pd.Series | None = None
