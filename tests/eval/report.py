"""The evaluation's settings (cells), how their trials are summarised, and the printed tables.

Every cell is run for every bundle kind, every photo source and both methods, on the same
trials (same seeds), so the baseline and the new method see exactly the same samples and
frames. A figure is the mean over a source's trials; a bundle kind's figure is the mean over the
sources (each source counts the same), and "worst" is its worst source. The targets table also
gives the worst single sample set (trial).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tests.eval import protocol
from tests.eval.embeddings import BundleKind, Embedded
from tests.eval.shots import CONDITIONS
from tests.eval.sources import Source

SHOTS = (1, 3, 5, 10, 20)
CLASSES = 4  # taught classes in every table but the one that varies it
TARGET_SHOTS = 5
# The figures of a trial (protocol.py's keys) and their column names.
METRICS = (("right", "taught right"), ("unknown", "untaught -> unknown"), ("auroc", "AUROC"))
TARGET_TAUGHT, TARGET_UNKNOWN, TARGET_STILL = 0.95, 0.90, 0.95


@dataclass(frozen=True)
class Cell:
    """One setting: how many classes and shots of which kind, and which frames are shown."""

    table: str
    label: str
    classes: int
    shots: int
    samples: str  # "varied" or "still"
    frames: str  # the held-out set shown (taught and untaught objects alike)
    identical: bool = False  # every sample the very same frame (a replayed photo)


def cells() -> list[Cell]:
    """Every setting of the evaluation, grouped by table."""
    made = [Cell("shots", f"{n} shots", CLASSES, n, "varied", "held_out") for n in SHOTS]
    made += [
        Cell("classes", f"{k} classes", k, TARGET_SHOTS, "varied", "held_out")
        for k in (2, 4, 8, 16)
    ]
    made += [
        Cell("still", f"{n} still shots", CLASSES, n, "still", "still_held_out") for n in (1, 5, 10)
    ]
    made.append(
        Cell("still", "5 identical shots", CLASSES, 5, "still", "still_held_out", identical=True)
    )
    made.append(Cell("still", "5 still shots, moved", CLASSES, 5, "still", "held_out"))
    made += [
        Cell("conditions", name, CLASSES, TARGET_SHOTS, "varied", f"condition/{name}")
        for name in CONDITIONS
    ]
    return made


@dataclass
class Figures:
    """The trials of one (bundle, source, cell, method): one row per trial."""

    right: list[float]
    unknown: list[float]
    auroc: list[float]


def run_cell(
    data: Embedded, cell: Cell, methods: Sequence[protocol.Method], trials: int, seed: int
) -> dict[str, Figures] | None:
    """Run ``trials`` trials of ``cell`` on one source's bottlenecks for each method (None
    when the source has too few objects: two must stay untaught)."""
    objects = data.sets["varied"].shape[0]
    if objects < cell.classes + 2:
        return None
    rng = np.random.default_rng(seed)
    available = data.sets[cell.samples].shape[1]
    drawn = [
        protocol.draw(
            objects, cell.classes, cell.shots, cell.samples, available, rng, cell.identical
        )
        for _ in range(trials)
    ]
    result = {}
    for method in methods:
        figures = Figures([], [], [])
        for trial in drawn:
            outcome = protocol.run(data, trial, method, cell.frames)
            figures.right.append(float(outcome.taught_right.mean()))
            figures.unknown.append(float(outcome.untaught_unknown.mean()))
            figures.auroc.append(outcome.auroc)
        result[method.name] = figures
    return result


Results = dict[tuple[str, str, str], dict[str, Figures]]  # (bundle, source, cell) -> by method


def summary(
    results: Results, bundle: str, cell: Cell, method: str, metric: str, sources: Sequence[str]
) -> tuple[float, float, float, int]:
    """(mean over sources, worst source, worst trial, sources) of one figure."""
    per_source = []
    trials = []
    for source in sources:
        found = results.get((bundle, source, cell.label))
        if found is None:
            continue
        values = np.asarray(getattr(found[method], metric), dtype=np.float64)
        values = values[np.isfinite(values)]
        if not len(values):
            continue
        per_source.append(values.mean())
        trials.extend(values.tolist())
    if not per_source:
        return float("nan"), float("nan"), float("nan"), 0
    return float(np.mean(per_source)), min(per_source), min(trials), len(per_source)


def _pair(mean: float, worst: float) -> str:
    return f"{mean:.2f} ({worst:.2f})"


def _header(first: Sequence[str], methods: Sequence[str], out: Callable[[str], None]) -> None:
    """A Markdown table's head: the ``first`` columns, then each metric per method."""
    heads = [*first, *(f"{words}: {m}" for _, words in METRICS for m in methods)]
    out("| " + " | ".join(heads) + " |")
    out("|" + "---|" * len(heads))


def table(
    results: Results,
    bundles: Sequence[BundleKind],
    chosen: Sequence[Cell],
    methods: Sequence[str],
    sources: Sequence[str],
    title: str,
    out: Callable[[str], None] = print,
) -> None:
    """A Markdown table: per bundle and cell, each method's mean (worst source) figures."""
    out(f"\n### {title}\n")
    _header(["bundle", "setting"], methods, out)
    for kind in bundles:
        for cell in chosen:
            row = [kind.label, cell.label]
            for metric, _ in METRICS:
                for method in methods:
                    mean, worst, _, n = summary(results, kind.label, cell, method, metric, sources)
                    row.append(_pair(mean, worst) if n else "-")
            out("| " + " | ".join(row) + " |")


def by_source(
    results: Results,
    bundles: Sequence[BundleKind],
    cell: Cell,
    methods: Sequence[str],
    sources: Sequence[Source],
    out: Callable[[str], None] = print,
) -> None:
    """One cell per bundle and source, saying which sources chose the parameters."""
    out(f"\n### {cell.label}, {cell.classes} classes, per source (mean (worst sample set))\n")
    _header(["bundle", "source"], methods, out)
    for kind in bundles:
        for source in sources:
            role = "tuning" if source.tuning else "eval only"
            row = [kind.label, f"{source.name} ({role})"]
            for metric, _ in METRICS:
                for method in methods:
                    mean, _, worst_trial, n = summary(
                        results, kind.label, cell, method, metric, [source.name]
                    )
                    row.append(_pair(mean, worst_trial) if n else "-")
            out("| " + " | ".join(row) + " |")


def targets(
    results: Results,
    bundles: Sequence[BundleKind],
    methods: Sequence[str],
    sources: Sequence[str],
    out: Callable[[str], None] = print,
) -> bool:
    """The issue's targets per bundle kind and method (mean / worst source / worst sample set);
    returns whether the last method met them all on average."""
    by_label = {cell.label: cell for cell in cells()}
    varied = by_label[f"{TARGET_SHOTS} shots"]
    still = by_label[f"{TARGET_SHOTS} still shots"]
    identical = by_label[f"{TARGET_SHOTS} identical shots"]
    checks = (
        (varied, "right", TARGET_TAUGHT, f"taught right, {TARGET_SHOTS} varied shots"),
        (varied, "unknown", TARGET_UNKNOWN, f"untaught -> unknown, {TARGET_SHOTS} varied shots"),
        (still, "right", TARGET_STILL, f"taught right, {TARGET_SHOTS} still shots"),
        (identical, "right", TARGET_STILL, f"taught right, {TARGET_SHOTS} identical shots"),
    )
    out("\n### Targets (mean over sources / worst source / worst sample set)\n")
    out("| bundle | target | " + " | ".join(methods) + " |")
    out("|" + "---|" * (2 + len(methods)))
    met = True
    for kind in bundles:
        for cell, metric, goal, words in checks:
            row = [kind.label, f"{words} >= {goal:.2f}"]
            for method in methods:
                mean, worst, worst_trial, n = summary(
                    results, kind.label, cell, method, metric, sources
                )
                verdict = "ok" if mean >= goal else "MISSED"
                row.append(f"{mean:.2f} / {worst:.2f} / {worst_trial:.2f} {verdict}")
                if method == methods[-1] and not mean >= goal:
                    met = False
            out("| " + " | ".join(row) + " |")
    return met
