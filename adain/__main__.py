"""``python -m adain``: the same as the ``adain`` console script."""

import sys

from .cli import main

sys.exit(main())
