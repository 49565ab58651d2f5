"""What each camera frame becomes: the model's classification, smoothed, as a prediction event.

Data path, in two steps: :meth:`FrameClassifier.embed` (the region of the frame -> the base
model -> its bottleneck) and :meth:`FrameClassifier.finish` (the head, the open-set test ->
smoothing (inference/smoothing.py) -> ``prediction`` event -> the review keeper). The service
runs the two in two threads, so the second step of one frame runs while the base model works on
the next one (the base model's invoke lets go of the GIL): the Python around a frame then costs
no frame rate on a board with two cores or more. :meth:`FrameClassifier.classify` does both in
one go. A command may :meth:`FrameClassifier.reset` the smoothing from another thread, so the
smoother is used under a lock of its own (the innermost). When the announced class changes
(rarely: smoothing holds it), the event also carries the class before and the square of the frame
(or of its region) the model saw, for a picture; no other frame costs more.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..camera import Frame
from ..config import InferenceConfig
from ..events import EventSink, PredictionEvent
from ..inference import PredictionSmoother
from ..model import Classification, TransferLearningModel
from ..model.region import Region

VIEW_SIZE = 224  # the model's view kept with a class change is at least this many pixels square


@dataclass(frozen=True)
class Embedded:
    """A frame after the base model: the frame, what the model saw of it, its bottleneck."""

    frame: Frame
    image: np.ndarray = field(repr=False)
    bottleneck: np.ndarray = field(repr=False)


class FrameClassifier:
    """Classifies camera frames and announces the smoothed predictions."""

    def __init__(
        self,
        model: TransferLearningModel,
        config: InferenceConfig,
        events: EventSink,
        consider: Callable[[np.ndarray, Classification], None] | None = None,
    ) -> None:
        """Classifies with ``model``, smooths as ``config`` says, announces to ``events``;
        ``consider(image, result)`` sees every result (the review keeper)."""
        self._model = model
        self._events = events
        self._consider = consider
        self.unknown_label = config.unknown_label
        self._smoother = PredictionSmoother(
            config.agree_frames, config.min_confidence, config.publish_interval
        )
        self._lock = threading.Lock()
        self.region: Region | None = None  # replaced, never changed in place (any thread)

    def view(self, image: np.ndarray) -> np.ndarray:
        """What the model sees of a camera frame: the region, or the whole frame."""
        region = self.region
        return image if region is None else region.apply(image)

    def embed(self, frame: Frame) -> Embedded:
        """The first step: what the model sees of ``frame``, through the base model."""
        image = self.view(frame.image)
        return Embedded(frame, image, self._model.bottleneck(image))

    def finish(self, embedded: Embedded) -> PredictionEvent | None:
        """The second step: classify an embedded frame; publish and return the smoothed
        prediction when one is due."""
        # The open-set test as last measured: the thread that changed the samples measures it
        # again (Engine.samples_changed), so a frame never waits for the database.
        frame, image = embedded.frame, embedded.image
        result = self._model.classify_bottleneck(
            embedded.bottleneck, self.unknown_label, current=False
        )
        event = self._announce(frame, image, result)
        if self._consider is not None:  # after the prediction: it never holds one up
            self._consider(image, result)
        return event

    def classify(self, frame: Frame) -> PredictionEvent | None:
        """Both steps for one frame (see the module doc)."""
        return self.finish(self.embed(frame))

    def _announce(
        self, frame: Frame, image: np.ndarray, result: Classification
    ) -> PredictionEvent | None:
        with self._lock:
            before = self._smoother.accepted
            smoothed = self._smoother.update(
                result.scores, time.monotonic(), result.class_name, result.confidence, result.known
            )
        if smoothed is None:
            return None
        view = None
        if smoothed.changed:
            view = self._model.crop(image, VIEW_SIZE)
            if view is not None:
                view.setflags(write=False)  # handed to other threads' sinks
        event = PredictionEvent(
            smoothed.class_name,
            smoothed.confidence,
            smoothed.scores,
            frame.captured,
            frame.number,
            smoothed.known,
            result.closest,
            changed=smoothed.changed,
            previous=before if smoothed.changed else None,
            view=view,
        )
        self._events.prediction(event)
        return event

    def reset(self) -> None:
        """Forget the smoothing's history (after the model was reset or reloaded)."""
        with self._lock:
            self._smoother.reset()
