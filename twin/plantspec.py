"""How the twin's plant departs from its nameplates and from the agent's catalogue model.

The twin's true equipment is described by :class:`PlantSpec`, loaded from
``twin/plant.yaml`` (the default, with the spreads and their sources) or from another file
(``facility-agent twin --plant FILE``); :data:`CATALOGUE` is the plant that *is* the
model (every factor 1, the catalogue's own chiller curves). :meth:`PlantSpec.matches_model`
says which one a run used (the eval reports it as ``plant_matches_model``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.errors import ConfigError
from perfmodel.chiller import rated_at
from perfmodel.curves_data import DEFAULT_CHILLER, chiller
from perfmodel.idf import ChillerEIR

__all__ = [
    "CATALOGUE",
    "DEFAULT_PLANT_PATH",
    "PlantSpec",
    "default_plant",
    "load_plant",
    "resolve_plant",
]

DEFAULT_PLANT_PATH = Path(__file__).with_name("plant.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChillerSpec(_Strict):
    curves: str = Field(
        "catalogue", description="an embedded Chillers.idf curve set, or 'catalogue'"
    )
    rating_point_c: tuple[float, float] | None = Field(
        None, description="leaving CHW, entering CW (°C) where the nameplate holds"
    )
    capacity_factor: float = Field(1.0, gt=0.3, le=2.0)
    cop_factor: float = Field(1.0, gt=0.3, le=2.0)

    def eir(self) -> ChillerEIR:
        """The curve set of the twin's chillers."""
        if self.curves == "catalogue":
            ch = DEFAULT_CHILLER
        else:
            try:
                ch = chiller(self.curves)
            except KeyError as err:
                raise ConfigError(str(err.args[0])) from None
        if self.rating_point_c is not None:
            ch = rated_at(ch, *self.rating_point_c)
        return ch


class TowerSpec(_Strict):
    air_flow_factor: float = Field(1.0, gt=0.2, le=1.5)


class PumpSpec(_Strict):
    flow_factor: float = Field(1.0, gt=0.5, le=1.5)
    power_factor: float = Field(1.0, gt=0.5, le=1.5)


class PumpsSpec(_Strict):
    chw: PumpSpec = PumpSpec()
    cw: PumpSpec = PumpSpec()


class PlantSpec(_Strict):
    """The twin's plant against its nameplate (every default: the catalogue model)."""

    chiller: ChillerSpec = ChillerSpec()
    tower: TowerSpec = TowerSpec()
    pumps: PumpsSpec = PumpsSpec()
    source: str = Field("", exclude=True)

    def matches_model(self) -> bool:
        """True for the plant that is the agent's catalogue model."""
        return self.model_dump() == CATALOGUE.model_dump()

    def describe(self) -> str:
        if self.matches_model():
            return "catalogue plant (the model itself)"
        c, t, p = self.chiller, self.tower, self.pumps
        return (
            f"chiller {c.curves} curves, capacity ×{c.capacity_factor:g}, COP ×{c.cop_factor:g}; "
            f"tower air ×{t.air_flow_factor:g}; CHW pump flow ×{p.chw.flow_factor:g} "
            f"power ×{p.chw.power_factor:g}; CW pump flow ×{p.cw.flow_factor:g} "
            f"power ×{p.cw.power_factor:g}"
        )


CATALOGUE = PlantSpec()

PlantChoice = PlantSpec | Literal["default", "catalogue"] | Path | str | None


def load_plant(path: Path) -> PlantSpec:
    """A plant file; a bad one is a :class:`ConfigError` naming the file and the field."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: {err}") from None
    try:
        return PlantSpec.model_validate(data).model_copy(update={"source": str(path)})
    except ValidationError as err:
        e = err.errors()[0]
        where = ".".join(str(x) for x in e["loc"])
        raise ConfigError(f"{path.name}: {where}: {e['msg']}") from None


_DEFAULT: PlantSpec | None = None


def default_plant() -> PlantSpec:
    """``twin/plant.yaml`` (loaded once per process)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_plant(DEFAULT_PLANT_PATH)
    return _DEFAULT


def resolve_plant(choice: PlantChoice) -> PlantSpec:
    """``None``/'default' → twin/plant.yaml; 'catalogue' → :data:`CATALOGUE`; a path → its file."""
    if isinstance(choice, PlantSpec):
        return choice
    if choice is None or choice == "default":
        return default_plant()
    if choice == "catalogue":
        return CATALOGUE
    return load_plant(Path(choice))
