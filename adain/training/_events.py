"""What ``train`` reports while it runs: one frozen dataclass per kind of event, and the callback that gets them.

Every event has a ``kind`` (``"start"``, ``"step"``, ...), so a callback can dispatch on the class or on the
string. A callback that returns ``True`` asks the run to stop: ``train`` finishes the step, writes a
checkpoint and raises ``Interrupted`` (this is how the command line stops on Ctrl-C and SIGTERM). Callbacks
of the first versions, ``callback(kind, info_dict)``, still work with a ``DeprecationWarning``.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Union


@dataclass(frozen=True)
class StartEvent:
    """The run is set up and about to take its first step (``start_step``: 0, or the resumed checkpoint's)."""

    start_step: int
    max_iter: int
    device: str  # e.g. "cpu", "cuda:0"
    world_size: int  # processes of a data-parallel run (1 without one)
    content_images: int
    style_images: int
    autocast: str  # "float32", or the autocast dtype ("torch.bfloat16")
    resumed_from: Path | None  # the checkpoint the run continues, None for a new run
    kind: Literal["start"] = field(default="start", init=False)


@dataclass(frozen=True)
class StepEvent:
    """One optimisation step is done; ``step`` counts steps done (1 after the first). Losses are Python floats."""

    step: int
    loss: float
    content: float
    style: float
    lr: float
    applied: bool  # False when a non-finite loss skipped the update
    images: int  # image pairs in the step, all processes together
    kind: Literal["step"] = field(default="step", init=False)


@dataclass(frozen=True)
class LogEvent:
    """A row of ``RUN_DIR/log.csv``: means over the steps since the previous row (rank 0 only)."""

    step: int
    loss: float
    content: float
    style: float
    lr: float
    images_per_s: float
    nonfinite_skipped: int  # steps skipped so far for a non-finite loss
    bad_images: int  # unusable images met so far
    kind: Literal["log"] = field(default="log", init=False)


@dataclass(frozen=True)
class CheckpointEvent:
    """A checkpoint was written (rank 0 only)."""

    step: int
    path: Path
    kind: Literal["checkpoint"] = field(default="checkpoint", init=False)


@dataclass(frozen=True)
class InvalidCheckpointEvent:
    """While resuming, a checkpoint could not be used (truncated, not finite...); the previous one is tried."""

    path: Path
    reason: str
    kind: Literal["invalid_checkpoint"] = field(default="invalid_checkpoint", init=False)


@dataclass(frozen=True)
class NewRunEvent:
    """``resume=True`` found no valid checkpoint in ``run_dir``: a new run starts there."""

    run_dir: Path
    kind: Literal["new_run"] = field(default="new_run", init=False)


@dataclass(frozen=True)
class BadImageEvent:
    """An unusable image was skipped; ``message`` names the file and why (also listed in ``skipped.txt``)."""

    message: str
    kind: Literal["bad_image"] = field(default="bad_image", init=False)


@dataclass(frozen=True)
class DoneEvent:
    """The run is finished and ``final`` (a ``save_pretrained`` directory) written (rank 0 only)."""

    final: Path
    nonfinite_skipped: int
    bad_images: int
    kind: Literal["done"] = field(default="done", init=False)


@dataclass(frozen=True)
class PushedEvent:
    """``final`` was uploaded to the Hub repository ``repo`` (``push_to_hub``); ``url`` is its commit."""

    repo: str
    url: str
    kind: Literal["pushed"] = field(default="pushed", init=False)


TrainEvent = Union[StartEvent, StepEvent, LogEvent, CheckpointEvent, InvalidCheckpointEvent, NewRunEvent,
                   BadImageEvent, DoneEvent, PushedEvent]
"""Any event ``train`` reports."""

Callback = Callable[[TrainEvent], Union[bool, None]]
"""``callback(event)``; returning ``True`` stops the run at the end of the step (checkpoint, then ``Interrupted``)."""


class Reporter:
    """Hands events to a callback and remembers whether it asked to stop (``stop_requested``).

    A callback of the first versions (two required positional parameters: ``kind`` and a dict of the
    event's fields) is adapted, with a ``DeprecationWarning``; what it returns is ignored, as it was then.
    """

    def __init__(self, callback: Callable[..., Any] | None) -> None:
        self.stop_requested = False
        self._callback: Callable[[TrainEvent], Any] | None = callback
        if callback is not None and _takes_two_arguments(callback):
            warnings.warn("train(config, callback): callback(kind, info) is deprecated; take one argument, the "
                          "event (a dataclass with a kind, e.g. adain.training.StepEvent)", DeprecationWarning,
                          stacklevel=3)

            def first_version(event: TrainEvent) -> bool:
                callback(event.kind, _info(event))
                return False

            self._callback = first_version

    def __call__(self, event: TrainEvent) -> None:
        if self._callback is not None and self._callback(event):
            self.stop_requested = True


def _takes_two_arguments(callback: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(callback).parameters.values()
    except (TypeError, ValueError):  # no signature (some builtins): the current convention
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return sum(p.default is p.empty for p in positional) >= 2


def _info(event: TrainEvent) -> dict[str, Any]:
    """The ``info`` dict of the first versions: the event's fields; a step's losses also as ``result``."""
    info = {f.name: getattr(event, f.name) for f in fields(event) if f.name != "kind"}
    if isinstance(event, StepEvent):
        info["result"] = event  # was a StepResult with the same loss, content, style, lr and applied
    return info
