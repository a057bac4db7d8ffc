"""Training a decoder: ``train(TrainConfig(...))``.

Internal modules: ``_config`` (``TrainConfig`` and the recipes), ``_data`` (resumable image streams),
``_badfiles`` (unusable images: the tolerance rule and ``--check-data``), ``_step`` (the loss and one
optimisation step), ``_checkpoint``, ``_report`` (logs, samples, loss curve), ``_setup`` (the process, and
weights in and out), ``_lock`` (one run per run directory) and ``_loop`` (``train``). The command line is
``adain train`` (``adain.cli``).
"""

from .._arguments import moved_modules
from ._config import TrainConfig as TrainConfig
from ._config import recipe_names as recipe_names
from ._loop import Interrupted as Interrupted
from ._loop import TrainingError as TrainingError
from ._loop import train as train

__all__ = ["Interrupted", "TrainConfig", "TrainingError", "recipe_names", "train"]

# The modules of the first layout, internal now: reachable for a while, with a DeprecationWarning.
__getattr__ = moved_modules(__name__, {name: f"adain.training._{name}" for name in (
    "badfiles", "checkpoint", "config", "data", "lock", "loop", "report", "setup", "step")})
