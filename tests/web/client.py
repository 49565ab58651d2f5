"""A plain HTTP client for the page's server, as a script (not a browser) would use it.

It keeps its own cookies, sends exactly the headers it is told to (no CSRF token, no Origin
unless given), and never raises on an HTTP error: the tests look at the status.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass
class Answer:
    """An HTTP response: status, headers and body."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)

    @property
    def text(self) -> str:
        """The body as text."""
        return self.body.decode("utf-8", "replace")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class WebClient:
    """Requests to ``base`` (``http://127.0.0.1:PORT``) with a cookie jar of its own."""

    def __init__(self, base: str, context: ssl.SSLContext | None = None) -> None:
        self.base = base.rstrip("/")
        self.cookies = http.cookiejar.CookieJar()
        handlers: list[Any] = [urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect()]
        if context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self.opener = urllib.request.build_opener(*handlers)
        self.csrf: str | None = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> Answer:
        """One request; any status comes back as an :class:`Answer`."""
        request = urllib.request.Request(
            self.base + path, data=body, method=method, headers=headers or {}
        )
        try:
            with self.opener.open(request, timeout=timeout) as response:
                return Answer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.headers, error.read())

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        """GET ``path``."""
        return self.request("GET", path, headers=headers)

    def login(self, password: str, headers: dict[str, str] | None = None) -> Answer:
        """POST the login form; on success also fetch the session's CSRF token."""
        body = urllib.parse.urlencode({"password": password}).encode()
        answer = self.request(
            "POST",
            "/login",
            body,
            {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
        )
        if answer.status == 303:
            self.csrf = self.get("/api/session").json()["csrf"]
        return answer

    def command(
        self,
        name: str,
        fields: dict[str, Any] | None = None,
        csrf: str | None | bool = True,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """POST a command; ``csrf=True`` sends the session's token, a string sends that one,
        None or False sends none."""
        sent = {"Content-Type": "application/json", **(headers or {})}
        token = self.csrf if csrf is True else csrf
        if token:
            sent["X-CSRF-Token"] = token
        return self.request("POST", f"/api/command/{name}", json.dumps(fields or {}).encode(), sent)
