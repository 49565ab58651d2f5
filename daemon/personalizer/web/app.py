"""The page's HTTP side (aiohttp): routes, the login, and the checks every request passes.

Routes:

- ``GET /`` the page (``/login`` first, unless logged in), ``GET /static/<file>`` its assets;
- ``POST /login`` (form field ``password``), ``POST /logout``;
- ``GET /api/session``: the CSRF token and what the page needs to know about the daemon;
- ``GET /api/events``: server-sent events (status, prediction, loss, losses, sample, metrics,
  health), from :class:`~.feed.LiveFeed`;
- ``GET /api/frame?after=N``: the next camera frame after number N as a JPEG (waits up to 2 s);
- ``GET /api/thumbnail/<id>``: a stored sample's JPEG (the ``thumbnail`` command);
- ``GET /api/review/<id>/image``: the JPEG of a frame kept for review (``thumbnail`` with
  ``review_id``);
- ``POST /api/command/<name>``: a JSON object, run as the command ``name`` with ``source: "web"``,
  exactly as MQTT and the buttons run it; the reply is the command's result.

Every request but the login page and the assets needs a session (the HttpOnly cookie set by
the login); every POST needs its Origin (when the browser sends one) to be this page, and every
POST but the login needs the session's CSRF token in the ``X-CSRF-Token`` header. Without a
password the server listens on loopback only, every browser there gets a session without a
login, and the Host header must name loopback (against DNS rebinding).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import html
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from ..camera import LatestFrame
from ..commands import COMMAND_NAMES, Command, CommandError, reply
from ..commands.reference import PAGE_COMMANDS
from ..config import WebConfig
from .auth import SESSION_LIFETIME, LoginThrottle, Sessions, WebSession, password_matches
from .auth import tokens_match as _tokens_match
from .feed import LiveFeed
from .frames import FrameEncoder

log = logging.getLogger(__name__)

COOKIE = "personalizer_session"
CSRF_HEADER = "X-CSRF-Token"
# The commands the page sends (`classify` of an uploaded image is not among them).
WEB_COMMANDS = PAGE_COMMANDS
COMMAND_TIMEOUT = 30.0  # seconds a command may take before the page is told it timed out
FRAME_WAIT = 2.0  # seconds /api/frame waits for a newer frame before answering 204
FRAME_POLL = 0.02  # seconds between looks at the newest frame while waiting
HEALTH_INTERVAL = 2.0  # seconds between two health events on the stream
DISK_INTERVAL = 5.0  # seconds a measurement of the state folder's size is reused
MAX_BODY = 64 * 1024  # bytes of a request body (commands are small: no images are uploaded)
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
}
# The page's files served under /static/: its scripts (ES modules), styles and icon.
ASSETS = tuple(
    sorted(
        entry.name
        for entry in resources.files(__package__).joinpath("assets").iterdir()
        if os.path.splitext(entry.name)[1] in (".js", ".css", ".svg")
    )
)
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

Reply = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class PageBackend:
    """What the page needs of the daemon (the service provides it)."""

    frames: LatestFrame
    submit: Callable[[Command, Reply | None], bool]  # Service.submit
    vitals: Callable[[], dict[str, Any]]  # {"fps": frames classified per second, "broker": bool}
    state_dir: Path
    version: str


def asset(name: str) -> bytes:
    """The bytes of one of the page's files (shipped as package data)."""
    return resources.files(__package__).joinpath("assets", name).read_bytes()


class _DiskUse:
    """The state folder's size and its file system's free space, measured now and then."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._measured = -DISK_INTERVAL
        self._value: dict[str, int | None] = {}

    def value(self) -> dict[str, int | None]:
        now = time.monotonic()
        if now - self._measured >= DISK_INTERVAL:
            self._measured = now
            used = 0
            for root, _dirs, files in os.walk(self.folder):
                for name in files:
                    try:
                        used += os.lstat(os.path.join(root, name)).st_size
                    except OSError:
                        continue
            try:
                stats = os.statvfs(self.folder)
                free, total = stats.f_bavail * stats.f_frsize, stats.f_blocks * stats.f_frsize
            except OSError:
                free = total = None
            self._value = {"used": used, "free": free, "total": total}
        return self._value


class WebApp:
    """The handlers and checks of the page, around one daemon (:class:`PageBackend`)."""

    def __init__(
        self,
        config: WebConfig,
        backend: PageBackend,
        feed: LiveFeed,
        encoder: FrameEncoder,
        sessions: Sessions | None = None,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self.feed = feed
        self.encoder = encoder
        self.sessions = sessions if sessions is not None else Sessions()
        self.throttle = throttle if throttle is not None else LoginThrottle()
        self.closing = asyncio.Event()
        self._disk = _DiskUse(backend.state_dir)
        self._pages = {name: asset(name).decode("utf-8") for name in ("index.html", "login.html")}
        self._assets = {name: asset(name) for name in ASSETS}

    @property
    def open_without_login(self) -> bool:
        """No password: every browser on this board (loopback) is let in without a login."""
        return self.config.password is None

    def application(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(
            client_max_size=MAX_BODY,
            middlewares=[self._host_check, self._session_check],
        )
        app.on_response_prepare.append(self._add_headers)
        app.add_routes(
            [
                web.get("/", self.index),
                web.get("/login", self.login_page),
                web.post("/login", self.login),
                web.post("/logout", self.logout),
                web.get("/static/{name}", self.static),
                web.get("/api/session", self.session_info),
                web.get("/api/events", self.events),
                web.get("/api/frame", self.frame),
                web.get(r"/api/thumbnail/{id:\d{1,12}}", self.thumbnail),
                web.get(r"/api/review/{id:\d{1,12}}/image", self.review_image),
                web.get("/api/health", self.health_info),
                web.post("/api/command/{name}", self.command),
            ]
        )
        return app

    # --- checks (middlewares) ---------------------------------------------------------------

    async def _add_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        # on_response_prepare: every response, errors and the event stream included.
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        if self.config.tls:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")

    @web.middleware
    async def _host_check(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
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
    async def _session_check(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        path = request.path
        if request.method not in ("GET", "HEAD") and not self._origin_ok(request):
            log.warning("web: refused a %s %s from another site (Origin %s)", request.method, path,
                        request.headers.get("Origin"))  # fmt: skip
            raise _json_error(web.HTTPForbidden, "this request comes from another site")
        if path in ("/login",) or path.startswith("/static/"):
            return await handler(request)
        session = self.sessions.get(request.cookies.get(COOKIE))
        fresh: WebSession | None = None
        if session is None and self.open_without_login and path == "/":
            session = fresh = self.sessions.create()
        if session is None:
            if path.startswith("/api/") or request.method != "GET":
                raise _json_error(web.HTTPUnauthorized, "not logged in; log in at /login")
            raise web.HTTPSeeOther("/login")
        if request.method not in ("GET", "HEAD"):
            if not _tokens_match(request.headers.get(CSRF_HEADER), session.csrf):
                log.warning("web: refused %s %s: no valid CSRF token", request.method, path)
                raise _json_error(web.HTTPForbidden, "missing or wrong CSRF token; reload the page")
        request["session"] = session
        response = await handler(request)
        if fresh is not None:
            self._set_cookie(response, fresh)
        return response

    def _set_cookie(self, response: web.StreamResponse, session: WebSession) -> None:
        response.set_cookie(
            COOKIE,
            session.id,
            max_age=int(SESSION_LIFETIME),
            path="/",
            httponly=True,
            samesite="Lax",  # Strict would hide the session from links (Home Assistant's)
            secure=self.config.tls,
        )

    # --- pages ------------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.Response:
        """The page itself."""
        return web.Response(text=self._pages["index.html"], content_type="text/html")

    def _login_response(self, message: str = "", status: int = 200) -> web.Response:
        text = self._pages["login.html"].replace("{{message}}", html.escape(message))
        return web.Response(text=text, content_type="text/html", status=status)

    async def login_page(self, request: web.Request) -> web.Response:
        """The login form (or the page, when already logged in or no password is set)."""
        if self.open_without_login or self.sessions.get(request.cookies.get(COOKIE)):
            raise web.HTTPSeeOther("/")
        return self._login_response()

    async def login(self, request: web.Request) -> web.Response:
        """Check the password; on success start a session (cookie) and go to the page."""
        password = self.config.password
        if password is None:
            raise web.HTTPSeeOther("/")
        client = request.remote or "?"
        wait = self.throttle.retry_after(client)
        if wait > 0:
            response = self._login_response(
                f"Too many wrong passwords. Try again in {wait:.0f} s.", 429
            )
            response.headers["Retry-After"] = str(max(1, round(wait)))
            return response
        try:
            form = await request.post()
        except ValueError:
            form = {}
        given = form.get("password")
        if not isinstance(given, str) or not password_matches(given, password):
            lockout = self.throttle.failed(client)
            failures = self.throttle.failures(client)
            log.warning(
                "web: wrong password from %s (%d in a row%s)",
                client,
                failures,
                f"; locked out for {lockout:.0f} s" if lockout else "",
            )
            message = "Wrong password."
            if lockout:
                message += f" Too many wrong passwords: wait {lockout:.0f} s."
            return self._login_response(message, 401)
        self.throttle.succeeded(client)
        session = self.sessions.create()
        log.info("web: %s logged in (%d session(s))", client, len(self.sessions))
        response = web.Response(status=303, headers={"Location": "/"})
        self._set_cookie(response, session)
        return response

    async def logout(self, request: web.Request) -> web.Response:
        """End the session."""
        self.sessions.end(request["session"].id)
        response = web.json_response({"ok": True})
        response.del_cookie(COOKIE, path="/")
        return response

    async def static(self, request: web.Request) -> web.Response:
        """One of the page's assets."""
        name = request.match_info["name"]
        body = self._assets.get(name)
        if body is None:
            raise web.HTTPNotFound()
        content_type = CONTENT_TYPES[os.path.splitext(name)[1]]
        return web.Response(
            body=body,
            headers={"Content-Type": content_type, "Cache-Control": "no-cache"},
        )

    # --- data -------------------------------------------------------------------------------

    async def session_info(self, request: web.Request) -> web.Response:
        """The CSRF token, the commands this daemon has, the version."""
        session: WebSession = request["session"]
        return web.json_response(
            {
                "csrf": session.csrf,
                "login": not self.open_without_login,
                "commands": [c for c in WEB_COMMANDS if c in COMMAND_NAMES],
                "version": self.backend.version,
            }
        )

    def health(self) -> dict[str, Any]:
        """Frame rate, broker, disk and the live view's figures."""
        return {
            **self.backend.vitals(),
            "disk": self._disk.value(),
            "stream": {
                "encoded": self.encoder.encoded,
                "watching": self.encoder.watching,
                "pages": self.feed.pages,
            },
        }

    async def health_info(self, request: web.Request) -> web.Response:
        """The health figures as JSON."""
        return web.json_response(self.health())

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: the snapshot, then every event, and health every 2 s."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                     "X-Accel-Buffering": "no"}
        )  # fmt: skip
        await response.prepare(request)
        subscriber = self.feed.subscribe()
        try:
            await response.write(b"retry: 2000\n\n")
            next_health = 0.0
            while not self.closing.is_set() and not subscriber.overflowed:
                now = time.monotonic()
                if now >= next_health:
                    next_health = now + HEALTH_INTERVAL
                    await _send(response, "health", json.dumps(self.health()))
                try:
                    name, data = await asyncio.wait_for(
                        subscriber.queue.get(), timeout=max(0.05, next_health - now)
                    )
                except TimeoutError:
                    continue
                await _send(response, name, data)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.feed.unsubscribe(subscriber)
        return response

    async def frame(self, request: web.Request) -> web.Response:
        """The first camera frame newer than ``after``, as a JPEG of at most 640 px."""
        try:
            after = int(request.query.get("after", "0"))
        except ValueError:
            raise _json_error(web.HTTPBadRequest, '"after" must be a frame number') from None
        frames = self.backend.frames
        deadline = time.monotonic() + FRAME_WAIT
        frame = frames.latest()
        # Frame numbers only grow, so one below `after` means the daemon restarted since.
        while frame is None or frame.number == after:
            if time.monotonic() >= deadline or self.closing.is_set():
                return web.Response(status=204)
            await asyncio.sleep(FRAME_POLL)
            frame = frames.latest()
        encoded = self.encoder.encode(frame)
        return web.Response(
            body=encoded.jpeg,
            content_type="image/jpeg",
            headers={"X-Frame": str(encoded.number), "X-Frame-Captured": f"{encoded.captured:.3f}"},
        )

    async def _run(self, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Run command ``name`` with ``fields`` through the daemon's command queue."""
        if name not in COMMAND_NAMES:
            return reply(None, error=f'this daemon has no "{name}" command (version '
                         f"{self.backend.version})")  # fmt: skip
        try:
            command = Command.local(name, fields, source="web")
        except CommandError as exc:
            return reply(fields.get("request_id"), error=exc.reason)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()

        def deliver(result: dict[str, Any]) -> None:  # in the daemon's command thread
            def settle() -> None:
                if not future.done():
                    future.set_result(result)

            try:
                loop.call_soon_threadsafe(settle)
            except RuntimeError:  # the server stopped meanwhile
                pass

        self.backend.submit(command, deliver)
        try:
            return await asyncio.wait_for(future, COMMAND_TIMEOUT)
        except TimeoutError:
            return reply(command.request_id, error=f"{name} took longer than {COMMAND_TIMEOUT:g} s")

    async def command(self, request: web.Request) -> web.Response:
        """Run one command of :data:`WEB_COMMANDS` and answer with its result."""
        name = request.match_info["name"]
        if name not in WEB_COMMANDS:
            raise _json_error(web.HTTPNotFound, f'the page cannot send "{name}"')
        try:
            fields = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise _json_error(web.HTTPBadRequest, "the body must be a JSON object") from None
        if not isinstance(fields, dict):
            raise _json_error(web.HTTPBadRequest, "the body must be a JSON object")
        if "image" in fields:  # the page teaches from the camera only
            raise _json_error(web.HTTPBadRequest, 'the page does not send images ("image")')
        result = await self._run(name, fields)
        if not result.get("ok"):
            log.info("web: %s refused: %s", name, result.get("error"))
        return web.json_response(result)

    async def thumbnail(self, request: web.Request) -> web.Response:
        """A stored sample's image (its model-input crop) as a JPEG."""
        return await self._jpeg({"id": int(request.match_info["id"])})

    async def review_image(self, request: web.Request) -> web.Response:
        """The image of a frame kept for review (what the model saw of it) as a JPEG."""
        return await self._jpeg({"review_id": int(request.match_info["id"])})

    async def _jpeg(self, fields: dict[str, int]) -> web.Response:
        """The JPEG the ``thumbnail`` command answers with for ``fields``; 404 when there is
        none. Ids are never reused, so the browser may keep it a minute."""
        result = await self._run("thumbnail", fields)
        if not result.get("ok"):
            raise _json_error(web.HTTPNotFound, str(result.get("error")))
        try:
            body = base64.b64decode(result["image"], validate=True)
        except (KeyError, TypeError, binascii.Error):
            raise _json_error(web.HTTPBadGateway, "the thumbnail was not base64") from None
        return web.Response(
            body=body, content_type="image/jpeg", headers={"Cache-Control": "private, max-age=60"}
        )


def _host_name(host: str | None) -> str:
    """The name in a Host header, without the port (``[::1]:8080`` -> ``[::1]``)."""
    host = host or ""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0]


async def _send(response: web.StreamResponse, name: str, data: str) -> None:
    await response.write(f"event: {name}\ndata: {data}\n\n".encode())


def _json_error(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    return kind(text=json.dumps({"ok": False, "error": message}), content_type="application/json")
