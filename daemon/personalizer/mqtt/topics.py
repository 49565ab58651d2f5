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


@dataclass(frozen=True)
class FleetTopics:
    """The topics of one fleet group (fleet/, docs/daemon.md "A fleet"), seen from one board.

    Every board writes only under its own level, ``<prefix>/<group>/<board>/``: a retained
    record per sample (``s/<uid>``) and one retained list of its class changes (``classes``);
    it reads the whole group.
    """

    prefix: str
    group: str
    board: str

    @property
    def root(self) -> str:
        """`<prefix>/<group>`: the group's level."""
        return f"{self.prefix}/{self.group}"

    def sample(self, uid: str) -> str:
        """This board's record of the sample ``uid``."""
        return f"{self.root}/{self.board}/s/{uid}"

    @property
    def classes(self) -> str:
        """This board's class changes."""
        return f"{self.root}/{self.board}/classes"

    @property
    def subscriptions(self) -> tuple[str, str]:
        """What a board of the group subscribes to: every board's samples and classes."""
        return (f"{self.root}/+/s/+", f"{self.root}/+/classes")

    def parse(self, topic: str) -> tuple[str, str, str | None] | None:
        """``(board, "sample", uid)`` or ``(board, "classes", None)`` for a topic of the
        group; None for any other topic."""
        prefix = f"{self.root}/"
        if not topic.startswith(prefix):
            return None
        levels = topic[len(prefix) :].split("/")
        if len(levels) == 3 and levels[1] == "s" and levels[0] and levels[2]:
            return levels[0], "sample", levels[2]
        if len(levels) == 2 and levels[1] == "classes" and levels[0]:
            return levels[0], "classes", None
        return None
