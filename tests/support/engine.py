"""The daemon's engine in the test's own process: a real bundle, a real state database, and
in-process doubles for everything that talks to the outside (tests/support/fakes.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from personalizer.camera import LatestFrame
from personalizer.commands import Command
from personalizer.config import Config, parse_config
from personalizer.engine import Engine
from personalizer.model import TransferLearningModel
from personalizer.store import StateStore
from tests.support.fakes import RecordingSink

CLASSES = ("cat", "coffee", "rocket", "astronaut")


@dataclass
class EngineRig:
    """An engine and what surrounds it in the daemon, for a test to drive directly."""

    engine: Engine
    events: RecordingSink
    frames: LatestFrame
    config: Config

    @property
    def model(self) -> TransferLearningModel:
        """The runtime model."""
        return self.engine.model

    @property
    def store(self) -> StateStore:
        """The state store."""
        return self.engine.store

    def run(self, name: str, fields: dict[str, Any], source: str = "mqtt") -> dict[str, Any]:
        """Carry out a command as the command thread does; returns its result fields (a
        refusal raises CommandError)."""
        return self.engine.execute(Command.local(name, fields, source))

    def show(self, image: np.ndarray) -> None:
        """Make ``image`` the camera's newest frame."""
        self.frames.put(np.array(image, copy=True))


def config_for(tmp_path: Path, bundle: Path, classes=CLASSES, **sections: dict[str, Any]) -> Config:
    """A validated config for a test: the bundle, its classes, a state folder in tmp_path."""
    document: dict[str, dict[str, Any]] = {
        "model": {"bundle": str(bundle), "classes": list(classes), "num_threads": 1},
        "state": {"dir": str(tmp_path / "state")},
    }
    for name, table in sections.items():
        document.setdefault(name, {}).update(table)
    return parse_config(document, tmp_path / "test.toml", environ={})


def engine_rig(tmp_path: Path, bundle: Path, classes=CLASSES, **sections: Any) -> EngineRig:
    """An engine whose state is opened (as at the daemon's start) and whose events are kept."""
    config = config_for(tmp_path, bundle, classes, **sections)
    model = TransferLearningModel(bundle, config.model.classes, num_threads=1, seed=0)
    store = StateStore(
        config.state.dir,
        store_images=config.state.store_images,
        configured_classes=config.model.classes,
        configured_region=config.camera.region,
    )
    store.prepare()
    events = RecordingSink()
    frames = LatestFrame()
    engine = Engine(model, config, store, frames, events, "test", "test camera", 5.0)
    store.open(model, engine.status.progress)
    engine.after_load()
    return EngineRig(engine, events, frames, config)
