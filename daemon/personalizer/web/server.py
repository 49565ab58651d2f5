"""The web server: its own asyncio event loop in the thread the service gives it.

:meth:`WebServer.run` binds the address of ``[web] listen`` (loopback only while no password is
set), serves until the service's stop event is set, and then closes every connection, open
event streams included, within a second. A server that cannot listen (the port is taken)
records why in :attr:`WebServer.failure` and returns; the daemon goes on without its page.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading

from aiohttp import web

from ..config import WebConfig
from .app import PageBackend, WebApp
from .feed import LiveFeed
from .frames import FrameEncoder

log = logging.getLogger(__name__)

STOP_POLL = 0.1  # seconds between looks at the stop event
SHUTDOWN_TIMEOUT = 0.5  # seconds open requests get to finish at shutdown


def tls_context(config: WebConfig) -> ssl.SSLContext | None:
    """The server's TLS context from `tls_cert` and `tls_key`, or None without them."""
    if not config.tls:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_cert, config.tls_key)  # type: ignore[arg-type]
    return context


class WebServer:
    """The page's server; :attr:`feed` is the event sink the service registers."""

    def __init__(self, config: WebConfig, backend: PageBackend) -> None:
        self.config = config
        self.backend = backend
        self.feed = LiveFeed()
        self.encoder = FrameEncoder()
        self.app: WebApp | None = None
        self.failure: str | None = None  # why it could not start, if it could not
        self._started = threading.Event()

    @property
    def url(self) -> str | None:
        """The page's address (:attr:`WebConfig.url`)."""
        return self.config.url

    def wait_started(self, timeout: float) -> bool:
        """Wait until the server listens or gave up (see :attr:`failure`); False on timeout."""
        return self._started.wait(timeout)

    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set (blocks: the service runs it in a thread of its own)."""
        try:
            asyncio.run(self._serve(stop))
        finally:
            self._started.set()

    async def _serve(self, stop: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        self.app = app = WebApp(self.config, self.backend, self.feed, self.encoder)
        runner = web.AppRunner(
            app.application(), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        host, port = self.config.bind
        site = web.TCPSite(runner, host, port, ssl_context=tls_context(self.config))
        try:
            await site.start()
        except OSError as exc:
            self.failure = (
                f"web: cannot listen on {self.config.listen} ({exc.strerror or exc}); the page "
                "is off. Free the port or change [web] listen"
            )
            log.error("%s", self.failure)
            await runner.cleanup()
            return
        self.feed.attach(loop)
        self._started.set()
        try:
            while not stop.is_set():
                await asyncio.sleep(STOP_POLL)
        finally:
            app.closing.set()
            self.feed.attach(None)
            await runner.cleanup()
