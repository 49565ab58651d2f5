"""The bundles the evaluation runs on, and every shot's bottleneck in each, computed once.

Each photo is made once (shots.py) and embedded by every bundle with the board's own code
(``TransferLearningModel.bottleneck``: the same crop, scale and interpreter as a frame). The
bottlenecks are cached as float16 (what the sample store keeps) under
``build/eval/<bundle key>/<source>-<shots key>.npz``; the shots key hashes ``shots.VERSION``,
the objects and the number of shots, so changing any of them embeds again (a change to how
shots are made must bump ``shots.VERSION``).
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from personalizer import TransferLearningModel
from tests.eval import shots
from tests.eval.sources import SOURCES, PhotoObject, Source
from tests.support.bundles import REPO, BundleSpec, build_bundle

CACHE = REPO / "build" / "eval"
CAPACITY = 16  # class slots of the evaluation's bundles: the largest class count it teaches
_NAMES = tuple(f"c{i:02d}" for i in range(CAPACITY))


@dataclass(frozen=True)
class BundleKind:
    """One kind of bundle a maker may run: a label for the tables and how to convert it."""

    label: str
    spec: BundleSpec


def _pretrained(size: int, pooling: str, quantize: bool = False) -> BundleSpec:
    return BundleSpec(
        weights="pretrained",
        alpha=1.0,
        image_size=size,
        pooling=pooling,
        num_classes=CAPACITY,
        class_names=_NAMES,
        base_quantize=quantize,
    )


BUNDLES = (
    BundleKind("224 spatial 7x7", _pretrained(224, "none")),
    BundleKind("224 pooled", _pretrained(224, "avg")),
    BundleKind("160 spatial 5x5", _pretrained(160, "none")),
    BundleKind("224 spatial int8", _pretrained(224, "none", quantize=True)),
)

# How many shots of each object the evaluation makes (shot indices), by set. Samples come from
# "varied" and "still"; the held-out sets are never samples.
VARIED, HELD_OUT, STILL, STILL_HELD_OUT, CONDITION_FRAMES = 20, 8, 10, 4, 3
HELD_OUT_FIRST = 100  # held-out shots use indices from here: never the same shot as a sample
_SIZES = (VARIED, HELD_OUT, STILL, STILL_HELD_OUT, CONDITION_FRAMES, HELD_OUT_FIRST)


def _shot_sets() -> dict[str, Callable[[PhotoObject], list[np.ndarray]]]:
    sets: dict[str, Callable[[PhotoObject], list[np.ndarray]]] = {
        "varied": lambda o: [shots.varied(o, i) for i in range(VARIED)],
        "held_out": lambda o: [shots.varied(o, HELD_OUT_FIRST + i) for i in range(HELD_OUT)],
        "still": lambda o: [shots.still(o, i) for i in range(STILL)],
        "still_held_out": lambda o: [
            shots.still(o, HELD_OUT_FIRST + i) for i in range(STILL_HELD_OUT)
        ],
    }
    for name, condition in shots.CONDITIONS.items():
        sets[f"condition/{name}"] = lambda o, c=condition: [
            c(shots.varied(o, HELD_OUT_FIRST + i)) for i in range(CONDITION_FRAMES)
        ]
    return sets


def _shots_key(source: Source, objects: list[PhotoObject]) -> str:
    """What the cached bottlenecks of ``source`` depend on besides the bundle: the shots'
    version, the objects and how many shots of each set."""
    digest = hashlib.sha256(repr((shots.VERSION, [o.key for o in objects], _SIZES)).encode())
    return digest.hexdigest()[:12]


@dataclass
class Embedded:
    """One source's bottlenecks in one bundle: ``sets[name]`` is (objects, shots, *shape)."""

    source: Source
    objects: list[PhotoObject]
    sets: dict[str, np.ndarray]


def _path(kind: BundleKind, source: Source, objects: list[PhotoObject]) -> Path:
    return CACHE / kind.spec.key() / f"{source.name}-{_shots_key(source, objects)}.npz"


def embedded(
    kinds: Iterable[BundleKind] = BUNDLES,
    sources: Iterable[Source] = SOURCES,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> dict[tuple[str, str], Embedded]:
    """Every (bundle label, source name) -> its bottlenecks, embedding what is not cached."""
    kinds, sources = list(kinds), list(sources)
    result: dict[tuple[str, str], Embedded] = {}
    for source in sources:
        objects = source.objects()
        missing = [k for k in kinds if not _path(k, source, objects).is_file()]
        if missing:
            _embed(missing, source, objects, log)
        for kind in kinds:
            with np.load(_path(kind, source, objects)) as stored:
                sets = {name.replace("|", "/"): stored[name] for name in stored.files}
            result[(kind.label, source.name)] = Embedded(source, objects, sets)
    return result


def _embed(
    kinds: list[BundleKind],
    source: Source,
    objects: list[PhotoObject],
    log: Callable[[str], None],
) -> None:
    models = []
    for kind in kinds:
        started = time.monotonic()
        path = build_bundle(kind.spec)
        log(f"bundle {kind.label}: {path.name} ready in {time.monotonic() - started:.0f} s")
        models.append(TransferLearningModel(path, runtime="auto", seed=0))
    started = time.monotonic()
    collected: list[dict[str, list[np.ndarray]]] = [{} for _ in kinds]
    for number, obj in enumerate(objects, 1):
        for name, make in _shot_sets().items():
            images = make(obj)
            for model, sets in zip(models, collected, strict=True):
                rows = [model.bottleneck(image).astype(np.float16) for image in images]
                sets.setdefault(name, []).append(np.stack(rows))
        log(
            f"embedding {source.name}: {number}/{len(objects)} objects "
            f"({time.monotonic() - started:.0f} s)"
        )
    for kind, sets in zip(kinds, collected, strict=True):
        path = _path(kind, source, objects)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.npz")
        # npz member names cannot hold "/" portably: "|" stands for it on disk.
        np.savez(partial, **{k.replace("/", "|"): np.stack(v) for k, v in sets.items()})
        partial.rename(path)
