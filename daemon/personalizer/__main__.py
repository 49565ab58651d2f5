"""`python -m personalizer` runs the `personalizer` command."""

import sys

from .cli import main

sys.exit(main())
