"""What to publish on the discovery topics so that Home Assistant shows the daemon as it is now.

Plain and synchronous, without a lock of its own: the MQTT client calls it, and publishes what it
returns, under its discovery lock (so no older announcement goes out after a newer one).

The order matters. Home Assistant refuses a config for an entity while a config for the same
entity stands on another topic ("conflicting MQTT discovery message"), which is what a switch of
`[mqtt] discovery` between the entity and the device form leaves on the broker. So on each
connect the announcement waits until the retained configs of the daemon's node were read back:

1. :meth:`DiscoveryAnnouncer.connected`: the client subscribes to :attr:`subscriptions` and to
   its own availability topic, then publishes `online`;
2. :meth:`DiscoveryAnnouncer.read_back` for each retained config: one that is not announced now
   is cleared at once (an empty retained config); components that a device-form config no longer
   has are noted, to be removed by the next one (sent with nothing but their platform);
3. :meth:`DiscoveryAnnouncer.caught_up` when the client's own `online` comes back (a broker
   sends a subscription's retained messages before what is published after it): the
   announcement.

Should a stale config arrive after the announcement anyway (a broker that orders differently),
it is cleared and the announcement repeated, so Home Assistant ends up right either way.
"""

from __future__ import annotations

from .discovery import (
    DiscoveryDevice,
    DiscoveryMessage,
    Form,
    announced_components,
    clearing,
    components,
    device_topic,
    discovery_messages,
    stale_topics,
    subscriptions,
)


class DiscoveryAnnouncer:
    """Decides the discovery messages of one daemon in one form."""

    def __init__(self, device: DiscoveryDevice, form: Form) -> None:
        """Announces ``device`` in ``form`` ("entity" or "device")."""
        self.form = form
        self._device = device
        self._ready = False
        self._announced: dict[str, bytes] = {}  # topic -> payload of the current announcement
        self._removed: dict[str, str] = {}  # device form: object id -> platform, to remove
        self._current = self._messages()

    @property
    def subscriptions(self) -> tuple[str, ...]:
        """Topic filters that read back every config the daemon announced, in either form."""
        return subscriptions(self._device.prefix, self._device.topics)

    @property
    def ready(self) -> bool:
        """True once the read-back of this connection is done and the daemon announced itself."""
        return self._ready

    def _messages(self) -> list[DiscoveryMessage]:
        return discovery_messages(self._device, self.form, self._removed)

    def _object_ids(self) -> dict[str, str]:
        return {c.object_id: c.platform for c in components(self._device)}

    def _announce(self) -> list[DiscoveryMessage]:
        """The current announcement, and empty configs for entity-form topics it dropped."""
        self._current = self._messages()
        topics = {m.topic: m.payload for m in self._current}
        gone = stale_topics(self._announced, topics) if self.form == "entity" else []
        self._announced = topics
        return [*self._current, *clearing(gone)]

    def connected(self) -> None:
        """A (re)connect: the read-back starts; nothing is announced until :meth:`caught_up`."""
        self._ready = False
        self._current = self._messages()
        self._announced = {m.topic: m.payload for m in self._current}

    def disconnected(self) -> None:
        """The connection is gone: changes are only recorded until the next :meth:`caught_up`."""
        self._ready = False

    def read_back(self, topic: str, payload: bytes) -> list[DiscoveryMessage]:
        """A config seen on the broker under the daemon's node (retained, or an echo of its own):
        what to publish about it."""
        if not payload or self._announced.get(topic) == payload:
            return []
        own_device_topic = device_topic(self._device.prefix, self._device.topics)
        if topic == own_device_topic and self.form == "device":
            current = self._object_ids()  # every component's config: built once per read-back
            stale = {
                object_id: platform
                for object_id, platform in announced_components(payload).items()
                if object_id not in current
            }
            if not stale.keys() - self._removed.keys():
                return []
            self._removed.update(stale)
            return self._announce() if self._ready else []
        if topic in self._announced:
            return []  # an older payload of a current topic: the announcement replaces it
        # Not announced now: another form's config, a removed class's, an older version's.
        clear = clearing([topic])
        collides = topic == own_device_topic or (
            self.form == "device" and topic.rsplit("/", 2)[-2] in self._object_ids()
        )
        if self._ready and collides:
            # Announced before this was cleared: Home Assistant refused the same entities.
            return [*clear, *self._announce()]
        return clear

    def caught_up(self) -> list[DiscoveryMessage]:
        """The read-back of this connection is done: the announcement."""
        self._ready = True
        return self._announce()

    def changed(self, device: DiscoveryDevice) -> list[DiscoveryMessage]:
        """The classes (or what else discovery says) changed: the new announcement, once ready;
        a component the device form drops is removed by it."""
        before = self._object_ids()
        self._device = device
        if self.form == "device":
            current = self._object_ids()
            self._removed.update({k: v for k, v in before.items() if k not in current})
            for object_id in current:
                self._removed.pop(object_id, None)
        return self._announce() if self._ready else []

    def again(self) -> list[DiscoveryMessage]:
        """The announcement once more (Home Assistant came online), once ready."""
        return list(self._current) if self._ready else []
