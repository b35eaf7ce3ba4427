"""``facility-agent whatif --set NAME=VALUE …``: predict what a change would do, as a table.

NAME is a site tag (``ct_1.cw_supply_setpoint``), a plant-model field
(``chw_supply_setpoint_c``) or a short alias (``chw_supply_setpoint``). A
VALUE starting with ``+`` or ``-`` is relative (``=+1``: one more), else absolute.
The state comes from the latest readings in ``--db`` (through the running site's API when
one serves that file), from a settled twin with ``--from-twin``, else — no ``--db`` — from
the performance model's design state. A site whose points do not map onto the model's inputs
gets a warning on stderr naming what it answers for instead. The model runs on the site's
calibrated parameters in use (the newest adopted row of ``--db``'s ``model_calibrations``,
see ``calibrate site``), else on the catalogue; the header says which (``--catalogue``
forces the catalogue).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agent.commands._agent import api
from agent.commands._common import add_site_option, existing_db, site_from_args
from connectors.errors import ConfigError
from connectors.site import Site
from perfmodel.whatif import KEY_OUTPUTS, PlantState, Prediction
from tools.calibration import CATALOGUE_IN_USE, InUse, in_use
from tools.whatif import TagChange, build_state, check


def register(sub: Any) -> None:
    p = sub.add_parser("whatif", help="predict the effect of setpoint/staging changes (table)")
    p.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="NAME=VALUE",
        help="a change; +x/-x relative, else absolute (repeatable)",
    )  # fmt: skip
    add_site_option(p)
    p.add_argument(
        "--db", type=Path, default=None,
        help="start from the newest readings in this DuckDB file (default: the design state)",
    )  # fmt: skip
    p.add_argument("--from-twin", action="store_true", help="start from a settled twin's readings")
    p.add_argument("--json", action="store_true", help="print the prediction as JSON instead")
    p.add_argument(
        "--catalogue", action="store_true", help="ignore the site's calibration: catalogue model"
    )
    p.set_defaults(func=run)


def parse_set(text: str) -> TagChange:
    """``NAME=VALUE`` → TagChange; ``+``/``-`` prefix means relative."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected NAME=VALUE")
    name, raw = (s.strip() for s in text.split("=", 1))
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"--set {text!r}: {raw!r} is not a number") from None
    return TagChange(name, value, relative=raw[:1] in "+-")


def _values(args: argparse.Namespace, site: Site) -> tuple[dict[str, float], str]:
    if args.from_twin:
        from twin.sim import Twin  # the twin is optional at run time

        twin = Twin(site, seed=0)
        twin.step(600.0)
        return dict(twin.values()), "settled twin (10 simulated minutes)"
    if args.db is None:
        return {}, "design state (no readings)"
    db = existing_db(args.db)
    client = api(args)
    if client is not None:
        vals: dict[str, float] = client.call("GET", "/latest")
    else:
        from agent.reads import latest_values
        from connectors.store import Store

        with Store(db, read_only=True) as store:
            vals = latest_values(store)
    if not vals:
        raise ConfigError(f"{db}: no good readings to start from (drop --db for the design state)")
    return vals, f"latest readings in {db}"


#: A value no model input has by default: a field that takes it was fed by the site.
_PROBE = 12345.678


def fed_inputs(site: Site) -> set[str]:
    """The model inputs (PlantState fields) the site's readings feed."""
    probe = build_state(site, dict.fromkeys(site.points_by_tag, _PROBE)).state
    design = PlantState()
    return {
        f.name
        for f in fields(PlantState)
        if isinstance(getattr(design, f.name), int | float)
        and getattr(probe, f.name) != getattr(design, f.name)
    }


def unmapped(site: Site) -> tuple[list[str], list[str]]:
    """The model's operating inputs (those the twin's data hall feeds from its readings) this
    site feeds, and those it leaves at the model's design state."""
    from connectors.site import load_site
    from twin import default_site_path

    reference = fed_inputs(load_site(default_site_path()))
    mine = fed_inputs(site)
    return sorted(reference & mine), sorted(reference - mine)


def warn_unmapped(site: Site) -> None:
    fed, unfed = unmapped(site)
    if not unfed:
        return
    if not fed:
        head = f"none of site {site.name}'s points map onto the performance model's inputs"
    else:
        head = f"site {site.name} feeds {len(fed)} of {len(fed) + len(unfed)} model inputs"
    shown = ", ".join(unfed[:8]) + (", …" if len(unfed) > 8 else "")
    print(
        f"facility-agent: warning: {head}; the answer is for the model's design data hall "
        f"where it does not ({shown})",
        file=sys.stderr,
    )


def _model(args: argparse.Namespace) -> InUse:
    """The calibration in use in ``--db`` (the catalogue without one, or with --catalogue)."""
    if args.catalogue or args.db is None or not Path(args.db).is_file():
        return CATALOGUE_IN_USE
    db = Path(args.db)
    client = api(args)
    if client is not None:  # the site process holds the file: ask it
        from datetime import datetime

        from perfmodel.plantcal import PlantParameters

        got: dict[str, Any] = client.call("GET", "/calibration")
        if got.get("fitted_at") is None:
            return CATALOGUE_IN_USE
        w = got.get("window") or [got["fitted_at"], got["fitted_at"]]
        return InUse(
            PlantParameters.from_dict(got["params"]),
            datetime.fromisoformat(got["fitted_at"]),
            (datetime.fromisoformat(w[0]), datetime.fromisoformat(w[1])),
            got.get("metrics") or {},
        )
    from connectors.store import Store

    with Store(db, read_only=True) as store:
        return in_use(store)


def render(pred: Prediction, origin: str, console: Console, model: str = "") -> None:
    """The prediction as two rich tables: outputs before/after/Δ, then constraints."""
    if model:
        console.print(model)
    t = Table(title=f"What-if from {origin}: {', '.join(map(str, pred.changes)) or 'no change'}")
    for col in ("quantity", "before", "after", "delta"):
        t.add_column(col, justify="right" if col != "quantity" else "left")
    for k in KEY_OUTPUTS:
        b, a = pred.before[k], pred.after[k]
        t.add_row(k, f"{b:.2f}", f"{a:.2f}", f"{a - b:+.2f}" if math.isfinite(a - b) else "")
    console.print(t)
    c = Table(title="Constraints")
    for col in ("constraint", "value", "limit", "margin", "status"):
        c.add_column(col, justify="left" if col in ("constraint", "status") else "right")
    for con in pred.constraints:
        if con.ok:
            status = "[green]ok[/green]"
        elif con.worsened:
            status = "[red]VIOLATED[/red]"
        else:
            status = "[yellow]VIOLATED (already before)[/yellow]"
        c.add_row(
            con.name,
            f"{con.value:.2f}",
            f"{con.limit:.2f} {con.unit}",
            f"{con.margin:+.2f}",
            status,
        )
    console.print(c)
    valid = (
        "[green]inside the curves' ranges[/green]"
        if pred.valid
        else "[yellow]EXTRAPOLATED[/yellow]"
    )
    console.print(f"model validity: {valid}")
    for r in pred.invalid_reasons:
        console.print(f"  - {r}")
    console.print(
        f"Δ facility power {pred.delta_kw:+.1f} kW, PUE {pred.before['pue']:.3f} → {pred.pue:.3f}; "
        f"{'all constraints hold' if pred.ok else f'{len(pred.violated)} constraint(s) violated'}"
    )


def run(args: argparse.Namespace) -> int:
    site = site_from_args(args)
    changes = [parse_set(s) for s in args.sets]
    warn_unmapped(site)
    values, origin = _values(args, site)
    model = _model(args)
    params = None if model.params.is_catalogue() else model.params
    try:
        pred = check(site, values, changes, params)
    except KeyError as err:
        raise ConfigError(f"--set: {err.args[0]}") from None
    if args.json:
        print(json.dumps({**pred.to_dict(), "model_in_use": model.header()}))
    else:
        render(pred, origin, Console(), model.header())
    return 0 if pred.ok else 1
