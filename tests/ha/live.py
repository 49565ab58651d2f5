"""The live Home Assistant the tests drive: started, onboarded and connected to the broker.

:func:`start_home_assistant` does what a person does on a fresh install (start it, create the
owner, add the MQTT integration against the tests' broker) and returns a :class:`LiveHomeAssistant`
that answers the tests' questions about a daemon: which entities it announced, under which
entity ids Home Assistant registered them, whether their states match the daemon's payloads, and
what Home Assistant logged about them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.ha import ha_log
from tests.ha.announced import AnnouncedEntity, announced_by
from tests.ha.api import HomeAssistantApi
from tests.ha.installation import Installation
from tests.ha.instance import HomeAssistantInstance
from tests.ha.provisioning import add_mqtt_broker, onboard
from tests.ha.states import Renderer, mismatches
from tests.support.broker import Broker
from tests.support.daemon_harness import Daemon
from tests.support.mqtt_watch import MqttWatch

DISCOVERY_PREFIX = "homeassistant"  # Home Assistant's default, and the daemon's


@dataclass
class LiveHomeAssistant:
    """A running, onboarded Home Assistant with MQTT set up, and what was measured starting it."""

    instance: HomeAssistantInstance
    broker: Broker
    discovery: MqttWatch  # everything published under the discovery prefix
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def api(self) -> HomeAssistantApi:
        """Its REST and websocket APIs, logged in as the owner."""
        return self.instance.api

    def announced(self, daemon: Daemon) -> list[AnnouncedEntity]:
        """The entities `daemon` announced (from the discovery configs it published)."""
        return announced_by(self.discovery, DISCOVERY_PREFIX, daemon.root)

    def entity_ids(self, entities: list[AnnouncedEntity], timeout: float = 30.0) -> dict[str, str]:
        """unique id -> entity id of `entities`, once Home Assistant registered all of them
        (AssertionError naming the missing ones after `timeout`)."""
        wanted = {entity.unique_id for entity in entities}
        deadline = time.monotonic() + timeout
        while True:
            registry = {
                entry["unique_id"]: entry["entity_id"]
                for entry in self.api.entity_registry()
                if entry.get("platform") == "mqtt" and entry.get("unique_id") in wanted
            }
            if len(registry) == len(wanted) or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        missing = sorted(wanted - set(registry))
        assert not missing, (
            f"Home Assistant did not create {missing} in {timeout} s; what it logged: "
            f"{self.problems(0) or 'nothing about MQTT'}"
        )
        return registry

    def wait_states_match(
        self,
        daemon: Daemon,
        entities: list[AnnouncedEntity],
        entity_ids: dict[str, str],
        timeout: float = 20.0,
    ) -> None:
        """Wait until every state Home Assistant shows is what the daemon's latest payloads
        make of it (tests/ha/states.py); AssertionError listing the differences otherwise."""
        render = Renderer(self.api)

        def latest(topic: str) -> bytes | None:
            messages = [m for m in list(daemon.watch.messages) if m.topic == topic]
            return messages[-1].payload if messages else None

        deadline = time.monotonic() + timeout
        while True:
            found = mismatches(entities, entity_ids, latest, self.api.states(), render)
            if not found or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert not found, "Home Assistant's states differ from the daemon's:\n" + "\n".join(found)

    def wait_for_state(
        self, entity_id: str, accept: Callable[[dict], bool], what: str, timeout: float = 20.0
    ) -> dict:
        """The state object of `entity_id` once `accept` holds for it."""
        deadline = time.monotonic() + timeout
        shown: dict = {}
        while time.monotonic() < deadline:
            shown = self.api.states().get(entity_id) or {}
            if shown and accept(shown):
                return shown
            time.sleep(0.2)
        raise AssertionError(f"{entity_id} did not become {what} in {timeout} s: {shown}")

    def wait_removed(self, entity_id: str, timeout: float = 20.0) -> None:
        """Wait until `entity_id` is no longer in the entity registry."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if entity_id not in {e["entity_id"] for e in self.api.entity_registry()}:
                return
            time.sleep(0.2)
        raise AssertionError(f"{entity_id} is still registered after {timeout} s")

    def picture(self, entity_id: str) -> tuple[str, bytes]:
        """What an image entity shows, fetched as a dashboard does (its `entity_picture`, the
        image proxy): (content type, bytes)."""
        shown = self.api.states().get(entity_id) or {}
        path = (shown.get("attributes") or {}).get("entity_picture")
        assert path, f"{entity_id} has no picture: {shown}"
        return self.api.get_bytes(path)

    def wait_for_picture(self, entity_id: str, expected: bytes, timeout: float = 20.0) -> None:
        """Wait until the image entity `entity_id` shows exactly the JPEG `expected`."""
        deadline = time.monotonic() + timeout
        shown: tuple[str, bytes] | str = "nothing"
        while time.monotonic() < deadline:
            try:
                shown = self.picture(entity_id)
            except AssertionError as error:  # no picture yet (or the proxy has none yet)
                shown = str(error)
            if shown == ("image/jpeg", expected):
                return
            time.sleep(0.2)
        if isinstance(shown, tuple):
            shown = f"{shown[0]}, {len(shown[1])} bytes"
        raise AssertionError(
            f"{entity_id} did not show the {len(expected)}-byte JPEG in {timeout} s: {shown}"
        )

    def problems(self, since: int, daemon: Daemon | None = None) -> list[str]:
        """What Home Assistant logged since byte `since` about MQTT or `daemon`'s entities."""
        about = [daemon.root] if daemon is not None else []
        return ha_log.problems(self.instance.log(since), about)

    def mqtt_repairs(self) -> list[dict]:
        """Repair issues Home Assistant raised about MQTT (e.g. a deprecated discovery option)."""
        issues = self.api.websocket({"type": "repairs/list_issues"})[0]["issues"]
        return [i for i in issues if "mqtt" in (i.get("domain"), i.get("issue_domain"))]

    def restart(self) -> tuple[float, float]:
        """Stop Home Assistant and start it again; (seconds to stop, seconds until RUNNING)."""
        stopped = self.instance.stop()
        started = time.monotonic()
        self.instance.start()
        self.instance.wait_running()
        return stopped, time.monotonic() - started

    def close(self) -> None:
        """Stop Home Assistant (before the broker, which the caller owns) and the watcher."""
        try:
            self.instance.close()
        finally:
            self.discovery.close()


def start_home_assistant(installation: Installation, broker: Broker) -> LiveHomeAssistant:
    """A fresh Home Assistant from `installation`, onboarded, with MQTT set up on `broker`."""
    instance = HomeAssistantInstance(installation, "home-assistant")
    discovery = MqttWatch(broker.host, broker.port, DISCOVERY_PREFIX).start()
    live = LiveHomeAssistant(instance, broker, discovery)
    try:
        started = time.monotonic()
        instance.start()
        live.timings["http up"] = instance.wait_http()
        onboard(instance.api)
        instance.wait_running()
        live.timings["running"] = time.monotonic() - started
        mqtt = time.monotonic()
        add_mqtt_broker(instance.api, broker.host, broker.port)
        live.timings["MQTT set up"] = time.monotonic() - mqtt
    except BaseException:
        live.close()
        raise
    return live
