"""How wrong the agent's what-if was: its prediction at each executed write against the plant.

For every executed decision with a prediction, the predicted steady state (``after``) is
compared with what the twin's true plant did once it had settled: the mean over
``[ts + settle_s, ts + settle_s + span_s]`` of the matching plant series. The error is
ASHRAE Guideline 14's CV(RMSE) (and NMBE) over the writes, for plant cooling power (the
quantity the what-if exists to predict; the eval's ``whatif_cv_rmse_pct``) and a few more
outputs. Writes are also split by the model in use (catalogue vs. calibrated): a prediction
carries ``model`` when the agent ran on calibrated parameters (and the run says when its
first calibration was adopted).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.calibrate import metrics

__all__ = ["SETTLE_S", "whatif_error"]

SETTLE_S = 600.0
SPAN_S = 300.0
#: what-if output → true plant series it predicts
OBSERVED: dict[str, str] = {
    "cooling_kw": "plant.cooling_power",
    "facility_kw": "plant.facility_power",
    "chiller_kw": "chiller_kw",
    "cw_supply_c": "ct_1.cw_supply_temp",
}


def _chiller_kw(series: pd.DataFrame) -> pd.Series:
    cols = [c for c in series.columns if c.startswith("chiller_") and c.endswith(".power")]
    return series[cols].sum(axis=1)


def _prediction(p: Any) -> dict[str, Any] | None:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return None
    return p if isinstance(p, dict) else json.loads(p)


def whatif_error(
    decisions: pd.DataFrame,
    series: pd.DataFrame,
    settle_s: float = SETTLE_S,
    calibrated_since: Any = None,
    faults: Sequence[tuple[pd.Timestamp, pd.Timestamp]] = (),
) -> dict[str, Any]:
    """CV(RMSE)/NMBE (%) of the what-if's predictions at executed writes (see module doc).

    A write counts as calibrated when its prediction says so, or when it came after
    ``calibrated_since`` (the first adopted calibration of the run). ``faults``: the
    scenario's injected faults (start, end); a write whose span — the write to the end of
    its settled window — overlaps one is also scored apart (``…_outside_faults``): during a
    utility loss the model answers for the plant as it is (chillers off) and the plant then
    moves for the outage's reasons (power back, chillers pulling a warm loop down), which is
    no error of the what-if's. The headline keeps every write."""
    out: dict[str, Any] = {"whatif_cv_rmse_pct": None, "whatif_nmbe_pct": None, "whatif_writes": 0}
    if decisions.empty or series.empty or "prediction" not in decisions:
        return out
    s = series.copy()
    s["chiller_kw"] = _chiller_kw(s)
    rows: list[dict[str, Any]] = []
    done = decisions[decisions["outcome"] == "executed"].sort_values("ts")
    for ts, raw in zip(done["ts"], done["prediction"], strict=True):
        pred = _prediction(raw)
        if not pred or not pred.get("after"):
            continue
        t0 = pd.Timestamp(ts) + pd.Timedelta(seconds=settle_s)
        seen = s[(s.index >= t0) & (s.index <= t0 + pd.Timedelta(seconds=SPAN_S))]
        if seen.empty:
            continue
        after_cal = calibrated_since is not None and pd.Timestamp(ts) >= pd.Timestamp(
            calibrated_since
        )
        end = t0 + pd.Timedelta(seconds=SPAN_S)
        during = any(pd.Timestamp(ts) <= b and end >= a for a, b in faults)
        row: dict[str, Any] = {"calibrated": bool(pred.get("model")) or after_cal, "fault": during}
        for out_key, col in OBSERVED.items():
            p = pred["after"].get(out_key)
            if p is not None and col in seen:
                row[out_key] = (float(p), float(seen[col].mean()))
        rows.append(row)
    if not rows:
        return out

    def g14(sel: list[dict[str, Any]], key: str) -> tuple[float | None, float | None]:
        pairs = [r[key] for r in sel if key in r]
        if len(pairs) < 2:
            return None, None
        a = np.array(pairs)
        m = metrics(a[:, 1], a[:, 0])
        return round(m.cv_rmse_pct, 2), round(m.nmbe_pct, 2)

    cv, nmbe = g14(rows, "cooling_kw")
    out.update(whatif_cv_rmse_pct=cv, whatif_nmbe_pct=nmbe, whatif_writes=len(rows))
    out["whatif_cv_rmse_by_output_pct"] = {k: g14(rows, k)[0] for k in OBSERVED}
    for label, sel in (
        ("catalogue", [r for r in rows if not r["calibrated"]]),
        ("calibrated", [r for r in rows if r["calibrated"]]),
    ):
        out[f"whatif_cv_rmse_pct_{label}"] = g14(sel, "cooling_kw")[0]
        out[f"whatif_writes_{label}"] = len(sel)
    if faults:
        out["whatif_cv_rmse_pct_outside_faults"] = g14(
            [r for r in rows if not r["fault"]], "cooling_kw"
        )[0]
        out["whatif_writes_during_faults"] = sum(1 for r in rows if r["fault"])
    return out
