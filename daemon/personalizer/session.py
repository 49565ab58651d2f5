"""The running personalization: what each command does, what each frame becomes, the status.

Plain and synchronous: it creates no thread. `service.py` calls it from its threads (frame
loop, trainer, command worker); the runtime model is safe to use from several threads, and the
few mutable things kept here are guarded by locks.

Data path of a frame: `classify_frame` -> model.classify (head + open-set test) -> smoothing ->
`prediction` event.
Data path of a sample: the `sample` command -> model.embed (bottleneck + the crop it saw) ->
one INSERT in the state database (durable) -> model.add_sample_bottleneck -> `sample` event ->
status. Every command changes the database first and the model after, so what was
acknowledged is on disk.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from typing import Any

import numpy as np

from .camera import Frame, LatestFrame
from .commands import COMMANDS, Command, CommandError
from .config import Config
from .errors import (
    ClassListError,
    ImageFormatError,
    NoSamplesError,
    NotImprintableError,
    PersonalizerError,
    UnknownClassError,
)
from .events import (
    CameraStatus,
    EventSink,
    LossEvent,
    MetricsReport,
    PredictionEvent,
    SampleEvent,
    StatusReport,
)
from .images import encode_image
from .inference import PredictionSmoother
from .model import TransferLearningModel
from .store import StateStore
from .trainer import Trainer

log = logging.getLogger(__name__)

CROP_SIZE = 224  # stored crops are at least this big, so a larger model can use them too
CROP_QUALITY = 90
RETRAIN = "the samples changed since the head was trained: train again (cmd/train)"


class Session:
    """Commands, frames and status of one daemon, around one runtime model."""

    def __init__(
        self,
        model: TransferLearningModel,
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
        self.config = config
        self.store = store
        self.frames = frames
        self.events = events
        self.bundle_id = bundle_id
        self.version = version
        self.unknown_label = config.inference.unknown_label
        self.trainer = Trainer(
            model,
            store,
            config.training,
            self._loss,
            self.publish_status,
            on_cycle_end=self.evaluate_and_publish,
        )
        self._imprint = config.training.imprint
        inference = config.inference
        self._smoother = PredictionSmoother(
            inference.agree_frames, inference.min_confidence, inference.publish_interval
        )
        self._smoother_lock = threading.Lock()
        self._status_lock = threading.Lock()
        self._camera = CameraStatus(camera_source, ok=False, error="not started yet")
        self._warnings: list[str] = []
        self._progress: str | None = None
        self._retrain = False  # the samples changed after the head was trained
        self._last_loss: float | None = None
        self.frame_age_limit = frame_age_limit  # older "current" frames: the camera is stuck

    # --- status -----------------------------------------------------------------------------

    @property
    def classes(self) -> tuple[str, ...]:
        """The active classes, in slot order."""
        return self.model.classes

    def status_report(self) -> StatusReport:
        """The current status."""
        warnings = list(self._warnings)
        if self._retrain:
            warnings.append(RETRAIN)
        if not self.store.store_images:
            warnings.append(
                "state.store_images is false: no crops are kept, so a new bundle needs new samples"
            )
        # A failed write is a warning only until a write works again.
        warnings += [e for e in (self.store.error, self.store.write_error) if e]
        return StatusReport(
            state="training" if self.trainer.training else "idle",
            classes=self.classes,
            samples=dict(self.model.samples()),
            bundle=self.bundle_id,
            version=self.version,
            camera=self._camera,
            warnings=tuple(warnings),
            capacity=self.model.capacity,
            last_loss=self._last_loss,
            class_slots=self.model.class_slots(),
            progress=self._progress,
        )

    def publish_status(self) -> None:
        """Announce the current status (built and sent in one step, so none goes stale)."""
        with self._status_lock:
            self.events.status(self.status_report())

    def warn(self, message: str) -> None:
        """Add a lasting warning to the status (e.g. a state file that was set aside)."""
        self._warnings.append(message)
        self.publish_status()

    def progress(self, text: str | None) -> None:
        """Show (or, with None, end) a long job's progress in the status."""
        self._progress = text
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

    def _loss(self, event: LossEvent) -> None:
        self._last_loss = event.loss
        self._retrain = False
        self.events.loss(event)

    def after_load(self) -> None:
        """After the state was loaded: an untrained head is imprinted from the samples."""
        self._imprint_if_untrained()
        with self._smoother_lock:
            self._smoother.reset()

    # --- frames -----------------------------------------------------------------------------

    def classify_frame(self, frame: Frame) -> PredictionEvent | None:
        """Classify one camera frame and publish the smoothed prediction when one is due."""
        result = self.model.classify(frame.image, self.unknown_label)
        with self._smoother_lock:
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
        except (ImageFormatError, NoSamplesError, UnknownClassError, ClassListError) as exc:
            raise CommandError(str(exc), command.request_id) from None
        except OSError as exc:  # a write of the state failed: nothing was changed
            log.error("%s", exc)
            self.publish_status()
            raise CommandError(
                f"nothing was changed: the state could not be written ({exc})",
                command.request_id,
            ) from None
        except CommandError as exc:
            exc.request_id = command.request_id
            raise

    def _slot(self, name: str) -> int:
        for slot, known in self.model.class_slots().items():
            if known == name:
                return slot
        raise CommandError(
            f'unknown class "{name}"; the classes are {", ".join(self.classes) or "(none)"}'
        )

    def _imprint_if_untrained(self) -> bool:
        """While the head was never trained, set it from the class means (useful at once)."""
        if not self._imprint or self.model.steps != 0 or self.trainer.training:
            return False
        if sum(self.model.samples().values()) == 0:
            return False
        try:
            self.model.initialize_from_samples()
        except NotImprintableError as exc:
            log.info("imprinting is off: %s", exc)
            self._imprint = False
            return False
        return True

    def samples_changed(self) -> None:
        """Samples came in from elsewhere (an import): re-imprint, or ask for training."""
        self._samples_changed()

    def _samples_changed(self) -> None:
        """After samples were deleted or relabelled: re-imprint, or ask for training."""
        if not self._imprint_if_untrained() and self.model.steps:
            self._retrain = True

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

    def _counts(self) -> dict[str, int]:
        return dict(self.model.samples())

    @COMMANDS.handler("sample")
    def _sample(self, command: Command) -> dict[str, Any]:
        class_name = command.payload.class_name
        slot = self._slot(class_name)
        given = command.payload.image
        image: np.ndarray = given if given is not None else self._current_frame().image
        bottleneck, crop = self.model.embed(image, CROP_SIZE)
        jpeg = None
        if crop is not None and self.store.store_images:
            jpeg = encode_image(crop, "JPEG", CROP_QUALITY)
        created = time.time()
        sample_id = self.store.add_sample(slot, bottleneck, command.source, created, jpeg)
        self.model.add_sample_bottleneck(bottleneck, class_name, sample_id)
        if not self._imprint_if_untrained() and self.model.steps:
            self._retrain = True
        count = int(self.model.samples()[class_name])
        log.info(
            "sample %d of class %s from %s (%d of that class)",
            sample_id,
            class_name,
            command.source,
            count,
        )
        self.events.sample(SampleEvent(class_name, count, command.source, created))
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
        result = self.model.classify(command.payload.image, self.unknown_label)
        return {
            "class": result.class_name,
            "confidence": float(result.confidence),
            "scores": dict(result.scores),
            "known": result.known,
        }

    @COMMANDS.handler("reset")
    def _reset(self, command: Command) -> dict[str, Any]:
        class_name = command.payload.class_name
        if class_name is None:
            self.trainer.stop(save=False)
            removed = self.store.delete_samples(None)
            self.store.clear_head()
            self.model.clear()
            self._retrain = False
            self._last_loss = None
            with self._smoother_lock:
                self._smoother.reset()
            log.info("reset: every sample (%d) and the parameters were cleared", removed)
        else:
            removed = self.store.delete_samples(self._slot(class_name))
            self.model.clear(class_name)
            if sum(self.model.samples().values()) == 0:
                self.trainer.stop(save=False)
            self._samples_changed()
            log.info("reset: %d sample(s) of class %s cleared", removed, class_name)
        self.publish_status()
        return {"removed": removed, "samples": self._counts()}

    @COMMANDS.handler("save")
    def _save(self, command: Command) -> dict[str, Any]:
        size = self._save_or_fail("nothing changed")
        return {"path": str(self.store.path), "bytes": size}

    @COMMANDS.handler("class")
    def _class(self, command: Command) -> dict[str, Any]:
        payload = command.payload
        if payload.add is not None:
            slots = self.model.class_slots()
            if payload.add in slots.values():
                raise CommandError(f'class "{payload.add}" exists already')
            self._check_free_slot()
            slot = min(s for s in range(self.model.capacity) if s not in slots)
            self.store.set_classes({**slots, slot: payload.add})
            self.model.add_class(payload.add)
            log.info("class %s added (slot %d)", payload.add, slot)
        elif payload.rename is not None:
            slot = self._slot(payload.rename)
            slots = self.model.class_slots()
            if payload.to in slots.values() and payload.to != payload.rename:
                raise CommandError(f'class "{payload.to}" exists already')
            self.store.set_classes({**slots, slot: payload.to})
            self.model.rename_class(payload.rename, payload.to)
            log.info("class %s renamed to %s", payload.rename, payload.to)
        else:
            slot = self._slot(payload.remove)
            removed = self.store.remove_class(slot)
            self.model.remove_class(payload.remove)
            if sum(self.model.samples().values()) == 0:
                self.trainer.stop(save=False)
            self._samples_changed()
            log.info("class %s removed with its %d sample(s)", payload.remove, removed)
        self.publish_status()
        return {"classes": list(self.classes), "capacity": self.model.capacity}

    def _check_free_slot(self) -> None:
        if len(self.model.class_slots()) >= self.model.capacity:
            raise CommandError(
                f"all {self.model.capacity} class slots of the bundle are in use "
                f"({', '.join(self.classes)}); remove a class first, or convert a bundle with "
                "a larger --num_classes"
            )

    @COMMANDS.handler("samples")
    def _samples(self, command: Command) -> dict[str, Any]:
        payload = command.payload
        slots = self.model.class_slots()
        slot = self._slot(payload.class_name) if payload.class_name is not None else None
        page, total = self.store.list_samples(slot, payload.offset, payload.limit)
        return {
            "samples": [
                {
                    "id": info.id,
                    "class": slots.get(info.slot),
                    "source": info.source,
                    "ts": round(info.created, 3),
                    "image": info.has_image,
                }
                for info in page
            ],
            "total": total,
            "offset": payload.offset,
            "limit": payload.limit,
            "counts": self._counts(),
        }

    def _existing(self, sample_id: int) -> str:
        name = self.model.sample_class(sample_id)
        if name is None:
            raise CommandError(f"there is no sample {sample_id}; cmd/samples lists them")
        return name

    @COMMANDS.handler("sample_delete")
    def _sample_delete(self, command: Command) -> dict[str, Any]:
        sample_id = command.payload.id
        name = self._existing(sample_id)
        self.store.delete_sample(sample_id)
        self.model.remove_sample(sample_id)
        self._samples_changed()
        log.info("sample %d of class %s deleted", sample_id, name)
        self.publish_status()
        return {"id": sample_id, "class": name, "samples": self._counts()}

    @COMMANDS.handler("relabel")
    def _relabel(self, command: Command) -> dict[str, Any]:
        sample_id, target = command.payload.id, command.payload.class_name
        slot = self._slot(target)
        old = self._existing(sample_id)
        if old != target:
            self.store.relabel(sample_id, slot)
            self.model.relabel_sample(sample_id, target)
            self._samples_changed()
            log.info("sample %d moved from %s to %s", sample_id, old, target)
            self.publish_status()
        return {"id": sample_id, "class": target, "from": old, "samples": self._counts()}

    @COMMANDS.handler("thumbnail")
    def _thumbnail(self, command: Command) -> dict[str, Any]:
        sample_id = command.payload.id
        name = self._existing(sample_id)
        jpeg = self.store.image(sample_id)
        if jpeg is None:
            raise CommandError(
                f"sample {sample_id} has no stored image (state.store_images was false, or it "
                "came from an older version)"
            )
        return {"id": sample_id, "class": name, "image": base64.b64encode(jpeg).decode("ascii")}

    @COMMANDS.handler("evaluate")
    def _evaluate(self, command: Command) -> dict[str, Any]:
        report = self.evaluate_and_publish()
        return {
            "accuracy": report.accuracy,
            "recall": dict(report.recall),
            "confusion": {k: dict(v) for k, v in report.confusion.items()},
            "unknown_rate": report.unknown_rate,
            "samples": report.samples,
            "method": report.method,
            "seconds": round(report.seconds, 3),
            "ts": report.ts,
        }

    # --- metrics ----------------------------------------------------------------------------

    def evaluate_and_publish(self) -> MetricsReport:
        """Cross-validate the board's head on its samples and publish the result (retained)."""
        evaluation = self.model.evaluate()
        slots = self.model.class_slots()

        def name(slot: int) -> str:
            return self.unknown_label if slot < 0 else slots.get(slot, f"slot {slot}")

        report = MetricsReport(
            accuracy=evaluation.accuracy,
            recall={name(s): r for s, r in evaluation.recall.items() if s in slots},
            confusion={
                name(t): {name(p): n for p, n in row.items()}
                for t, row in evaluation.confusion.items()
                if t in slots
            },
            unknown_rate=evaluation.unknown_rate,
            samples=evaluation.samples,
            method=evaluation.method,
            seconds=evaluation.seconds,
            ts=time.time(),
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
