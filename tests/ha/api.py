"""Home Assistant's REST and websocket APIs, as a script or a dashboard would use them.

REST (``/api/...``, ``/auth/token``) through urllib; the websocket API (``/api/websocket``: the
entity and device registries, long-lived tokens) through aiohttp's client, which the daemon's
environment has anyway. Both are documented by Home Assistant and stable across releases.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

import aiohttp


class ApiError(AssertionError):
    """Home Assistant answered a request with an error (the message has its answer)."""


class HomeAssistantApi:
    """The APIs of one Home Assistant at `base_url`, authenticated with `token` once set."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        form: bool = False,
        auth: bool = True,
        raw: bool = False,
    ) -> Any:
        """Send one request; its JSON answer (the text when it is not JSON, or when `raw`).
        ApiError on HTTP errors; OSError (URLError) when nothing answers."""
        data = None
        headers = {}
        if body is not None:
            if form:
                data = urllib.parse.urlencode(body).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                text = answer.read().decode()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:500]
            raise ApiError(f"{method} {path}: HTTP {error.code}: {detail}") from None
        if raw:
            return text
        try:
            return json.loads(text)
        except ValueError:
            return text

    def get_bytes(self, path: str) -> tuple[str, bytes]:
        """GET `path` as bytes (an image): (its content type, its body). ApiError on errors."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        request = urllib.request.Request(self.base_url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return answer.headers.get_content_type(), answer.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:500]
            raise ApiError(f"GET {path}: HTTP {error.code}: {detail}") from None

    def get(self, path: str) -> Any:
        """GET `path`."""
        return self.request("GET", path)

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """POST `body` as JSON to `path`."""
        return self.request("POST", path, body if body is not None else {})

    def states(self) -> dict[str, dict[str, Any]]:
        """Every entity's state object, by entity id."""
        return {state["entity_id"]: state for state in self.get("/api/states")}

    def call_service(self, domain: str, service: str, data: Mapping[str, Any]) -> Any:
        """Call a service (``/api/services/<domain>/<service>``)."""
        return self.post(f"/api/services/{domain}/{service}", data)

    def render(self, template: str, variables: Mapping[str, Any]) -> str:
        """Render `template` with Home Assistant's template engine (``/api/template``)."""
        body = {"template": template, "variables": variables}
        return self.request("POST", "/api/template", body, raw=True)

    def websocket(self, *messages: Mapping[str, Any]) -> list[Any]:
        """Send `messages` over one authenticated websocket connection; their results."""
        return asyncio.run(self._websocket(messages))

    async def _websocket(self, messages: tuple[Mapping[str, Any], ...]) -> list[Any]:
        url = self.base_url.replace("http", "ws", 1) + "/api/websocket"
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.ws_connect(url, max_msg_size=64 * 1024 * 1024) as socket,
        ):
            await socket.receive_json()  # auth_required
            await socket.send_json({"type": "auth", "access_token": self.token})
            answer = await socket.receive_json()
            if answer.get("type") != "auth_ok":
                raise ApiError(f"websocket authentication failed: {answer}")
            results = []
            for number, message in enumerate(messages, start=1):
                await socket.send_json({"id": number, **message})
                while True:  # skip anything that is not this message's result
                    answer = await socket.receive_json()
                    if answer.get("id") == number and answer.get("type") == "result":
                        break
                if not answer.get("success"):
                    raise ApiError(f"websocket {message.get('type')}: {answer.get('error')}")
                results.append(answer.get("result"))
            return results

    def entity_registry(self) -> list[dict[str, Any]]:
        """The entity registry's entries (entity id, unique id, platform, device id, ...)."""
        return self.websocket({"type": "config/entity_registry/list"})[0]

    def device_registry(self) -> list[dict[str, Any]]:
        """The device registry's entries (id, name, identifiers, ...)."""
        return self.websocket({"type": "config/device_registry/list"})[0]
