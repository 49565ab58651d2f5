"""A fresh Home Assistant made usable without a browser: an owner, a token, the MQTT broker.

1. Onboarding's first step (``POST /api/onboarding/users``, no authentication while nobody is
   onboarded) creates the owner and returns an authorization code; ``/auth/token`` trades it for
   an access token, and the websocket API gives a long-lived token from that, which outlives
   the 30-minute access token and Home Assistant restarts. The other onboarding steps (location,
   analytics) are what the frontend asks a person; the APIs do not need them.
2. The MQTT integration is added as a person adds it: its config flow through the REST API
   (``/api/config/config_entries/flow``). The form is filled from the schema Home Assistant sends
   (:func:`fill_form`), so new fields with defaults (the 2025 ``other_settings`` section) need no
   change here.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from tests.ha.api import ApiError, HomeAssistantApi

OWNER_NAME = "Personalizer tests"
OWNER_USERNAME = "tests"


class FormError(AssertionError):
    """A config flow form asks for something the tests cannot answer, or refuses the answer."""


def onboard(api: HomeAssistantApi) -> str:
    """Create the owner of a fresh instance; returns a long-lived access token (also set on
    `api`)."""
    client_id = api.base_url + "/"
    created = api.request(
        "POST",
        "/api/onboarding/users",
        {
            "client_id": client_id,
            "name": OWNER_NAME,
            "username": OWNER_USERNAME,
            "password": secrets.token_urlsafe(16),
            "language": "en",
        },
        auth=False,
    )
    tokens = api.request(
        "POST",
        "/auth/token",
        {"grant_type": "authorization_code", "code": created["auth_code"], "client_id": client_id},
        form=True,
        auth=False,
    )
    api.token = tokens["access_token"]
    api.token = api.websocket(
        {"type": "auth/long_lived_access_token", "client_name": "personalizer tests", "lifespan": 7}
    )[0]
    return api.token


def _required_answer(field: Mapping[str, Any]) -> Any:
    """What the frontend sends for a required field nobody touched and that has no default."""
    selector = field.get("selector") or {}
    if "boolean" in selector or field.get("type") == "boolean":
        return False  # an unticked box
    options = (selector.get("select") or {}).get("options") or field.get("options")
    if options:  # the first choice (the "off"/"none" choices come first)
        first = options[0]
        if isinstance(first, Mapping):
            return first.get("value")
        if isinstance(first, list | tuple):  # voluptuous-serialize's (value, label) pairs
            return first[0]
        return first
    raise FormError(f"the form needs a value for {field.get('name')!r} ({dict(field)})")


def fill_form(schema: list[Mapping[str, Any]], values: Mapping[str, Any]) -> dict[str, Any]:
    """The answer to a data-entry-flow form: `values` for the fields they name, each other
    field's default, and for required fields without one what an untouched form sends.
    Sections (``type: expandable``) are filled the same way, nested."""
    answer: dict[str, Any] = {}
    for field in schema:
        name = field["name"]
        if field.get("type") == "expandable":
            answer[name] = fill_form(field.get("schema", []), values)
        elif name in values:
            answer[name] = values[name]
        elif "default" in field:
            answer[name] = field["default"]
        elif field.get("required"):
            answer[name] = _required_answer(field)
    return answer


def run_config_flow(
    api: HomeAssistantApi, handler: str, values: Mapping[str, Any], steps: int = 5
) -> dict[str, Any]:
    """Add the integration `handler` through its config flow; returns the created entry.

    Every form is answered with :func:`fill_form`; a menu takes the option named like a key
    of `values`'s ``"menu"`` (e.g. ``{"menu": "broker"}``). FormError when the flow shows an
    error, aborts or does not finish in `steps` steps.
    """
    result = api.post("/api/config/config_entries/flow", {"handler": handler})
    for _ in range(steps):
        kind = result.get("type")
        if kind == "create_entry":
            return result.get("result") or {}
        if kind == "abort":
            raise FormError(f"the {handler} config flow aborted: {result.get('reason')}")
        flow = f"/api/config/config_entries/flow/{result['flow_id']}"
        if kind == "menu":
            choice = values.get("menu")
            if choice not in result.get("menu_options", []):
                raise FormError(f"the {handler} config flow shows a menu: {result}")
            result = api.post(flow, {"next_step_id": choice})
            continue
        if kind != "form":
            raise FormError(f"the {handler} config flow answered {kind!r}: {result}")
        if result.get("errors"):
            raise FormError(
                f"the {handler} config flow refused step {result.get('step_id')!r}: "
                f"{result['errors']}"
            )
        answer = fill_form(result.get("data_schema") or [], values)
        try:
            result = api.post(flow, answer)
        except ApiError as error:
            raise FormError(f"the {handler} config flow refused {answer}: {error}") from None
    raise FormError(f"the {handler} config flow did not finish in {steps} steps: {result}")


def add_mqtt_broker(api: HomeAssistantApi, host: str, port: int) -> dict[str, Any]:
    """Set up the MQTT integration against the broker at `host`:`port` (no login, no TLS)."""
    entry = run_config_flow(api, "mqtt", {"broker": host, "port": port, "menu": "broker"})
    if entry.get("state") not in (None, "loaded"):
        raise FormError(f"the MQTT config entry was created but is {entry.get('state')}: {entry}")
    return entry
