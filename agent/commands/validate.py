"""``facility-agent validate FILE…``: check site and policy files without polling anything.

A file with ``equipment:`` is a site file (:mod:`connectors.site`), one with ``policies:``
a policy file (:mod:`tools.policies`); policies are also compiled against the site (the site
file among the arguments, else ``--site``, else the twin's) so a point they name that the
site lacks is caught here, not at start-up. One line per file; an error names the file and
the field. Exit code 0 when every file is valid, 2 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from agent.commands._common import default_site, user_text
from connectors.errors import FacilityError, SiteConfigError
from connectors.site import Site, device_count, load_site


def register(sub: Any) -> None:
    p = sub.add_parser(
        "validate",
        help="check site and policy files (no polling); exit 2 on the first bad field of each",
        description=user_text(__doc__, slice(1, 2)),
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="site or policy YAML files")
    p.add_argument(
        "--site", type=Path, default=None,
        help="site to compile policy files against (default: the site file given, else the twin's)",
    )  # fmt: skip
    p.set_defaults(func=run)


def kind_of(path: Path) -> str:
    """``site`` or ``policies`` by the file's top-level keys (``site`` when it cannot tell)."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return "site"  # load_site gives the precise error
    return "policies" if isinstance(data, dict) and "policies" in data else "site"


def describe(site: Site) -> str:
    writable = sum(1 for _, p in site.iter_points() if p.writable)
    return (
        f"site {site.name}: {len(site.equipment)} equipment, {len(site.point_ids)} points "
        f"({writable} writable) on {device_count(site)} devices"
    )


def run(args: argparse.Namespace) -> int:
    from tools.policies import load_policies
    from tools.policies.engine import compile_policies

    kinds = {f: kind_of(f) for f in args.files}
    sites: dict[Path, Site] = {}
    bad = 0
    for f, k in kinds.items():
        if k != "site":
            continue
        try:
            sites[f] = load_site(f)
            print(f"{f}: ok — {describe(sites[f])}")
        except FacilityError as err:
            print(f"facility-agent: error: {err}", file=sys.stderr)
            bad += 1
    policy_files = [f for f, k in kinds.items() if k == "policies"]
    if policy_files:
        try:
            if args.site is not None:
                site, where = load_site(args.site), str(args.site)
            elif sites:
                first = next(iter(sites))
                site, where = sites[first], str(first)
            else:
                site, where = default_site(), "the default site (the twin's)"
        except SiteConfigError as err:
            print(f"facility-agent: error: {err}", file=sys.stderr)
            return 2
        for f in policy_files:
            try:
                loaded = load_policies([f])
                compile_policies(loaded, site)
                print(f"{f}: ok — {len(loaded)} policies, all apply to {where}")
            except FacilityError as err:
                print(f"facility-agent: error: {err}", file=sys.stderr)
                bad += 1
    return 2 if bad else 0
