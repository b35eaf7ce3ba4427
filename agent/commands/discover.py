"""``facility-agent discover bacnet --address HOST:PORT``: a draft site-file section.

Sends Who-Is to the address, reads the device's object list and each object's name,
description, units and present value, and prints YAML an integrator edits and pastes into
the site file (``connectors.bacnet.discover``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from connectors.bacnet.discover import discover, draft_section
from connectors.errors import DeviceError


def register(sub: Any) -> None:
    p = sub.add_parser("discover", help="find a device's points and print a draft site section")
    psub = p.add_subparsers(dest="protocol", required=True)
    b = psub.add_parser(
        "bacnet", help="Who-Is one BACnet/IP address; print its objects as a site-file draft"
    )
    b.add_argument(
        "--address", required=True, help="the device's HOST:PORT (UDP), e.g. 10.0.0.9:47808"
    )
    b.add_argument("--device", type=int, default=None, help="only this device instance")
    b.add_argument("--timeout", type=float, default=3.0, help="seconds per request (default 3)")
    b.set_defaults(func=run_bacnet)


def run_bacnet(args: argparse.Namespace) -> int:
    try:
        found = asyncio.run(discover(args.address, timeout_s=args.timeout, device=args.device))
    except DeviceError as err:
        print(f"discover: {err}", file=sys.stderr)
        return 1
    print(draft_section(found), end="")
    return 0
