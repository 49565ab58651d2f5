"""What each camera frame becomes: the model's classification, smoothed, as a prediction event.

Data path: :meth:`FrameClassifier.classify` -> model.classify (base model, head, open-set test)
-> smoothing (inference/smoothing.py) -> ``prediction`` event. Only the frame thread calls
:meth:`FrameClassifier.classify`; a command may :meth:`FrameClassifier.reset` the smoothing
from another thread, so the smoother is used under a lock of its own (the innermost).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from ..camera import Frame
from ..config import InferenceConfig
from ..events import EventSink, PredictionEvent
from ..inference import PredictionSmoother
from ..model import Classification, TransferLearningModel
from ..model.region import Region


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

    def classify(self, frame: Frame) -> PredictionEvent | None:
        """Classify one frame; publish and return the smoothed prediction when one is due."""
        # The open-set test as last measured: the thread that changed the samples measures it
        # again (Engine.samples_changed), so a frame never waits for the database.
        image = self.view(frame.image)
        result = self._model.classify(image, self.unknown_label, current=False)
        event = self._announce(frame, result)
        if self._consider is not None:  # after the prediction: it never holds one up
            self._consider(image, result)
        return event

    def _announce(self, frame: Frame, result: Classification) -> PredictionEvent | None:
        with self._lock:
            smoothed = self._smoother.update(
                result.scores, time.monotonic(), result.class_name, result.confidence, result.known
            )
        if smoothed is None:
            return None
        event = PredictionEvent(
            smoothed.class_name,
            smoothed.confidence,
            smoothed.scores,
            frame.captured,
            frame.number,
            smoothed.known,
            result.closest,
        )
        self._events.prediction(event)
        return event

    def reset(self) -> None:
        """Forget the smoothing's history (after the model was reset or reloaded)."""
        with self._lock:
            self._smoother.reset()
