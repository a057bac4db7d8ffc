"""``python -m train`` (and ``torchrun --nproc_per_node N -m train``): the same as ``adain train``."""

import sys

from adain.training import main

sys.exit(main())
