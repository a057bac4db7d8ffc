"""``python -m adain``: the same as the ``adain`` console script."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
