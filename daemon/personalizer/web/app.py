"""The page's HTTP side (aiohttp): routes and the login.

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

The checks every request passes (session, Origin, CSRF token, Host) are in guard.py.
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
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from ..camera import LatestFrame
from ..commands import COMMAND_NAMES, Command, CommandError, reply
from ..commands.reference import PAGE_COMMANDS
from ..config import WebConfig
from .auth import LoginThrottle, Sessions, WebSession, password_matches
from .disk import DiskUse
from .feed import LiveFeed
from .frames import FrameEncoder
from .guard import COOKIE, RequestGuard, json_error

log = logging.getLogger(__name__)

# The commands the page sends (`classify` of an uploaded image is not among them).
WEB_COMMANDS = PAGE_COMMANDS
COMMAND_TIMEOUT = 30.0  # seconds a command may take before the page is told it timed out
FRAME_WAIT = 2.0  # seconds /api/frame waits for a newer frame before answering 204
FRAME_POLL = 0.02  # seconds between looks at the newest frame while waiting
HEALTH_INTERVAL = 2.0  # seconds between two health events on the stream
MAX_BODY = 64 * 1024  # bytes of a request body (commands are small: no images are uploaded)
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
        self._disk = DiskUse(backend.state_dir)
        self.guard = RequestGuard(config, self.sessions)
        self._pages = {name: asset(name).decode("utf-8") for name in ("index.html", "login.html")}
        self._assets = {name: asset(name) for name in ASSETS}

    @property
    def open_without_login(self) -> bool:
        """No password: every browser on this board (loopback) is let in without a login."""
        return self.guard.open_without_login

    def application(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(
            client_max_size=MAX_BODY,
            middlewares=[self.guard.host_check, self.guard.session_check],
        )
        app.on_response_prepare.append(self.guard.add_headers)
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
        self.guard.set_cookie(response, session)
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
            raise json_error(web.HTTPBadRequest, '"after" must be a frame number') from None
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
            raise json_error(web.HTTPNotFound, f'the page cannot send "{name}"')
        try:
            fields = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise json_error(web.HTTPBadRequest, "the body must be a JSON object") from None
        if not isinstance(fields, dict):
            raise json_error(web.HTTPBadRequest, "the body must be a JSON object")
        if "image" in fields:  # the page teaches from the camera only
            raise json_error(web.HTTPBadRequest, 'the page does not send images ("image")')
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
            raise json_error(web.HTTPNotFound, str(result.get("error")))
        try:
            body = base64.b64decode(result["image"], validate=True)
        except (KeyError, TypeError, binascii.Error):
            raise json_error(web.HTTPBadGateway, "the thumbnail was not base64") from None
        return web.Response(
            body=body, content_type="image/jpeg", headers={"Cache-Control": "private, max-age=60"}
        )


async def _send(response: web.StreamResponse, name: str, data: str) -> None:
    await response.write(f"event: {name}\ndata: {data}\n\n".encode())
