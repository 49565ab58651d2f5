"""Who may use the page: the password, login sessions with their CSRF tokens, login throttling.

Plain and synchronous (the web server calls it from its event loop); nothing here touches the
network. Sessions live in memory only: a restart of the daemon logs every browser out, and
nothing secret is written to disk.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import SecretStr

SESSION_IDLE = 12 * 3600.0  # seconds without a request before a session ends
SESSION_LIFETIME = 7 * 86400.0  # seconds after the login at most
MAX_SESSIONS = 64  # the oldest session ends when a 65th browser logs in
FREE_FAILURES = 3  # failed logins per client before the lockout starts
FIRST_LOCKOUT = 1.0  # seconds, doubled on every further failure...
MAX_LOCKOUT = 300.0  # ...up to this
MAX_CLIENTS = 1024  # clients whose failures are remembered (the oldest are forgotten)


def password_matches(given: str, password: SecretStr) -> bool:
    """True when ``given`` is the password; in constant time (for a given length of input)."""
    want = hashlib.sha256(password.get_secret_value().encode("utf-8")).digest()
    got = hashlib.sha256(given.encode("utf-8", "surrogatepass")).digest()
    return hmac.compare_digest(want, got)


def tokens_match(given: str | None, expected: str) -> bool:
    """True when ``given`` is ``expected`` (a CSRF token), in constant time."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


@dataclass
class WebSession:
    """One logged-in browser: its cookie value, its CSRF token, when it logged in and was seen."""

    id: str = field(repr=False)
    csrf: str = field(repr=False)
    created: float
    seen: float


class Sessions:
    """The logged-in browsers, by session id (the cookie's random value)."""

    def __init__(
        self,
        idle: float = SESSION_IDLE,
        lifetime: float = SESSION_LIFETIME,
        limit: int = MAX_SESSIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle = idle
        self.lifetime = lifetime
        self.limit = limit
        self._clock = clock
        self._sessions: OrderedDict[str, WebSession] = OrderedDict()

    def create(self) -> WebSession:
        """A new session with fresh random id and CSRF token (256 bits each)."""
        now = self._clock()
        session = WebSession(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now, now)
        self._sessions[session.id] = session
        while len(self._sessions) > self.limit:
            self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> WebSession | None:
        """The live session with this id (and mark it seen), or None."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if now - session.seen > self.idle or now - session.created > self.lifetime:
            del self._sessions[session_id]
            return None
        session.seen = now
        return session

    def end(self, session_id: str | None) -> None:
        """Log this session out (nothing happens for an unknown id)."""
        if session_id:
            self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._sessions)


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0


class LoginThrottle:
    """Failed logins per client (its address): after :data:`FREE_FAILURES` failures, each
    further one locks the client out for a delay that doubles (1 s, 2 s, 4 s, ... at most
    5 min). A locked-out client's attempts are refused without looking at the password; a
    successful login clears its record."""

    def __init__(
        self,
        free: int = FREE_FAILURES,
        first: float = FIRST_LOCKOUT,
        longest: float = MAX_LOCKOUT,
        clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free = free
        self.first = first
        self.longest = longest
        self.clients = clients
        self._clock = clock
        self._failures: OrderedDict[str, _Failures] = OrderedDict()

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again; 0 when it may now."""
        record = self._failures.get(client)
        if record is None:
            return 0.0
        return max(0.0, record.locked_until - self._clock())

    def failed(self, client: str) -> float:
        """Count a failed login of ``client``; returns the lockout it earned (seconds, 0: none)."""
        record = self._failures.pop(client, None) or _Failures()
        self._failures[client] = record  # most recent last
        while len(self._failures) > self.clients:
            self._failures.popitem(last=False)
        record.count += 1
        beyond = record.count - self.free
        if beyond <= 0:
            return 0.0
        lockout = min(self.longest, self.first * 2 ** (beyond - 1))
        record.locked_until = self._clock() + lockout
        return lockout

    def failures(self, client: str) -> int:
        """Failed logins of ``client`` in a row."""
        record = self._failures.get(client)
        return record.count if record else 0

    def succeeded(self, client: str) -> None:
        """``client`` logged in: forget its failures."""
        self._failures.pop(client, None)
