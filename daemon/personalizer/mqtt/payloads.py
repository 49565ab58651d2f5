"""MQTT API v1 payloads: events to JSON bytes, field names exactly as documented; pictures to
JPEG bytes of a bounded size."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from ..events import LossEvent, MetricsReport, PredictionEvent, SampleEvent, StatusReport
from ..images import bounded_jpeg

# The pictures (<root>/picture/...): at most this many pixels square, this JPEG quality, and
# never more bytes than this (retained messages stay small on the broker and in Home Assistant).
PICTURE_SIDE = 224
PICTURE_QUALITY = 80
PICTURE_MAX_BYTES = 32 * 1024


def _dumps(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def status_payload(report: StatusReport) -> bytes:
    """`<root>/status`."""
    return _dumps(
        {
            "state": report.state,
            "classes": list(report.classes),
            "samples": dict(report.samples),
            "bundle": report.bundle,
            "version": report.version,
            "camera": {
                "source": report.camera.source,
                "ok": report.camera.ok,
                "error": report.camera.error,
                "starting": report.camera.starting,
            },
            "warnings": list(report.warnings),
            "capacity": report.capacity,
            "progress": report.progress,
            "last_loss": None if report.last_loss is None else _finite(report.last_loss),
            "needs_training": report.needs_training,
            "last_cycle": None if report.last_cycle is None else dict(report.last_cycle),
            "region": None if report.region is None else list(report.region),
            "variety": {name: dict(v) for name, v in report.variety.items()},
            "review_pending": report.review_pending,
            **({} if report.fleet is None else {"fleet": dict(report.fleet)}),
        }
    )


def prediction_payload(event: PredictionEvent) -> bytes:
    """`<root>/prediction`."""
    return _dumps(
        {
            "class": event.class_name,
            "confidence": round(float(event.confidence), 6),
            "scores": {name: round(float(p), 6) for name, p in event.scores.items()},
            "ts": round(event.ts, 6),
            "frame": event.frame,
            "known": event.known,
            "closest": event.closest,
        }
    )


def class_change_payload(event: PredictionEvent) -> bytes:
    """`<root>/class_change`: the newly announced class, the one before, and its confidence."""
    return _dumps(
        {
            "class": event.class_name,
            "previous": event.previous,
            "known": event.known,
            "confidence": round(float(event.confidence), 6),
            "ts": round(event.ts, 6),
            "frame": event.frame,
        }
    )


def picture_payload(view: np.ndarray) -> bytes:
    """`<root>/picture/...`: a JPEG of the model's view (PICTURE_SIDE, PICTURE_QUALITY, at most
    PICTURE_MAX_BYTES)."""
    return bounded_jpeg(view, PICTURE_SIDE, PICTURE_QUALITY, PICTURE_MAX_BYTES)


def loss_payload(event: LossEvent) -> bytes:
    """`<root>/loss` (a NaN loss is sent as null)."""
    return _dumps(
        {
            "loss": _finite(event.loss),
            "epoch": event.epoch,
            "samples": event.samples,
            "ts": round(event.ts, 6),
        }
    )


def sample_payload(event: SampleEvent) -> bytes:
    """`<root>/sample`."""
    return _dumps(
        {
            "class": event.class_name,
            "count": event.count,
            "source": event.source,
            "ts": round(event.ts, 6),
            "similar_to": event.similar_to,
            "hint": event.hint,
        }
    )


def metrics_payload(report: MetricsReport) -> bytes:
    """`<root>/metrics`."""

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(float(value), 6)

    return _dumps(
        {
            "accuracy": rounded(report.accuracy),
            "recall": {name: rounded(r) for name, r in report.recall.items()},
            "confusion": {t: dict(row) for t, row in report.confusion.items()},
            "unknown_rate": rounded(report.unknown_rate),
            "samples": report.samples,
            "method": report.method,
            "seconds": round(report.seconds, 3),
            "ts": round(report.ts, 6),
            "stale": report.stale,
        }
    )


def result_payload(result: dict[str, Any]) -> bytes:
    """`<root>/cmd/<name>/result`: `ok`, `error` when not ok, `request_id`, the result fields."""
    return _dumps(result)
