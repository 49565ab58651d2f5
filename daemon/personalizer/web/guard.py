"""The checks every request to the page passes (aiohttp middlewares), and the headers every
response carries.

Every request but the login page and the assets needs a session (the HttpOnly cookie set by
the login); every POST needs its Origin (when the browser sends one) to be this page, and every
POST but the login needs the session's CSRF token in the ``X-CSRF-Token`` header. Without a
password the server listens on loopback only, every browser there gets a session without a
login, and the Host header must name loopback (against DNS rebinding).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..config import WebConfig
from .auth import SESSION_LIFETIME, Sessions, WebSession
from .auth import tokens_match as _tokens_match

log = logging.getLogger(__name__)

COOKIE = "personalizer_session"
CSRF_HEADER = "X-CSRF-Token"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # no-referrer would make form posts say Origin: null
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    """An HTTP error whose body is the page's JSON error (``ok: false`` and ``error``)."""
    return kind(text=json.dumps({"ok": False, "error": message}), content_type="application/json")


def _host_name(host: str | None) -> str:
    """The name in a Host header, without the port (``[::1]:8080`` -> ``[::1]``)."""
    host = host or ""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0]


class RequestGuard:
    """The middlewares and the session cookie of one page (see the module doc)."""

    def __init__(self, config: WebConfig, sessions: Sessions) -> None:
        self.config = config
        self.sessions = sessions

    @property
    def open_without_login(self) -> bool:
        """No password: every browser on this board (loopback) is let in without a login."""
        return self.config.password is None

    async def add_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        """on_response_prepare: the security headers on every response, errors and the event
        stream included."""
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        if self.config.tls:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")

    @web.middleware
    async def host_check(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Without a password, only requests that name loopback as their Host."""
        # Without a password only loopback can reach the server; a page of another site whose
        # name was made to point at 127.0.0.1 (DNS rebinding) still sends its own Host name.
        if self.open_without_login and _host_name(request.host) not in LOOPBACK_NAMES:
            raise web.HTTPMisdirectedRequest(text="this page answers to 127.0.0.1 only\n")
        return await handler(request)

    def _origin_ok(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            return True  # not a browser's cross-site request (browsers send Origin on POST)
        return origin == f"{request.scheme}://{request.host}"

    @web.middleware
    async def session_check(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The session, the Origin and the CSRF token (see the module doc)."""
        path = request.path
        if request.method not in ("GET", "HEAD") and not self._origin_ok(request):
            log.warning("web: refused a %s %s from another site (Origin %s)", request.method, path,
                        request.headers.get("Origin"))  # fmt: skip
            raise json_error(web.HTTPForbidden, "this request comes from another site")
        if path in ("/login",) or path.startswith("/static/"):
            return await handler(request)
        session = self.sessions.get(request.cookies.get(COOKIE))
        fresh: WebSession | None = None
        if session is None and self.open_without_login and path == "/":
            session = fresh = self.sessions.create()
        if session is None:
            if path.startswith("/api/") or request.method != "GET":
                raise json_error(web.HTTPUnauthorized, "not logged in; log in at /login")
            raise web.HTTPSeeOther("/login")
        if request.method not in ("GET", "HEAD"):
            if not _tokens_match(request.headers.get(CSRF_HEADER), session.csrf):
                log.warning("web: refused %s %s: no valid CSRF token", request.method, path)
                raise json_error(web.HTTPForbidden, "missing or wrong CSRF token; reload the page")
        request["session"] = session
        response = await handler(request)
        if fresh is not None:
            self.set_cookie(response, fresh)
        return response

    def set_cookie(self, response: web.StreamResponse, session: WebSession) -> None:
        """Give the browser ``session``'s cookie."""
        response.set_cookie(
            COOKIE,
            session.id,
            max_age=int(SESSION_LIFETIME),
            path="/",
            httponly=True,
            samesite="Lax",  # Strict would hide the session from links (Home Assistant's)
            secure=self.config.tls,
        )
