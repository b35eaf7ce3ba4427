"""Eval scenarios: a folder with ``scenario.yaml`` and (for open-loop replay) its telemetry.

Example (open loop, a recording replayed through the store and the agent)::

    name: rp1043-cf12
    description: condenser fouling, 12 % of tubes plugged (ASHRAE RP-1043)
    site: rp1043                 # twin | rp1043 | lbnl | esb | a site file in this folder
    source:
      kind: parquet
      file: telemetry.parquet    # wide frame: DatetimeIndex, one column per point
      truth: fault               # optional per-row ground truth column (bool)
      reference: reference.json  # optional chiller FDD reference (fault-free calibration)
    clock: {cycle: 5m}           # the agent decides once per 5 simulated minutes
    agent: {autonomy: 1}         # site ceiling for the run (default: the site's)
    detectors: [chiller]         # offline detectors also run on the telemetry: chiller, ahu, ahu_lab
    expect:
      faults: [{fault_class: condenser_fouling, within: 14h}]
      nothing_written: true
      max_autonomy: 1

Closed loop on the twin (the agent's actions applied; the twin's native control
without the agent is the baseline)::

    site: twin
    source:
      kind: twin
      duration: 24h
      seed: 1
      faults: [{kind: chiller_trip, target: chiller_1, start_s: 3600, duration_s: 1800}]
    clock: {cycle: 1m}
    agent: {autonomy: 3}
    expect: {energy_saving_min: 0.2, envelope_minutes_max: 0, throttle_minutes_max: 0}

A bad file raises :class:`~connectors.errors.ScenarioConfigError` naming the file and
the field, e.g. ``scenario.yaml: expect.faults[0].within: 'soon' is not a duration``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from connectors.config import Seconds, describe_validation_error, read_yaml_mapping
from connectors.errors import ScenarioConfigError
from tools.gate import APPROVAL_TTL_S

if TYPE_CHECKING:
    from tools.fdd.ahu import AhuFddConfig

SCENARIO_FILE = "scenario.yaml"
SITE_KINDS = ("twin", "rp1043", "lbnl", "esb")
DETECTORS = ("chiller", "ahu", "ahu_lab")
CHILLER_FAULTS = (
    "condenser_fouling", "reduced_condenser_flow", "reduced_evaporator_flow", "refrigerant_leak",
    "refrigerant_overcharge", "excess_oil", "non_condensables",
)  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParquetSource(_Strict):
    kind: Literal["parquet"] = "parquet"
    file: str = "telemetry.parquet"
    truth: str | None = Field(None, description="per-row ground-truth column (bool)")
    reference: str | None = Field(None, description="chiller FDD reference JSON in the folder")
    reference_folds: str | None = Field(
        None,
        description="k-fold chiller references (JSON in the folder) when the telemetry is the "
        "reference's own file: each hour block is scored by a reference fitted without it",
    )
    text: dict[str, str] = Field(
        default_factory=dict,
        description="telemetry text by tag (e.g. a point description or a text point's value)",
    )


class TwinFault(_Strict):
    """A fault on the twin's schedule (fields of :class:`twin.faults.Fault`)."""

    kind: str
    target: str
    start_s: Seconds = 0.0
    duration_s: Seconds | None = None
    magnitude: float | None = None


class TwinSource(_Strict):
    kind: Literal["twin"]
    duration: Seconds = Field(86400.0, gt=0)
    seed: int = 0
    faults: list[TwinFault] = Field(default_factory=list)
    text: dict[str, str] = Field(default_factory=dict)
    baseline: bool = Field(True, description="also run the twin's native control for comparison")
    control: Literal["legacy", "g36"] = Field(
        "legacy", description="the twin's native (BMS) control under the agent"
    )
    baselines: list[Literal["legacy", "g36"]] | None = Field(
        None,
        description="native controls run without the agent for comparison (default: both, "
        "the scenario's control first)",
    )
    weather: str | None = Field(
        None,
        description="TMY3 station shipped with pvlib (twin.weather.STATIONS); None = synthetic",
    )
    start: datetime | None = Field(
        None, description="simulated start, local standard time of the weather (default 2026-07-01)"
    )
    plant: str = Field(
        "default",
        description="the twin's own equipment (twin.plantspec): 'default' (twin/plant.yaml, not "
        "the agent's model), 'catalogue' (the model itself) or a plant file",
    )

    @field_validator("weather")
    @classmethod
    def _station(cls, v: str | None) -> str | None:
        from twin.weather import STATIONS

        if v is not None and v not in STATIONS:
            raise ValueError(f"unknown weather station {v!r} (known: {sorted(STATIONS)})")
        return v

    def baseline_modes(self) -> list[str]:
        """The native controls the agent is compared against (none when ``baseline`` is off)."""
        if not self.baseline:
            return []
        return list(dict.fromkeys(self.baselines or [self.control, "legacy", "g36"]))


class Clock(_Strict):
    cycle: Seconds = Field(300.0, gt=0, description="simulated seconds between agent decisions")
    sample: Seconds = Field(
        15.0, gt=0, description="closed loop: seconds between twin samples stored"
    )
    speed: float | Literal["max"] = Field("max", description="×real time; max = as fast as it goes")


class AgentSettings(_Strict):
    enabled: bool = True
    calibration: bool = Field(
        True, description="the agent refits its plant model on the run's history (hourly)"
    )
    approval_ttl: Seconds = Field(
        APPROVAL_TTL_S,
        gt=0,
        description="pending approvals expire after this (nobody answers in an eval)",
    )
    autonomy: int | None = Field(None, ge=0, le=3, description="site ceiling for the run")
    policies: list[str] | None = Field(
        None, description="policy files in the folder; None = shipped"
    )


class AhuSettings(_Strict):
    """Air-handler fault detection (:mod:`tools.fdd.ahu`) for the units of the scenario."""

    grade: Literal["field", "lab"] = Field(
        "field",
        description="tolerances the agent judges AHUs with: field (G36 defaults) or lab "
        "(calibrated sensors)",
    )
    settings: dict[str, float | int | bool] = Field(
        default_factory=dict,
        description="per-unit commissioning values (AhuFddConfig fields), e.g. fan_heat: 1.1; "
        "applied to the agent and to the ahu/ahu_lab detectors",
    )

    @field_validator("settings")
    @classmethod
    def _known(cls, v: dict[str, float | int | bool]) -> dict[str, float | int | bool]:
        from tools.fdd.ahu import G36_DEFAULTS, config_with

        config_with(G36_DEFAULTS, v)  # ValueError naming the unknown setting
        return v

    def config(self, grade: str | None = None) -> AhuFddConfig:
        """The detector configuration for ``grade`` (default: the agent's)."""
        from tools.fdd.ahu import G36_DEFAULTS, LAB_GRADE, config_with

        base = LAB_GRADE if (grade or self.grade) == "lab" else G36_DEFAULTS
        return config_with(base, self.settings)


class ExpectedFault(_Strict):
    fault_class: str
    within: Seconds | None = Field(None, description="seconds from the start of the telemetry")


class Expect(_Strict):
    faults: list[ExpectedFault] = Field(default_factory=list)
    no_fault_alarms: bool = Field(
        False, description="no fault class may be raised (fault-free data)"
    )
    below_detection_limit: list[str] = Field(
        default_factory=list,
        description="fault classes present in the data that the detector is not claimed to "
        "find (measured below its limit): not finding them is no failure, raising any other "
        "class is a false alarm",
    )
    nothing_written: bool = False
    max_autonomy: int | None = Field(None, ge=0, le=3)
    approval_requested: bool = False
    no_constraint_violated: bool = True
    row_recall_min: float | None = Field(None, ge=0, le=1)
    row_specificity_min: float | None = Field(None, ge=0, le=1)
    energy_saving_min: float | None = None
    energy_saving_target: float | None = Field(
        None,
        description="closed loop: a target saving reported (energy_saving_target_met in "
        "results.json), not asserted — for a target the agent does not honestly reach",
    )
    envelope_minutes_max: float | None = Field(None, ge=0)
    envelope_not_worse_than_baseline: bool = Field(
        False, description="closed loop: no more envelope minutes than the native control had"
    )
    throttle_minutes_max: float | None = Field(None, ge=0)


class Scenario(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    site: str = "twin"
    source: ParquetSource | TwinSource = Field(discriminator="kind")
    clock: Clock = Field(default_factory=Clock)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    detectors: list[str] = Field(default_factory=list)
    ahu: AhuSettings = Field(default_factory=AhuSettings)
    expect: Expect = Field(default_factory=Expect)
    tags: list[str] = Field(default_factory=list, description="e.g. fast (part of make test)")

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        for i, d in enumerate(self.detectors):
            if d not in DETECTORS:
                raise ValueError(
                    f"detectors[{i}]: unknown detector {d!r} (known: {list(DETECTORS)})"
                )
        if isinstance(self.source, TwinSource) and self.site != "twin":
            raise ValueError("site: a twin source runs on the twin's site (site: twin)")
        if self.site not in SITE_KINDS and not self.site.endswith((".yaml", ".yml")):
            raise ValueError(
                f"site: {self.site!r} is neither one of {list(SITE_KINDS)} nor a .yaml file"
            )
        return self

    @property
    def closed_loop(self) -> bool:
        return isinstance(self.source, TwinSource)


def parse_scenario(data: Any, origin: str = SCENARIO_FILE) -> Scenario:
    """Validate scenario data; errors name ``origin`` and the field."""
    if not isinstance(data, dict):
        raise ScenarioConfigError(f"{origin}: expected a mapping at the top level")
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        # the discriminated union's branch names (source.parquet / source.twin) are noise
        raise ScenarioConfigError(
            describe_validation_error(err, origin, skip=("parquet", "twin"))
        ) from None


def load_scenario(folder: str | Path) -> tuple[Scenario, Path]:
    """Load ``folder/scenario.yaml`` (or a path to the file itself). Returns (scenario, folder)."""
    p = Path(folder)
    path = p if p.is_file() else p / SCENARIO_FILE
    data, _ = read_yaml_mapping(path, ScenarioConfigError, origin=str(path))
    scn = parse_scenario(data, origin=str(path))
    folder_path = path.parent
    if isinstance(scn.source, ParquetSource):
        for field, name in (("file", scn.source.file), ("reference", scn.source.reference)):
            if name is not None and not (folder_path / name).is_file():
                raise ScenarioConfigError(
                    f"{path}: source.{field}: {name} not found in {folder_path}"
                )
    return scn, folder_path


def dump_scenario(scn: Scenario, folder: str | Path) -> Path:
    """Write ``folder/scenario.yaml`` (creating the folder)."""
    f = Path(folder)
    f.mkdir(parents=True, exist_ok=True)
    path = f / SCENARIO_FILE
    data = scn.model_dump(mode="json", exclude_unset=True)
    data.setdefault("source", {})["kind"] = scn.source.kind
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path
