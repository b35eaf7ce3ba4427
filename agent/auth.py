"""Who is calling the API, and may they: the FastAPI dependency :func:`require`.

Every route but ``GET /health`` declares the role it needs::

    @app.post("/estop")
    async def estop(who: Annotated[Principal, require(Role.OPERATOR)]) -> ...

:class:`Authenticator` (kept on ``app.state.auth``) asks its credential sources in turn;
the first that recognises the request names the :class:`~agent.users.Principal`.
Two sources: the ``Authorization: Bearer TOKEN`` header (:func:`bearer`, scripts), then
the console's session cookie with its CSRF check on unsafe methods
(:func:`agent.web.session.session_source`, installed by :func:`agent.web.install`) —
same signature, routes do not change.

- no credentials, or a token no active user holds → 401 with ``WWW-Authenticate: Bearer``
- a role below the route's → 403
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, HTTPException, Request

from agent.users import Principal, Role, Users

REALM = "facility-agent"

#: a credential source: the principal a request proves, None when it carries none of
#: this kind; raises HTTPException(401) when it carries one that is not valid
CredentialSource = Callable[[Request, Users], Principal | None]


def unauthorized(detail: str, error: str | None = None) -> HTTPException:
    challenge = f'Bearer realm="{REALM}"' + (f', error="{error}"' if error else "")
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})


def bearer(request: Request, users: Users) -> Principal | None:
    """``Authorization: Bearer TOKEN`` → the user holding TOKEN."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("the Authorization header must be 'Bearer TOKEN'", "invalid_request")
    who = users.authenticate(token.strip())
    if who is None:
        raise unauthorized("the token is not valid (unknown or removed user)", "invalid_token")
    return who


@dataclass
class Authenticator:
    """The site's users and the ways a request may prove who sends it."""

    users: Users
    sources: Sequence[CredentialSource] = field(default_factory=lambda: (bearer,))

    def identify(self, request: Request) -> Principal:
        for source in self.sources:
            who = source(request, self.users)
            if who is not None:
                return who
        raise unauthorized("sign in: send 'Authorization: Bearer TOKEN' (facility-agent user add)")


def require(role: Role) -> Any:
    """FastAPI dependency: the caller's :class:`Principal`, if its role is at least ``role``."""

    async def principal(request: Request) -> Principal:
        authn: Authenticator = request.app.state.auth
        who = authn.identify(request)
        if not who.may(role):
            raise HTTPException(
                403, f"{who.name} is {who.role.label}; this needs the {role.label} role"
            )
        return who

    return Depends(principal)
