"""Faults raised and cleared (:mod:`tools.policies.faults`) as JSON-ready rows: what
``GET /faults`` answers and ``facility-agent faults`` prints.

Each row is a fault as it stands (``faults_latest``): ``event`` ``raised`` (open) or
``cleared``, with ``raised_at``, ``cleared_at``, ``duration_s`` (raised → cleared), the
equipment, policy, fault class, severity, and the evidence that raised and cleared it.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pandas as pd

from connectors.store import Store
from tools.policies.faults import faults


def _clean(v: Any) -> Any:
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, pd.Timestamp | datetime):
        return v.isoformat()
    return v


def fault_list(
    store: Store, since: datetime | None = None, open_only: bool = False, limit: int = 200
) -> list[dict[str, Any]]:
    """Faults open at some time since ``since`` (all: None), newest raised first."""
    df = faults(store, since=since, open_only=open_only, limit=limit)
    return [{str(k): _clean(v) for k, v in r.items()} for r in df.to_dict("records")]
