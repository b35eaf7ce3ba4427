"""The API's edge before any route runs: trusted Host, body size, finite JSON; JSON errors.

:class:`EdgeGuard` is a plain ASGI middleware:

- **Host** must be one of ``allowed_hosts`` (default: 127.0.0.1, localhost, ::1, any
  port) — a page on another site cannot reach the API through DNS rebinding → 400.
- **Body** at most ``max_body`` bytes (default 64 KiB), whether announced by
  ``Content-Length`` or streamed → 413.
- **JSON bodies** must parse and hold only finite numbers (``NaN``, ``Infinity``,
  ``1e999`` → 422) — nothing non-finite reaches a route.

:func:`install_error_handlers` makes every 4xx/5xx answer ``{"error": code, "detail": text}``
(validation errors add ``errors``: location and message of each).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
MAX_BODY = 64 * 1024

ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid_request",
    500: "internal_error",
}


def error_body(status: int, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": ERROR_CODES.get(status, f"http_{status}"), "detail": detail, **extra}


def host_of(header: str) -> str:
    """``127.0.0.1:8000`` → ``127.0.0.1``; ``[::1]:8000`` → ``::1``; lower case."""
    h = header.strip().lower()
    if h.startswith("["):
        return h[1 : h.find("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


class _TooLarge(Exception):
    pass


def _finite(s: str) -> float:
    x = float(s)
    if x in (float("inf"), float("-inf")):
        raise ValueError(f"number {s[:40]} is out of range")
    return x


def _no_constant(s: str) -> float:
    raise ValueError(f"{s} is not a number this API accepts")


def check_json(body: bytes) -> str | None:
    """None when ``body`` is JSON with only finite numbers, else why not."""
    try:
        json.loads(body, parse_float=_finite, parse_constant=_no_constant)
    except (ValueError, RecursionError) as err:
        return f"the body is not acceptable JSON: {err}"
    return None


class EdgeGuard:
    """ASGI middleware: trusted Host, body-size limit, finite JSON (see the module docstring)."""

    def __init__(
        self, app: ASGIApp, allowed_hosts: Iterable[str] = LOOPBACK_HOSTS, max_body: int = MAX_BODY
    ) -> None:
        self.app = app
        self.allowed = frozenset(host_of(h) for h in allowed_hosts)
        self.max_body = max_body

    async def _refuse(self, send: Send, status: int, detail: str) -> None:
        await JSONResponse(error_body(status, detail), status)({"type": "http"}, _none, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if "*" not in self.allowed and host_of(headers.get("host", "")) not in self.allowed:
            await self._refuse(send, 400, f"untrusted Host header {headers.get('host', '')!r}")
            return
        try:
            announced = int(headers.get("content-length", "0") or 0)
        except ValueError:
            await self._refuse(send, 400, "bad Content-Length")
            return
        if announced > self.max_body:
            await self._refuse(send, 413, f"the body is larger than {self.max_body} bytes")
            return
        try:
            body, last = await self._read(receive)
        except _TooLarge:
            await self._refuse(send, 413, f"the body is larger than {self.max_body} bytes")
            return
        ctype = headers.get("content-type", "")
        if body and ("json" in ctype or not ctype):
            why = check_json(body)
            if why is not None:
                await self._refuse(send, 422, why)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return last or await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> tuple[bytes, Message | None]:
        """The whole body (at most ``max_body``); and a disconnect message, if one came."""
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                return b"".join(chunks), msg
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _TooLarge
            chunks.append(chunk)
            if not msg.get("more_body", False):
                return b"".join(chunks), None


async def _none() -> Message:  # pragma: no cover - a response never reads the request
    return {"type": "http.disconnect"}


def _where(loc: Iterable[Any]) -> str:
    return ".".join(str(x) for x in loc)


def install_error_handlers(app: FastAPI) -> None:
    """Every error as ``{"error": ..., "detail": ...}`` (headers such as WWW-Authenticate kept)."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        d = exc.detail
        body = (  # a dict detail: its "message" is the text, the rest rides along
            error_body(
                exc.status_code,
                str(d.get("message", "")),
                **{k: v for k, v in d.items() if k != "message"},
            )
            if isinstance(d, dict)
            else error_body(exc.status_code, str(d))
        )
        return JSONResponse(body, exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = [{"loc": _where(e.get("loc", ())), "msg": str(e.get("msg"))} for e in exc.errors()]
        detail = "; ".join(f"{e['loc']}: {e['msg']}" for e in errs) or "invalid request"
        return JSONResponse(error_body(422, detail, errors=errs), 422)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("API %s %s failed", request.method, request.url.path)
        return JSONResponse(error_body(500, f"{type(exc).__name__}: {exc}"), 500)
