"""``facility-agent schema``: the site file's JSON Schema (from the pydantic models), or with
``--markdown`` its reference page (``docs/site.md`` is that output)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from connectors.site_schema import schema_json, site_markdown


def register(sub: Any) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of the site file (for editors, CI)")
    p.add_argument(
        "--markdown", action="store_true",
        help="print the site file's reference page instead (what docs/site.md holds)",
    )  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(site_markdown() if args.markdown else schema_json())
    return 0
