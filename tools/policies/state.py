"""What the policy engine must remember across a restart: when each instance last fired.

A policy's ``cooldown`` is a promise to the operator ("at most one request every two
minutes"); it must hold after the site process restarts. :class:`PolicyState` keeps
the last firing time per instance key (``policy_id`` or ``policy_id@equipment``) and,
when given a store, writes every firing to the ``policy_state`` table it owns and
reads it back on :meth:`PolicyState.load`.

Hold timers and hysteresis are not kept: they describe the last few seconds of
readings, which a restarted process observes again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from connectors.store import Store

POLICY_STATE_DDL = """
CREATE TABLE IF NOT EXISTS policy_state (
    instance_key VARCHAR PRIMARY KEY,
    policy_id VARCHAR NOT NULL,
    last_fired TIMESTAMP NOT NULL
);
"""


@dataclass
class PolicyState:
    """Last firing time per policy instance (``store=None``: kept in memory only)."""

    last_fired: dict[str, datetime] = field(default_factory=dict)
    store: Store | None = None

    @classmethod
    def load(cls, store: Store) -> PolicyState:
        """The state saved in ``store`` (creating the table), saving further firings there."""
        store.ensure_schema(POLICY_STATE_DDL)
        df = store.query("SELECT instance_key, last_fired FROM policy_state")
        fired = {
            str(k): pd.Timestamp(t).to_pydatetime()
            for k, t in zip(df["instance_key"], df["last_fired"], strict=True)
        }
        return cls(fired, store)

    def fired(self, instance_key: str, policy_id: str, t: datetime) -> None:
        """Instance ``instance_key`` fired at ``t`` (its cool-down starts now)."""
        self.last_fired[instance_key] = t
        if self.store is not None and not self.store.read_only:
            self.store.query(
                "INSERT OR REPLACE INTO policy_state VALUES (?, ?, ?)", [instance_key, policy_id, t]
            )
