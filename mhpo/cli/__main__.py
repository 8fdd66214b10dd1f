"""``python -m mhpo.cli``: the ``mhpo-bench`` entry point."""

import sys

from mhpo.cli import main

sys.exit(main())
