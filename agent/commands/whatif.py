"""``facility-agent whatif --set NAME=VALUE …``: predict what a change would do, as a table.

NAME is a site tag (``ct_1.cw_supply_setpoint``), a plant-model field
(``chw_supply_setpoint_c``) or a short alias (``chw_supply_setpoint``). A
VALUE starting with ``+`` or ``-`` is relative (``=+1``: one more), else absolute.
The state comes from the latest readings in ``--db`` when the file exists,
from a settled twin with ``--from-twin``, else from the twin's design state. The model runs
on the site's calibrated parameters in use (the newest adopted row of ``--db``'s
``model_calibrations``, see ``calibrate site``), else on the catalogue; the header says which
(``--catalogue`` forces the catalogue).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agent.commands._common import add_db_option, add_site_option, site_from_args
from connectors.errors import ConfigError
from connectors.site import Site
from perfmodel.whatif import KEY_OUTPUTS, Prediction
from tools.calibration import CATALOGUE_IN_USE, InUse, in_use
from tools.whatif import TagChange, check


def register(sub: Any) -> None:
    p = sub.add_parser("whatif", help="predict the effect of setpoint/staging changes (table)")
    p.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="NAME=VALUE",
        help="a change; +x/-x relative, else absolute (repeatable)",
    )  # fmt: skip
    add_site_option(p)
    add_db_option(p)
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
    db = Path(args.db)
    if db.is_file():
        from connectors.store import Store

        with Store(db, read_only=True) as store:
            vals = store.latest_values()
        if vals:
            return vals, f"latest readings in {db}"
    return {}, "design state (no readings)"


def _model(args: argparse.Namespace) -> InUse:
    """The calibration in use in ``--db`` (the catalogue without one, or with --catalogue)."""
    db = Path(args.db)
    if args.catalogue or not db.is_file():
        return CATALOGUE_IN_USE
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
