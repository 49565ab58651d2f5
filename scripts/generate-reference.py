"""Write the generated parts of the docs and the default config from the daemon's models.

    python scripts/generate-reference.py          # rewrite what is out of date
    python scripts/generate-reference.py --check  # exit 1 naming what is out of date

(`make reference` runs the first with the board environment.) What is generated and from
where: daemon/personalizer/reference.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from personalizer.reference import expected

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say what is out of date")
    args = parser.parse_args()
    stale = [path for path, text in expected(REPO).items() if path.read_text() != text]
    for path in stale:
        if args.check:
            print(f"{path.relative_to(REPO)} is out of date: run make reference", file=sys.stderr)
        else:
            path.write_text(expected(REPO)[path])
            print(f"wrote {path.relative_to(REPO)}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
