"""``python -m train`` (and ``torchrun --nproc_per_node N -m train``): the same as ``adain train``."""

import sys

from adain.cli._train import main

sys.exit(main())
