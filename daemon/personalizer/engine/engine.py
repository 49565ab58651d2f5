"""The engine: what commands and frames do to the model, the state and the trainer.

Plain and synchronous: it creates no thread. The service (service/) calls it from its threads:
the frame loop (:attr:`Engine.frames`), the trainer loop (:attr:`Engine.trainer`) and the command
worker (:meth:`Engine.execute`, which runs the command's handler from handlers/). It owns the
parts that say what happened (:attr:`Engine.status`) and the rules that span several parts:
an untrained head is imprinted from the samples after each change, every command changes the
database first and the model after (what was acknowledged is on disk), and a command's error
becomes a refusal with a reason.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ..camera import Frame, LatestFrame
from ..commands import Command, CommandError
from ..config import Config
from ..errors import (
    ClassListError,
    DamagedSampleError,
    ImageFormatError,
    NoSamplesError,
    NotImprintableError,
    PersonalizerError,
    UnknownClassError,
)
from ..events import EventSink, LossEvent, MetricsReport, SampleEvent
from ..model import TransferLearningModel
from ..model.evaluation import Evaluation
from ..model.pooled import NEAR_DUPLICATE
from ..model.region import Region
from ..store import REGION, StateStore
from ..trainer.trainer import Trainer
from .changes import ChangeListeners, SampleTaken
from .frames import FrameClassifier
from .handlers import HANDLERS
from .metrics import empty_report, metrics_report
from .review import ReviewKeeper
from .status import StatusBoard, StatusSources

log = logging.getLogger(__name__)

REFUSALS = (ImageFormatError, NoSamplesError, UnknownClassError, ClassListError)


class Engine:
    """Commands, frames and status of one daemon, around one runtime model."""

    def __init__(
        self,
        model: TransferLearningModel,
        config: Config,
        store: StateStore,
        frames: LatestFrame,
        events: EventSink,
        version: str,
        camera_source: str,
        frame_age_limit: float,
    ) -> None:
        """Builds the trainer, the status board and the frame classifier around ``model``."""
        self.model = model
        self.config = config
        self.store = store
        self.latest = frames
        self.events = events
        self.frame_age_limit = frame_age_limit  # older "current" frames: the camera is stuck
        self.trainer = Trainer(
            model, store, config.training, self._loss, self._training_changed, self._cycle_ended
        )
        trainer = self.trainer
        sources = StatusSources(
            model,
            store,
            lambda: trainer.training,
            lambda: trainer.last_cycle,
            lambda: None if self.frames.region is None else self.frames.region.as_list(),
            lambda: self.review.pending,
            model.bundle_id,
            version,
        )
        self.status = StatusBoard(sources, events, camera_source)
        self.review = ReviewKeeper(model, store, self._review_changed, defer=lambda work: work())
        self.frames = FrameClassifier(model, config.inference, events, self.review.consider)
        self.changes = ChangeListeners()  # who follows what is taught here (the fleet)
        self._imprint = config.training.imprint
        self._evaluation: Evaluation | None = None  # the last estimate, by slot
        self._stale = False  # the samples changed since that estimate
        self._announced: tuple[Any, ...] | None = None  # what the metrics last said

    # --- what the trainer reports ---------------------------------------------------------------

    def _loss(self, event: LossEvent) -> None:
        self.status.loss(event.loss)
        self.events.loss(event)

    def _review_changed(self) -> None:
        self.status.publish()

    def _training_changed(self) -> None:
        self.status.publish()

    def _cycle_ended(self) -> None:
        self.evaluate_and_publish()

    # --- rules that span the parts --------------------------------------------------------------

    def after_load(self) -> None:
        """After the state was (re)loaded: an untrained head is imprinted, the open-set test
        is measured, smoothing restarts, and the kept frames, the last training cycle and the
        region are taken from the state."""
        self.imprint_if_untrained()
        self.model.open_set()
        self.frames.reset()
        self.review.load()
        self.trainer.load()
        if self.trainer.last_cycle is not None:
            self.status.loss(self.trainer.last_cycle.loss)  # until the next epoch's
        region = self.store.kept(REGION)
        self.frames.region = Region.parse(region) if region else None

    def imprint_if_untrained(self) -> bool:
        """While the head was never trained, set it from the class means (useful at once)."""
        model = self.model
        if not self._imprint or model.steps != 0 or self.trainer.training:
            return False
        if sum(model.samples().values()) == 0:
            return False
        try:
            model.initialize_from_samples()
        except NotImprintableError as exc:
            log.info("imprinting is off: %s", exc)
            self._imprint = False
            return False
        return True

    def samples_changed(self) -> None:
        """After samples came, went or moved: re-imprint an untrained head, measure the open-set
        test again here (not in the frame thread), stop training when nothing is left, and
        mark the last metrics out of date."""
        self.imprint_if_untrained()
        if sum(self.model.samples().values()) == 0:
            self.trainer.stop(save=False, reason="no samples")
        self.model.open_set()
        self.metrics_changed()

    def metrics_changed(self, samples: bool = True) -> None:
        """Announce the last metrics again with the current classes (a removed class gone, a
        renamed one under its new name), marked stale once ``samples`` changed since they were
        estimated; with no samples left, empty ones. Only what changes is announced (a second
        sample after the first one made them stale says nothing new)."""
        self._stale = self._stale or samples
        slots = self.model.class_slots()
        empty = not sum(self.model.samples().values())
        if empty:
            self._evaluation = None
        key = (empty, self._stale, tuple(slots.items()))
        if key == self._announced or (self._evaluation is None and not empty):
            return
        self._announced = key
        if empty:
            self.events.metrics(empty_report())
        else:
            assert self._evaluation is not None
            label = self.config.inference.unknown_label
            self.events.metrics(metrics_report(self._evaluation, slots, label, self._stale))

    def add_sample(
        self,
        class_name: str,
        bottleneck: Any,
        jpeg: bytes | None,
        source: str,
        view: Any = None,
    ) -> dict[str, Any]:
        """Store a sample (on disk first, then in the model) and tell everyone; the result
        says its id, the class's count, and whether it nearly repeats an earlier sample.
        ``view`` (the square the model saw, when there is one) goes with the sample event."""
        model = self.model
        slot = model.class_registry.slot_of(class_name)
        created = time.time()
        sample_id = self.store.add_sample(slot, bottleneck, source, created, jpeg)
        model.add_sample_bottleneck(bottleneck, class_name, sample_id)
        self.samples_changed()
        count = int(model.samples()[class_name])
        result: dict[str, Any] = {"class": class_name, "count": count, "sample_id": sample_id}
        nearest = model.nearest_sample(bottleneck, class_name, besides=sample_id)
        similar, hint = None, None
        if nearest is not None and nearest[1] >= NEAR_DUPLICATE:
            similar = nearest[0]
            hint = f"very like sample #{similar}: move it or change the light"
            result.update(similar_to=similar, hint=hint)
        log.info(
            "sample %d of class %s from %s (%d of that class)%s",
            sample_id,
            class_name,
            source,
            count,
            f"; {hint}" if hint else "",
        )
        self.changes.emit(SampleTaken(sample_id, class_name, source, created, jpeg))
        self.events.sample(SampleEvent(class_name, count, source, created, similar, hint, view))
        self.status.publish()
        return result

    def set_aside_damaged(self) -> None:
        """Move damaged rows found by any thread off the disk, and name them in the status."""
        for warning in self.store.set_aside_damaged():
            self.status.warn(warning)

    # --- commands -------------------------------------------------------------------------------

    def execute(self, command: Command) -> dict[str, Any]:
        """Carry out a command (its handler in handlers/); returns its result fields, or
        raises CommandError with the reason."""
        handler = HANDLERS[command.name]
        try:
            return handler(self, command)
        except REFUSALS as exc:
            raise CommandError(str(exc), command.request_id) from None
        except DamagedSampleError as exc:
            self.set_aside_damaged()
            raise CommandError(str(exc), command.request_id) from None
        except OSError as exc:  # a write of the state failed: nothing was changed
            log.error("%s", exc)
            self.status.publish()
            raise CommandError(
                f"nothing was changed: the state could not be written ({exc})",
                command.request_id,
            ) from None
        except CommandError as exc:
            exc.request_id = command.request_id
            raise

    def set_region(self, region: Region | None) -> None:
        """Look at ``region`` of the frame from now on (None: the whole frame); kept in the
        state first."""
        self.store.keep(REGION, None if region is None else region.as_list(), "storing the region")
        self.frames.region = region
        self.frames.reset()

    def current_frame(self) -> Frame:
        """The newest camera frame, or CommandError saying why there is none to use."""
        frame = self.latest.latest()
        camera = self.status.camera
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

    def save_or_fail(self, what: str) -> int:
        """Save the head now; CommandError (starting with ``what``) when that fails."""
        try:
            return self.store.save(self.model)
        except (OSError, PersonalizerError) as exc:
            log.error("saving the state failed: %s", exc)
            self.status.publish()
            raise CommandError(
                f"{what}, but the state could not be saved to {self.store.path} ({exc}); "
                "check the free space and permissions of state.dir"
            ) from None

    # --- metrics --------------------------------------------------------------------------------

    def evaluate_and_publish(self) -> MetricsReport:
        """Cross-validate the board's head on its samples and publish the result (retained)."""
        evaluation = self.model.evaluate()
        self._evaluation, self._stale = evaluation, False
        self._announced = (False, False, tuple(self.model.class_slots().items()))
        report = metrics_report(
            evaluation, self.model.class_slots(), self.config.inference.unknown_label
        )
        log.info(
            "validation: accuracy %s on %d held-out sample(s) (%s, %.2f s)",
            "n/a" if report.accuracy is None else f"{report.accuracy:.3f}",
            report.samples,
            report.method,
            report.seconds,
        )
        self.events.metrics(report)
        return report
