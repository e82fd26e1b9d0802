"""``python -m leaklab.cli``: the ``leaklab`` console script."""

import sys

from . import main

sys.exit(main())
