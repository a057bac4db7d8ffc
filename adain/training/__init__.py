"""Training a decoder: ``train(TrainConfig(...), callback)``.

``train`` continues the run in ``TrainConfig.out`` with ``resume=True`` and refuses a directory that holds a
run without it (``RunExistsError``); it reports progress as events (``StartEvent``, ``StepEvent``, ...: frozen
dataclasses with a ``kind``; ``TrainEvent`` is any of them) and stops when its callback returns ``True``
(``Interrupted``). Messages that name an option name the ``TrainConfig`` field (``batch_size``,
``resume=True``); ``ConfigError.render`` spells them otherwise (the command line, ``adain train``, shows
flags). Guide: [training a decoder](../guides/training.md).
"""

# Internal modules: _config (TrainConfig and the recipes), _errors, _events, _rundir (what a run directory holds;
# resume or refuse), _data (resumable image streams), _badfiles (unusable images: the tolerance rule and checking
# folders), _step (the loss and one optimisation step), _checkpoint, _report (logs, samples, loss curve), _setup
# (the process, and weights in and out), _lock (one run per run directory), _run (a run's pieces and their setup),
# _loop (train, and the loop) and _finish (the final export, loss curve and push). The command line is adain train
# (adain.cli).

from .._arguments import moved_modules
from ._config import TrainConfig as TrainConfig
from ._config import recipe_names as recipe_names
from ._errors import ConfigError as ConfigError
from ._errors import Interrupted as Interrupted
from ._errors import RunExistsError as RunExistsError
from ._errors import TrainingError as TrainingError
from ._events import BadImageEvent as BadImageEvent
from ._events import CheckpointEvent as CheckpointEvent
from ._events import DoneEvent as DoneEvent
from ._events import InvalidCheckpointEvent as InvalidCheckpointEvent
from ._events import LogEvent as LogEvent
from ._events import NewRunEvent as NewRunEvent
from ._events import PushedEvent as PushedEvent
from ._events import QualityEvent as QualityEvent
from ._events import StartEvent as StartEvent
from ._events import StepEvent as StepEvent
from ._events import TrainEvent as TrainEvent
from ._loop import train as train

__all__ = [
    "BadImageEvent",
    "CheckpointEvent",
    "ConfigError",
    "DoneEvent",
    "Interrupted",
    "InvalidCheckpointEvent",
    "LogEvent",
    "NewRunEvent",
    "PushedEvent",
    "QualityEvent",
    "RunExistsError",
    "StartEvent",
    "StepEvent",
    "TrainConfig",
    "TrainEvent",
    "TrainingError",
    "recipe_names",
    "train",
]

# The modules of the first layout, internal now: reachable for a while, with a DeprecationWarning.
__getattr__ = moved_modules(
    __name__,
    {
        name: f"adain.training._{name}"
        for name in ("badfiles", "checkpoint", "config", "data", "lock", "loop", "report", "setup", "step")
    },
)
