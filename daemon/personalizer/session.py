"""The running personalization: what each command does, what each frame becomes, the status.

Plain and synchronous: it creates no thread. `service.py` calls it from its threads (frame
loop, trainer, command worker); the runtime model is safe to use from several threads, and the
few mutable things kept here are guarded by locks.

Data path of a frame: `classify_frame` -> model.predict -> smoothing -> `prediction` event.
Data path of a sample: `execute(<sample command>)` -> model.add_sample -> state saved to disk ->
`sample` event -> status.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

import numpy as np

from .camera import Frame, LatestFrame
from .commands import COMMANDS, Command, CommandError
from .config import Config
from .errors import (
    ImageFormatError,
    NoSamplesError,
    NotImprintableError,
    PersonalizerError,
    UnknownClassError,
)
from .events import CameraStatus, EventSink, PredictionEvent, SampleEvent, StatusReport
from .inference import PredictionSmoother
from .trainer import StateStore, Trainer
from .trainer.trainer import TrainableModel

log = logging.getLogger(__name__)


class SessionModel(TrainableModel, Protocol):
    """Everything the session uses of the runtime model (TransferLearningModel)."""

    @property
    def bundle_id(self) -> str:
        """The bundle's id."""
        ...

    @property
    def steps(self) -> int:
        """Optimizer updates since the parameters were (re)initialised."""
        ...

    def add_sample(self, image: Any, class_name: str) -> int:
        """Store a sample; returns its id."""
        ...

    def predict(self, image: Any) -> list[Any]:
        """One Prediction per class, highest first."""
        ...

    def clear(self, class_name: str | None = None) -> int:
        """Forget one class's samples, or everything (samples and parameters)."""
        ...

    def initialize_from_samples(self) -> None:
        """Imprint the head from the class means."""
        ...


def scores_of(predictions: list[Any]) -> dict[str, float]:
    """class -> probability from the model's predictions."""
    return {p.class_name: float(p.confidence) for p in predictions}


class Session:
    """Commands, frames and status of one daemon, around one runtime model."""

    def __init__(
        self,
        model: SessionModel,
        config: Config,
        store: StateStore,
        frames: LatestFrame,
        events: EventSink,
        bundle_id: str,
        version: str,
        camera_source: str,
        frame_age_limit: float,
    ) -> None:
        self.model = model
        self.classes = tuple(config.model.classes)
        self.config = config
        self.store = store
        self.frames = frames
        self.events = events
        self.bundle_id = bundle_id
        self.version = version
        self.trainer = Trainer(model, store, config.training, events.loss, self.publish_status)
        self._imprint = config.training.imprint
        inference = config.inference
        self._smoother = PredictionSmoother(
            inference.agree_frames, inference.min_confidence, inference.publish_interval
        )
        self._smoother_lock = threading.Lock()
        self._status_lock = threading.Lock()
        self._camera = CameraStatus(camera_source, ok=False, error="not started yet")
        self._warnings: list[str] = []
        self.frame_age_limit = frame_age_limit  # older "current" frames: the camera is stuck

    # --- status -----------------------------------------------------------------------------

    def status_report(self) -> StatusReport:
        """The current status."""
        return StatusReport(
            state="training" if self.trainer.training else "idle",
            classes=self.classes,
            samples=dict(self.model.samples()),
            bundle=self.bundle_id,
            version=self.version,
            camera=self._camera,
            # A failed save is a warning only until a save works again.
            warnings=tuple(self._warnings) + ((self.store.error,) if self.store.error else ()),
        )

    def publish_status(self) -> None:
        """Announce the current status (built and sent in one step, so none goes stale)."""
        with self._status_lock:
            self.events.status(self.status_report())

    def warn(self, message: str) -> None:
        """Add a lasting warning to the status (e.g. a state file that was set aside)."""
        self._warnings.append(message)
        self.publish_status()

    @property
    def camera(self) -> CameraStatus:
        """The camera's health as last recorded."""
        return self._camera

    def camera_changed(self, status: CameraStatus) -> None:
        """Record the camera's health; the status is republished when it changed."""
        if status != self._camera:
            self._camera = status
            self.publish_status()

    # --- frames -----------------------------------------------------------------------------

    def classify_frame(self, frame: Frame) -> PredictionEvent | None:
        """Classify one camera frame and publish the smoothed prediction when one is due."""
        scores = scores_of(self.model.predict(frame.image))
        with self._smoother_lock:
            smoothed = self._smoother.update(scores, time.monotonic())
        if smoothed is None:
            return None
        event = PredictionEvent(
            smoothed.class_name, smoothed.confidence, smoothed.scores, frame.captured, frame.number
        )
        self.events.prediction(event)
        return event

    def _current_frame(self) -> Frame:
        frame = self.frames.latest()
        camera = self._camera
        why = f" (camera {camera.source}: {camera.error})" if camera.error else ""
        if frame is None:
            raise CommandError(
                f'no camera frame yet{why}; send the image in the command\'s "image" field'
            )
        age = time.monotonic() - frame.captured_monotonic
        if age > self.frame_age_limit:
            raise CommandError(
                f"the newest camera frame is {age:.1f} s old{why}; check the camera, or send "
                'the image in the command\'s "image" field'
            )
        return frame

    # --- commands ---------------------------------------------------------------------------

    def execute(self, command: Command) -> dict[str, Any]:
        """Carry out a command (its handler in COMMANDS); returns its result fields, or raises
        CommandError."""
        try:
            return COMMANDS.run(self, command)
        except (ImageFormatError, NoSamplesError, UnknownClassError) as exc:
            raise CommandError(str(exc), command.request_id) from None
        except CommandError as exc:
            exc.request_id = command.request_id
            raise

    def _known_class(self, name: str) -> str:
        if name not in self.classes:
            raise CommandError(f'unknown class "{name}"; the classes are {", ".join(self.classes)}')
        return name

    def _imprint_if_untrained(self) -> None:
        """While the head was never trained, set it from the class means (useful at once)."""
        if not self._imprint or self.model.steps != 0 or self.trainer.training:
            return
        if sum(self.model.samples().values()) == 0:
            return
        try:
            self.model.initialize_from_samples()
        except NotImprintableError as exc:
            log.info("imprinting is off: %s", exc)
            self._imprint = False

    def _save_or_fail(self, what: str) -> int:
        try:
            return self.store.save(self.model)
        except (OSError, PersonalizerError) as exc:
            log.error("saving the state failed: %s", exc)
            self.publish_status()
            raise CommandError(
                f"{what}, but the state could not be saved to {self.store.path} ({exc}); "
                "check the free space and permissions of state.dir"
            ) from None

    @COMMANDS.handler("sample")
    def _sample(self, command: Command) -> dict[str, Any]:
        class_name = self._known_class(command.payload.class_name)
        given = command.payload.image
        image: np.ndarray = given if given is not None else self._current_frame().image
        sample_id = self.model.add_sample(image, class_name)
        self._imprint_if_untrained()
        self._save_or_fail("the sample was taken")
        count = int(self.model.samples()[class_name])
        log.info(
            "sample %d of class %s from %s (%d of that class)",
            sample_id,
            class_name,
            command.source,
            count,
        )
        self.events.sample(SampleEvent(class_name, count, command.source, time.time()))
        self.publish_status()
        return {"class": class_name, "count": count, "sample_id": sample_id}

    @COMMANDS.handler("train")
    def _train(self, command: Command) -> dict[str, Any]:
        if command.payload.action == "start":
            self._imprint_if_untrained()
            self.trainer.start()
            return {"state": "training"}  # even if a short cycle already ended meanwhile
        self.trainer.stop(save=True)
        return {"state": "idle"}

    @COMMANDS.handler("classify")
    def _classify(self, command: Command) -> dict[str, Any]:
        predictions = self.model.predict(command.payload.image)
        top = predictions[0]
        return {
            "class": top.class_name,
            "confidence": float(top.confidence),
            "scores": scores_of(predictions),
        }

    @COMMANDS.handler("reset")
    def _reset(self, command: Command) -> dict[str, Any]:
        class_name = command.payload.class_name
        if class_name is None:
            self.trainer.stop(save=False)
            removed = self.model.clear()
            with self._smoother_lock:
                self._smoother.reset()
            log.info("reset: every sample (%d) and the parameters were cleared", removed)
        else:
            removed = self.model.clear(self._known_class(class_name))
            if sum(self.model.samples().values()) == 0:
                self.trainer.stop(save=False)
            self._imprint_if_untrained()
            log.info("reset: %d sample(s) of class %s cleared", removed, class_name)
        self._save_or_fail("the samples were cleared")
        self.publish_status()
        return {"removed": removed, "samples": dict(self.model.samples())}

    @COMMANDS.handler("save")
    def _save(self, command: Command) -> dict[str, Any]:
        size = self._save_or_fail("nothing changed")
        return {"path": str(self.store.path), "bytes": size}
