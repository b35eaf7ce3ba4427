"""``facility-agent user add NAME --role viewer|operator|admin`` / ``user list`` / ``user remove NAME``.

``user add`` prints the new token alone on its last line (shown once; the site keeps
only its hash). While a site process runs, these go through its API and need an
admin's token in ``$FACILITY_AGENT_TOKEN``; when none runs they open the ``--db``
file directly, acting as ``local:<os user>``. :func:`first_admin` is what ``run``
and ``demo`` call on a database without users.
"""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

from rich.console import Console
from rich.table import Table

from agent.commands._agent import TOKEN_ENV, WHO_ACTS, api, console, local_user
from agent.commands._common import add_db_option, existing_db
from agent.users import FIRST_ADMIN, ROLE_NAMES, Role, Users
from connectors.store import Store


def register(sub: Any) -> None:
    p = sub.add_parser("user", help="add, list or remove the users (and tokens) of a site")
    usub = p.add_subparsers(dest="user_cmd", required=True)
    a = usub.add_parser(
        "add", help="add a user; prints its token on the last line", epilog=WHO_ACTS
    )
    a.add_argument("name", help="the user's name (letters, digits, . _ -)")
    a.add_argument(
        "--role", choices=ROLE_NAMES, required=True,
        help="viewer (read), operator (approve, e-stop, chat), admin (autonomy, users)",
    )  # fmt: skip
    a.set_defaults(func=run_add)
    ls = usub.add_parser("list", help="the site's users and roles", epilog=WHO_ACTS)
    ls.set_defaults(func=run_list)
    rm = usub.add_parser("remove", help="remove a user (its token stops working)", epilog=WHO_ACTS)
    rm.add_argument("name", help="the user to remove")
    rm.set_defaults(func=run_remove)
    for q in (a, ls, rm):
        add_db_option(q)


def run_add(args: argparse.Namespace) -> int:
    client = api(args)
    if client is not None:
        token = str(
            client.call("POST", "/users", json={"name": args.name, "role": args.role})["token"]
        )
    else:
        with Store(args.db) as store:  # the one command that may start a database: its users
            token = Users(store).add(args.name, Role.parse(args.role), local_user())
    out = console()
    out.print(f"user {args.name} added ({args.role}). Its token, shown only now (set {TOKEN_ENV}):")
    print(token)
    return 0


def run_list(args: argparse.Namespace) -> int:
    client = api(args)
    if client is not None:
        rows = client.call("GET", "/users")
    else:
        with Store(existing_db(args.db)) as store:
            rows = [
                {
                    "name": u.name,
                    "role": u.role.label,
                    "created": u.created.isoformat(),
                    "by": u.by_whom,
                }
                for u in Users(store).list()
            ]
    t = Table(title=f"Users ({len(rows)})")
    for c in ("name", "role", "created", "by"):
        t.add_column(c)
    for r in rows:
        t.add_row(str(r["name"]), str(r["role"]), str(r["created"])[:19], str(r["by"]))
    console().print(t)
    return 0


def run_remove(args: argparse.Namespace) -> int:
    client = api(args)
    if client is not None:
        client.call("DELETE", f"/users/{quote(args.name, safe='')}")
    else:
        with Store(existing_db(args.db)) as store:
            Users(store).remove(args.name, local_user())
    console().print(f"user {args.name} removed; its token no longer works")
    return 0


def first_admin(store: Store, out: Console) -> str | None:
    """On a database without users, add the admin user and print its token once."""
    token = Users(store).ensure_admin(f"{local_user()} (first start)")
    if token is not None:
        out.print(
            f"[bold]No users yet: created the admin user '{FIRST_ADMIN}'.[/] "
            "Sign in with its token (shown once) — in another terminal:\n"
            f"  export {TOKEN_ENV}={token}\n"
            "  facility-agent approve ID   # and autonomy, estop, audit, chat …\n"
            "More users: facility-agent user add NAME --role viewer|operator|admin",
            soft_wrap=True,
            highlight=False,
        )
    return token
