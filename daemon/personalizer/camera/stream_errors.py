"""What a failed network stream means, in words a camera owner can act on.

PyAV raises FFmpeg's errors as typed exceptions (``HTTPUnauthorizedError`` for an HTTP *or* RTSP
401, ``ConnectionRefusedError``, ...). Their text quotes the URL the decoder was given, which
carries the password, so it is never shown as it is: each case gets its own sentence, and
anything else is shown only after :func:`personalizer.redaction.redact_text`.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from urllib.parse import urlsplit

from ..redaction import redact_text

PASSWORD_HINT = (
    "camera.password_file (or the systemd credential camera_password, "
    "/etc/personalizer/camera_password)"
)


@dataclass(frozen=True)
class StreamContext:
    """What a message about one stream may name: its URL (no credentials), login, timeouts."""

    url: str
    username: str
    password_source: str  # "file /etc/...", "systemd credential ...", or "" without a password
    secrets: tuple[str, ...]  # texts that must never be shown (the password, the login URL)
    open_timeout: float
    read_timeout: float

    @property
    def protocol(self) -> str:
        """RTSP or HTTP (https too): the protocol whose status codes the camera answers with."""
        return "RTSP" if self.url.lower().startswith("rtsp") else "HTTP"

    @property
    def address(self) -> str:
        """``host:port`` of the camera, as the user configured it (default port named)."""
        parts = urlsplit(self.url)
        default = {"rtsp": 554, "http": 80, "https": 443}.get(parts.scheme.lower(), 0)
        return f"{parts.hostname}:{parts.port or default}"


def explain(exc: BaseException, av: ModuleType, context: StreamContext, opening: bool) -> str:
    """A sentence for ``exc`` (raised by PyAV while ``opening`` the stream or reading it)."""
    error = av.error
    proto = context.protocol
    if isinstance(exc, error.HTTPUnauthorizedError):
        if not context.username:
            return (
                f"{proto} 401 Unauthorized: the camera wants a login; set camera.username and "
                f"put the password in {PASSWORD_HINT}"
            )
        where = context.password_source or "no password file or credential (none was found)"
        return (
            f"{proto} 401 Unauthorized: the camera refused the login; check camera.username "
            f'("{context.username}") and the password in {where}'
        )
    if isinstance(exc, error.HTTPForbiddenError):
        return (
            f"{proto} 403 Forbidden: the camera does not let this user see the stream; check "
            "the user's rights in the camera's settings"
        )
    if isinstance(exc, error.HTTPNotFoundError):
        path = urlsplit(context.url).path or "/"
        return (
            f"{proto} 404 Not Found: the camera has no stream at {path}; check the path in "
            "camera.url against the camera's manual (its substream is often /stream2 or similar)"
        )
    if isinstance(exc, error.HTTPClientError | error.HTTPServerError):
        return f"{proto} error from the camera: {_reason(exc, context)}"
    if isinstance(exc, ConnectionRefusedError):
        return (
            f"connection refused by {context.address}: is the camera on, and is the port in "
            "camera.url right?"
        )
    if isinstance(exc, TimeoutError | error.ExitError):
        seconds = context.open_timeout if opening else context.read_timeout
        what = "no answer from" if opening else "no data for"
        if opening:
            return (
                f"{what} {context.address} within {seconds:.0f} s: is the camera on and "
                "reachable from this board?"
            )
        return f"the stream stalled: {what} {seconds:.0f} s from {context.address}"
    if isinstance(exc, error.InvalidDataError):
        return (
            f"{context.address} sent nothing FFmpeg can decode as video: is camera.url the "
            "camera's video stream (not its web page)?"
        )
    prefix = "cannot open the stream" if opening else "the stream broke off"
    return f"{prefix}: {_reason(exc, context)}"


def _reason(exc: BaseException, context: StreamContext) -> str:
    """The exception's own words, any URL in them without its secrets, and the password and
    the login URL masked."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return redact_text(str(text), context.secrets)
