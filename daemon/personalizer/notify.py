"""Where the service tells its supervisor how it is doing (systemd's sd_notify, for one).

The service calls a :class:`ServiceNotifier` at fixed points: `ready()` once the model, camera
thread, state and MQTT client are up; `watchdog()` each time the frame loop makes progress;
`status(text)` when the one-line status changes; `stopping()` when shutdown begins. The default
does nothing; a systemd implementation plugs in here without touching the service.
"""

from __future__ import annotations

from typing import Protocol


class ServiceNotifier(Protocol):
    """Receives the service's lifecycle signals."""

    def ready(self) -> None:
        """The service is up and serving."""
        ...

    def watchdog(self) -> None:
        """The frame loop made progress (a keep-alive)."""
        ...

    def status(self, text: str) -> None:
        """A one-line human status, e.g. `training, 40 samples, 9.8 fps`."""
        ...

    def stopping(self) -> None:
        """Shutdown has begun."""
        ...


class NullNotifier:
    """A notifier for when nobody supervises the process."""

    def ready(self) -> None:
        """Nothing to tell."""

    def watchdog(self) -> None:
        """Nothing to tell."""

    def status(self, text: str) -> None:
        """Nothing to tell."""

    def stopping(self) -> None:
        """Nothing to tell."""
