"""One site's fault-detection settings: chiller references and AHU tolerances.

:class:`FddState` belongs to the site's agent context (never to a module): the
chiller detector compares an equipment against the fault-free reference installed
for it (or for ``"*"``, every chiller), the AHU rules use the tolerance set chosen
for it (default :data:`tools.fdd.ahu.G36_DEFAULTS`).

What must survive a restart is kept in the site's DuckDB, in the table
``fdd_references(equipment, kind, params JSON, fitted_at, source)`` owned here
(append-only; the newest row per equipment and kind wins):

* :func:`save_reference` stores a chiller reference (``kind = 'chiller_reference'``);
* :func:`save_ahu_config` stores an AHU tolerance set (``kind = 'ahu_config'``);
* :meth:`FddState.load` reads them back — the agent context of ``run`` and ``demo``
  does this when it is built, so a reference saved into the store is used from the
  next start.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.clock import utcnow
from connectors.errors import ConfigError
from connectors.store import Store
from tools.fdd.ahu import G36_DEFAULTS, AhuFddConfig
from tools.fdd.chiller import ChillerReference

FDD_DDL = """
CREATE TABLE IF NOT EXISTS fdd_references (
    equipment VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    params JSON NOT NULL,
    fitted_at TIMESTAMP NOT NULL,
    source VARCHAR
);
"""
CHILLER_REFERENCE = "chiller_reference"
AHU_CONFIG = "ahu_config"
ANY = "*"


@dataclass
class FddState:
    """Chiller references and AHU settings of one site, per equipment id (``"*"`` = all)."""

    references: dict[str, ChillerReference] = field(default_factory=dict)
    ahu_configs: dict[str, AhuFddConfig] = field(default_factory=dict)

    @classmethod
    def load(cls, store: Store) -> FddState:
        """The settings saved in ``store`` (the newest per equipment and kind)."""
        store.ensure_schema(FDD_DDL)
        df = store.query(
            """SELECT equipment, kind, params FROM fdd_references
               QUALIFY row_number() OVER (PARTITION BY equipment, kind ORDER BY rowid DESC) = 1"""
        )
        out = cls()
        for eq, kind, params in zip(df["equipment"], df["kind"], df["params"], strict=True):
            data = json.loads(params)
            origin = f"fdd_references[{eq}, {kind}]"
            if kind == CHILLER_REFERENCE:
                out.references[str(eq)] = ChillerReference.from_dict(data, origin)
            elif kind == AHU_CONFIG:
                out.ahu_configs[str(eq)] = _ahu_config(data, origin)
        return out

    def chiller_reference(self, equipment_id: str) -> ChillerReference | None:
        return self.references.get(equipment_id) or self.references.get(ANY)

    def set_chiller_reference(self, ref: ChillerReference, equipment_id: str = ANY) -> None:
        """Use ``ref`` for ``equipment_id`` in this process (:func:`save_reference` keeps it)."""
        self.references[equipment_id] = ref

    def ahu_config(self, equipment_id: str) -> AhuFddConfig:
        return self.ahu_configs.get(equipment_id) or self.ahu_configs.get(ANY) or G36_DEFAULTS

    def set_ahu_config(self, cfg: AhuFddConfig, equipment_id: str = ANY) -> None:
        self.ahu_configs[equipment_id] = cfg

    def has_chiller_reference(self) -> bool:
        return bool(self.references)


def _ahu_config(data: dict[str, Any], origin: str) -> AhuFddConfig:
    try:
        return AhuFddConfig(**data)
    except TypeError as err:
        raise ConfigError(f"{origin}: not an AHU configuration: {err}") from None


def _save(
    store: Store,
    equipment: str,
    kind: str,
    params: dict[str, Any],
    fitted_at: datetime | None,
    source: str,
) -> None:
    store.ensure_schema(FDD_DDL)
    store.query(
        "INSERT INTO fdd_references VALUES (?, ?, ?, ?, ?)",
        [equipment, kind, json.dumps(params), fitted_at or utcnow(), source],
    )


def save_reference(
    store: Store,
    equipment: str,
    ref: ChillerReference,
    *,
    fitted_at: datetime | None = None,
    source: str | None = None,
) -> None:
    """Store the fault-free reference of chiller ``equipment`` (``"*"``: every chiller)."""
    _save(store, equipment, CHILLER_REFERENCE, ref.to_dict(), fitted_at, source or ref.source)


def save_ahu_config(store: Store, equipment: str, cfg: AhuFddConfig, *, source: str = "") -> None:
    """Store the AHU tolerance set of ``equipment`` (``"*"``: every air handler)."""
    _save(store, equipment, AHU_CONFIG, dataclasses.asdict(cfg), None, source)
