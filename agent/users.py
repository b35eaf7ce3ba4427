"""Users, roles and API tokens, kept in the site's DuckDB (table ``users``).

A token is ``secrets.token_urlsafe(32)`` (256 random bits), shown once when the
user is added and stored only as its SHA-256 (a fast hash is enough for a token
this long; there is nothing to brute-force). Checking a token compares it with
every active user's hash through :func:`hmac.compare_digest`.

Roles are ordered: ``viewer`` (read) < ``operator`` (approve, reject, e-stop,
chat, decide) < ``admin`` (also the autonomy ceiling, ``estop clear``, users).

The table is append-only like the audit trail: adding or removing a user is a
row ``(ts, name, role, token_sha256, active, by_whom)``; the newest row per name
wins (view ``users_latest``). Nothing here knows about HTTP: the API's
credential sources (:mod:`agent.auth`) turn a request into a :class:`Principal`
with :meth:`Users.authenticate`.

Outside the API (no site process runs, the CLI opens the file directly) the
acting user is :func:`local_principal` — ``local:<os user>``: whoever may open
the database file read-write is an admin of it.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

from connectors.clock import utcnow
from connectors.errors import ConfigError, FacilityError
from connectors.store import Store

USERS_DDL = """
CREATE TABLE IF NOT EXISTS users (
    ts TIMESTAMP NOT NULL, name VARCHAR NOT NULL, role VARCHAR, token_sha256 VARCHAR,
    active BOOLEAN NOT NULL, by_whom VARCHAR);
CREATE OR REPLACE VIEW users_latest AS SELECT * FROM users
    QUALIFY row_number() OVER (PARTITION BY name ORDER BY rowid DESC) = 1;
"""

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
FIRST_ADMIN = "admin"


class Role(IntEnum):
    """What a user may do; a higher role may do everything a lower one may."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, s: str) -> Role:
        try:
            return cls[s.strip().upper()]
        except KeyError:
            raise ConfigError(f"role must be viewer, operator or admin, not {s!r}") from None


ROLE_NAMES = tuple(r.label for r in Role)


class AccessDenied(FacilityError):
    """No valid credentials, or a role that may not do this (the CLI exits 3)."""

    exit_code = 3


@dataclass(frozen=True)
class Principal:
    """Who is acting: a user of the site (``via="token"``) or the file's owner (``via="local"``)."""

    name: str
    role: Role
    via: str = "token"

    def may(self, needed: Role) -> bool:
        return self.role >= needed


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    created: datetime
    by_whom: str


def local_principal() -> Principal:
    """The OS user who opened the database file directly: an admin of that file."""
    try:
        who = getpass.getuser()
    except (OSError, KeyError):
        who = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return Principal(f"local:{who}", Role.ADMIN, via="local")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise ConfigError(
            f"user name {name!r}: 1-64 letters, digits, '_', '.', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


class Users:
    """The ``users`` table of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_schema(USERS_DDL)

    def _append(
        self, name: str, role: Role | None, digest: str | None, active: bool, by: str
    ) -> None:
        with self.store._lock:
            self.store.con.execute(
                "INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)",
                [utcnow(), name, role.label if role else None, digest, active, by],
            )

    def list(self) -> list[User]:
        df = self.store.query(
            "SELECT name, role, ts, by_whom FROM users_latest WHERE active ORDER BY name"
        )
        return [
            User(
                str(r["name"]),
                Role.parse(str(r["role"])),
                r["ts"].to_pydatetime(),
                str(r["by_whom"]),
            )
            for r in df.to_dict("records")
        ]

    def get(self, name: str) -> User | None:
        return next((u for u in self.list() if u.name == name), None)

    def any(self) -> bool:
        return bool(len(self.store.query("SELECT 1 FROM users_latest WHERE active LIMIT 1")))

    def add(self, name: str, role: Role, by_whom: str) -> str:
        """Add a user; returns the token (shown once, never stored)."""
        check_name(name)
        if self.get(name) is not None:
            raise ConfigError(f"user {name!r} exists (remove it first to issue a new token)")
        token = new_token()
        self._append(name, role, token_hash(token), True, by_whom)
        return token

    def remove(self, name: str, by_whom: str) -> User:
        """Remove a user (its token stops working). The last admin cannot be removed."""
        u = self.get(name)
        if u is None:
            raise ConfigError(f"no user {name!r}")
        if u.role is Role.ADMIN and sum(x.role is Role.ADMIN for x in self.list()) == 1:
            raise ConfigError(f"{name!r} is the last admin; add another admin first")
        self._append(name, None, None, False, by_whom)
        return u

    def authenticate(self, token: str) -> Principal | None:
        """The active user holding ``token``, or None. Compares with every hash in constant time."""
        digest = token_hash(token)
        df = self.store.query("SELECT name, role, token_sha256 FROM users_latest WHERE active")
        found: Principal | None = None
        for r in df.to_dict("records"):
            if hmac.compare_digest(digest, str(r["token_sha256"])):
                found = Principal(str(r["name"]), Role.parse(str(r["role"])))
        return found

    def ensure_admin(self, by_whom: str) -> str | None:
        """With no user at all, add the admin :data:`FIRST_ADMIN`; returns its token (or None)."""
        if self.any():
            return None
        return self.add(FIRST_ADMIN, Role.ADMIN, by_whom)
