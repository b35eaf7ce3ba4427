"""The console's sign-in: a session cookie with a CSRF token, one more credential source.

A person signs in on ``/login`` with their API token; the site keeps a session
(server side, in memory: a restart signs everyone out) and sets the cookie
:data:`COOKIE` — ``HttpOnly; SameSite=Strict; Path=/`` — holding only the session id.
:func:`session_source` is a :data:`agent.auth.CredentialSource`: every API route takes
either ``Authorization: Bearer TOKEN`` (scripts, no CSRF) or this cookie.

With the cookie, an unsafe method (anything but GET, HEAD, OPTIONS) must carry the
session's CSRF token in the :data:`CSRF_HEADER` header (the page sends it on every htmx
request) — else 403. A session lives :data:`IDLE_S` after its last use and never longer
than :data:`MAX_S`; it follows its user: a removed user (or a new token for the name)
ends it at the next request.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field

from fastapi import HTTPException, Request

from agent.auth import unauthorized
from agent.users import Principal, Role, Users, token_hash

COOKIE = "fa_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
IDLE_S = 8 * 3600.0
MAX_S = 24 * 3600.0


@dataclass
class Session:
    sid: str
    csrf: str
    name: str
    digest: str  # SHA-256 of the token signed in with: the session ends with that token
    started: float
    seen: float


@dataclass
class Sessions:
    """The open console sessions of one site process."""

    idle_s: float = IDLE_S
    max_s: float = MAX_S
    _by_id: dict[str, Session] = field(default_factory=dict)

    def open(self, token: str, users: Users) -> tuple[Session, Principal] | None:
        """A new session for the holder of ``token``; None when no active user holds it."""
        who = users.authenticate(token)
        if who is None:
            return None
        now = time.monotonic()
        self._expire(now)
        s = Session(
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
            who.name,
            token_hash(token),
            now,
            now,
        )
        self._by_id[s.sid] = s
        return s, who

    def get(self, sid: str) -> Session | None:
        now = time.monotonic()
        self._expire(now)
        s = self._by_id.get(sid)
        if s is not None:
            s.seen = now
        return s

    def close(self, sid: str) -> None:
        self._by_id.pop(sid, None)

    def _expire(self, now: float) -> None:
        for sid, s in list(self._by_id.items()):
            if now - s.seen > self.idle_s or now - s.started > self.max_s:
                del self._by_id[sid]

    def __len__(self) -> int:
        return len(self._by_id)


def holder(users: Users, s: Session) -> Principal | None:
    """The session's user as they are now (same name, same token still active), or None."""
    df = users.store.query(
        "SELECT name, role, token_sha256 FROM users_latest WHERE active AND name = ?", [s.name]
    )
    for r in df.to_dict("records"):
        if hmac.compare_digest(s.digest, str(r["token_sha256"])):
            return Principal(str(r["name"]), Role.parse(str(r["role"])), via="session")
    return None


def sessions_of(request: Request) -> Sessions:
    found = getattr(request.app.state, "sessions", None)
    if not isinstance(found, Sessions):
        raise RuntimeError("the app has no console sessions (agent.web.install)")
    return found


def current(request: Request) -> Session | None:
    sid = request.cookies.get(COOKIE)
    return sessions_of(request).get(sid) if sid else None


def session_source(request: Request, users: Users) -> Principal | None:
    """The console cookie → its user; unsafe methods need the session's CSRF token (else 403)."""
    sid = request.cookies.get(COOKIE)
    if not sid:
        return None
    s = sessions_of(request).get(sid)
    who = holder(users, s) if s is not None else None
    if s is None or who is None:
        raise unauthorized("the console session has ended: sign in again", "invalid_token")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent, s.csrf):
            raise HTTPException(403, "missing or wrong CSRF token for this session")
    return who
