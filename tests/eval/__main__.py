"""``make eval``: does "unknown" hold on real photos the method was not tuned to?

Prints Markdown tables (docs/eval.md explains them): for each bundle kind and 1-20 shots per
class, taught accuracy, untaught -> unknown and the AUROC of the known/unknown score; more and
fewer classes; still (near-identical) and identical shots; camera conditions on held-out frames;
per photo source; and the issue's targets, for the board's method and the baseline it replaced,
on the same trials. Exit status 1 when the board's method misses a target on average.

The first run converts the bundles (about a minute each) and embeds every shot in each bundle
(about 15 minutes on 2 cores); both are cached under build/, and a cached run takes a few
minutes. ``--quick`` runs fewer trials, ``--sources``/``--bundles`` a subset.
"""

from __future__ import annotations

import argparse
import sys
import time

from tests.eval import cost, report
from tests.eval.embeddings import BUNDLES, embedded
from tests.eval.methods import BASELINE, CURRENT
from tests.eval.report import cells
from tests.eval.sources import SOURCES, MissingSource


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation and print its tables; 0 when the targets are met."""
    parser = argparse.ArgumentParser(prog="python -m tests.eval", description=__doc__)
    parser.add_argument("--trials", type=int, default=6, help="sample sets per setting and source")
    parser.add_argument("--quick", action="store_true", help="2 trials per setting")
    parser.add_argument("--sources", help="comma-separated subset of: " + ", ".join(
        s.name for s in SOURCES))  # fmt: skip
    parser.add_argument("--bundles", help="comma-separated indices into: " + ", ".join(
        f"{i}={b.label}" for i, b in enumerate(BUNDLES)))  # fmt: skip
    parser.add_argument("--no-cost", action="store_true", help="skip timing the per-frame cost")
    args = parser.parse_args(argv)
    trials = 2 if args.quick else args.trials
    sources = [s for s in SOURCES if not args.sources or s.name in args.sources.split(",")]
    bundles = [b for i, b in enumerate(BUNDLES) if not args.bundles or str(i) in args.bundles]
    started = time.monotonic()
    try:
        data = embedded(bundles, sources)
    except MissingSource as error:
        print(f"eval: {error}", file=sys.stderr)
        return 2
    print(f"bottlenecks ready in {time.monotonic() - started:.0f} s", file=sys.stderr)

    methods = (BASELINE, CURRENT)
    results: report.Results = {}
    for cell_number, cell in enumerate(cells()):
        for kind in bundles:
            for source in sources:
                found = report.run_cell(
                    data[(kind.label, source.name)], cell, methods, trials, seed=cell_number
                )
                if found is not None:
                    results[(kind.label, source.name, cell.label)] = found
    names = [m.name for m in methods]
    every = [s.name for s in sources]
    held_back = [s.name for s in sources if not s.tuning]
    print("# Open-set evaluation (`make eval`)\n")
    print(
        f"Sources: {', '.join(every)}; evaluation only (never used to choose parameters): "
        f"{', '.join(held_back) or 'none'}. {trials} sample sets per setting and source. "
        "Figures: mean over sources (worst source)."
    )
    by_table = {}
    for cell in cells():
        by_table.setdefault(cell.table, []).append(cell)
    titles = {
        "shots": f"Varied shots, {report.CLASSES} taught classes, held-out varied frames",
        "classes": f"Number of classes, {report.TARGET_SHOTS} varied shots each",
        "still": "Still and identical shots (a still object, a fixed camera), held-out still "
        "frames; 'moved': held-out varied frames",
        "conditions": f"Camera conditions on held-out frames, {report.TARGET_SHOTS} varied shots",
    }
    for name, chosen in by_table.items():
        report.table(results, bundles, chosen, names, every, titles[name])
    five = next(c for c in cells() if c.label == f"{report.TARGET_SHOTS} shots")
    report.by_source(results, bundles, five, names, sources)
    met = report.targets(results, bundles, names, every)
    if not args.no_cost:
        kind = next((b for b in bundles if b.spec.image_size == 224), BUNDLES[0])
        figures = cost.measure(kind)
        print(f"\n### Cost per frame ({kind.label}, 16 classes)\n")
        print(f"- base model: {figures['base'] * 1e3:.1f} ms per frame")
        for name in ("new", "baseline"):
            print(
                f"- open-set test, {name}: {figures[name] * 1e6:.0f} us = "
                f"{figures[name + '_ratio']:.4f} of the base model (budget {cost.BUDGET})"
            )
    print(f"\n(evaluated in {time.monotonic() - started:.0f} s)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
