"""The board's own web page: see the camera and the scores, teach, train, review samples.

An optional part (``[web] enabled``), served with aiohttp from a thread of the service
(:class:`WebServer`). It uses the daemon like a button does: commands go through
``Service.submit`` with ``source="web"``, and the live data comes from an event sink
(:class:`~.feed.LiveFeed`) registered with the service's events. Its files (HTML, CSS,
JavaScript, no build step and nothing from elsewhere) are in ``assets/``.

The page's address, for people and Home Assistant's ``configuration_url``, is
:attr:`personalizer.config.WebConfig.url` (None while the page is off).
"""

from .app import WEB_COMMANDS, PageBackend, WebApp
from .auth import LoginThrottle, Sessions
from .feed import LiveFeed
from .frames import FrameEncoder
from .server import WebServer, tls_context

__all__ = [
    "WEB_COMMANDS",
    "FrameEncoder",
    "LiveFeed",
    "LoginThrottle",
    "PageBackend",
    "Sessions",
    "WebApp",
    "WebServer",
    "tls_context",
]
