"""``facility-agent calibrate``: fit the plant model to recorded telemetry.

``calibrate esb FILE --train-days 14`` fits the EIR (physics) form and a plain regression on
the first N days of the Vanderbilt ESB chiller, reports both on the remaining days, hourly,
by ASHRAE Guideline 14's CV(RMSE) and NMBE. Last line: JSON ``{"cv_rmse_pct", "nmbe_pct",
"points", …}`` for the physics form's chiller kW.

``calibrate site --db FILE [--window 6h] [--save]`` fits the site's own plant model on the
last window of its history in the DuckDB file (:mod:`tools.calibration`: held-out G14
scores against the catalogue, refusals); ``--save`` records the outcome in the file's
``model_calibrations`` table, and an adopted fit is what ``whatif`` and the agent then run
on. Exit 0 when a fit is adopted, 1 when the window is refused or nothing beats the
catalogue (the parameters in use stay). Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pandas as pd

from agent.commands._common import add_db_option, add_site_option, site_from_args
from connectors.config import parse_duration
from connectors.errors import ConfigError
from connectors.importers.esb import read_esb


def register(sub: Any) -> None:
    p = sub.add_parser("calibrate", help="fit the chiller/tower model to recorded telemetry")
    csub = p.add_subparsers(dest="format", metavar="FORMAT", required=True)
    e = csub.add_parser("esb", help="Vanderbilt ESB chiller CSV")
    e.add_argument("file", type=Path, help="the ESB chiller CSV (e.g. esb_chiller1.csv)")
    e.add_argument(
        "--train-days",
        type=float,
        default=14.0,
        help="days fitted before the test hours (default 14)",
    )
    e.set_defaults(func=run_esb)
    s = csub.add_parser("site", help="the site's own history in its DuckDB file")
    add_site_option(s)
    add_db_option(s)
    s.add_argument("--window", default="6h", help="history to fit on, ending at the newest reading")
    s.add_argument("--save", action="store_true", help="record the fit; an adopted one is used")
    s.set_defaults(func=run_site)


def esb_report(path: Path, train_days: float) -> dict[str, Any]:
    """Fit on the first ``train_days`` of hourly means, score on the rest (see module doc)."""
    from perfmodel.calibrate import fit_chiller, fit_regression, fit_tower, metrics  # scipy: lazy

    d = read_esb(path)
    h = d.resample("1h").mean().dropna()
    h = h[(h["PowChi"] > 1.0) & (h["Tons"] > 1.0)]
    cut = h.index[0] + pd.Timedelta(days=train_days)
    tr, te = h[h.index < cut], h[h.index >= cut]
    args_tr = (tr["Tons"], tr["TempEvapOut"], tr["TempCondIn"])
    args_te = (te["Tons"], te["TempEvapOut"], te["TempCondIn"])
    phys = fit_chiller(*args_tr, tr["PowChi"], name="ESB chiller 1")
    reg = fit_regression(*args_tr, tr["PowChi"])
    m_phys = metrics(te["PowChi"], phys.predict(*args_te))
    m_reg = metrics(te["PowChi"], reg.predict(*args_te))

    def tower_inputs(f: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
        fr_air = (f["PerFreqFanA"] + f["PerFreqFanB"]) / 200.0
        rng = f["TempCondOut"] - f["TempCondIn"]
        # condenser water flow from the energy balance: (Q_evap + P) / (c_p · range), kg/s
        m_cw = (f["Tons"] + f["PowChi"]) / (4.18 * rng)
        return f["TempWetbulb"], rng, m_cw / m_ref, fr_air

    m_ref = float(
        ((tr["Tons"] + tr["PowChi"]) / (4.18 * (tr["TempCondOut"] - tr["TempCondIn"]))).median()
    )
    tw = fit_tower(*tower_inputs(tr), tr["TempCondIn"] - tr["TempWetbulb"])
    ap_te = tw.predict(*tower_inputs(te))
    m_tw = metrics(te["TempCondIn"] - te["TempWetbulb"], ap_te)
    m_cw = metrics(te["TempCondIn"], te["TempWetbulb"] + ap_te)
    return {
        "cv_rmse_pct": round(m_phys.cv_rmse_pct, 3),
        "nmbe_pct": round(m_phys.nmbe_pct, 3),
        "points": m_phys.points,
        "train_points": phys.train.points,
        "regression_cv_rmse_pct": round(m_reg.cv_rmse_pct, 3),
        "regression_nmbe_pct": round(m_reg.nmbe_pct, 3),
        "tower_approach_cv_rmse_pct": round(m_tw.cv_rmse_pct, 3),
        "tower_approach_nmbe_pct": round(m_tw.nmbe_pct, 3),
        "tower_cw_supply_cv_rmse_pct": round(m_cw.cv_rmse_pct, 3),
        "tower_cw_supply_nmbe_pct": round(m_cw.nmbe_pct, 3),
        "fitted_cop_ref": round(phys.chiller.ref_cop, 3),
        "fitted_capacity_kw": round((phys.chiller.ref_capacity_w or 0.0) / 1000.0, 1),
    }


def run_esb(args: argparse.Namespace) -> int:
    r = esb_report(args.file, args.train_days)
    print(
        f"chiller kW, hourly, {r['points']} test hours after {args.train_days:g} training days:\n"
        f"  EIR physics form: CV(RMSE) {r['cv_rmse_pct']:.2f} %  NMBE {r['nmbe_pct']:+.2f} %\n"
        f"  plain regression: CV(RMSE) {r['regression_cv_rmse_pct']:.2f} %  "
        f"NMBE {r['regression_nmbe_pct']:+.2f} %\n"
        f"  tower approach (CoolTools, flows calibrated): CV(RMSE) "
        f"{r['tower_approach_cv_rmse_pct']:.2f} %  NMBE {r['tower_approach_nmbe_pct']:+.2f} %\n"
        f"  tower leaving water: CV(RMSE) {r['tower_cw_supply_cv_rmse_pct']:.2f} %  "
        f"NMBE {r['tower_cw_supply_nmbe_pct']:+.2f} %"
    )
    print(json.dumps(r), flush=True)
    ok = r["cv_rmse_pct"] <= 10.0 and abs(r["nmbe_pct"]) <= 5.0
    return 0 if ok else 1


def run_site(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from connectors.store import Store
    from tools.calibration import calibrate, save

    site = site_from_args(args)
    try:
        window = timedelta(seconds=parse_duration(args.window))
    except ValueError as err:
        raise ConfigError(f"--window: {err}") from None
    if not Path(args.db).is_file():
        raise ConfigError(f"--db {args.db}: no such file")
    with Store(Path(args.db), read_only=not args.save) as store:
        newest = store.query("SELECT max(ts) AS t FROM readings")["t"].iloc[0]
        if pd.isna(newest):
            raise ConfigError(f"--db {args.db}: no readings to calibrate on")
        end = pd.Timestamp(newest).to_pydatetime() + timedelta(seconds=1)
        cal = calibrate(store, site, end, window)
        if args.save:
            save(store, cal, end, source="calibrate site")
    print(cal.summary())
    if args.save:
        print(
            f"saved in {args.db}: "
            + (
                "whatif and the agent use it"
                if cal.adopted
                else "not adopted, the model in use stays"
            )
        )
    print(
        json.dumps(
            {
                "adopted": cal.adopted,
                "refused": cal.refused or None,
                "saved": bool(args.save),
                "params": cal.params.to_dict(),
                "held_out": {p.name: p.to_dict() for p in cal.parts},
            }
        ),
        flush=True,
    )
    return 0 if cal.adopted else 1
