"""MQTT API v1 topic names (docs/daemon.md). Nothing outside this package builds a topic."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    """The topics under one root, `<mqtt.topic_prefix>`."""

    root: str

    @property
    def availability(self) -> str:
        """`online` / `offline`, retained (the last will)."""
        return f"{self.root}/availability"

    @property
    def status(self) -> str:
        """JSON status, retained."""
        return f"{self.root}/status"

    @property
    def prediction(self) -> str:
        """Smoothed predictions."""
        return f"{self.root}/prediction"

    @property
    def loss(self) -> str:
        """Training loss per epoch."""
        return f"{self.root}/loss"

    @property
    def sample(self) -> str:
        """A sample was stored."""
        return f"{self.root}/sample"

    @property
    def class_change(self) -> str:
        """The announced class changed (an event, not retained)."""
        return f"{self.root}/class_change"

    @property
    def class_change_picture(self) -> str:
        """JPEG of the model's view when the announced class last changed, retained."""
        return f"{self.root}/picture/class_change"

    @property
    def sample_picture(self) -> str:
        """JPEG of the model's view of the last sample, retained."""
        return f"{self.root}/picture/sample"

    @property
    def pictures(self) -> tuple[str, ...]:
        """Every picture topic."""
        return (self.class_change_picture, self.sample_picture)

    @property
    def metrics(self) -> str:
        """Validation estimates, retained."""
        return f"{self.root}/metrics"

    @property
    def commands(self) -> str:
        """The subscription that receives every command (one level below cmd/)."""
        return f"{self.root}/cmd/+"

    def command(self, name: str) -> str:
        """Where clients send the command `name`."""
        return f"{self.root}/cmd/{name}"

    def result(self, name: str) -> str:
        """Where the result of the command `name` goes."""
        return f"{self.root}/cmd/{name}/result"

    def command_name(self, topic: str) -> str | None:
        """`sample` for `<root>/cmd/sample`; None for any other topic."""
        prefix = f"{self.root}/cmd/"
        if topic.startswith(prefix) and "/" not in topic[len(prefix) :]:
            return topic[len(prefix) :]
        return None
