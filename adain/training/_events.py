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
from typing import Any, Literal


@dataclass(frozen=True)
class StartEvent:
    """The run is set up and about to take its first step.

    Attributes:
        start_step: steps already done: 0 for a new run, else the resumed checkpoint's step.
        max_iter: the step the run ends at (``TrainConfig.max_iter``).
        device: the device it trains on, e.g. ``"cpu"``, ``"cuda:0"``.
        world_size: processes of a data-parallel run (1 without one).
        content_images: usable images found in ``content_dir``.
        style_images: usable images found in ``style_dir``.
        autocast: ``"float32"``, or the autocast dtype (``"torch.bfloat16"``).
        resumed_from: the checkpoint the run continues; ``None`` for a new run.
        kind: ``"start"``, for callbacks that dispatch on a string.
    """

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
    """One optimisation step is done (on every process of a data-parallel run).

    Attributes:
        step: steps done, 1 after the first.
        loss: the total loss, ``content_weight * content + style_weight * style`` (a Python float).
        content: the content loss, before ``content_weight``.
        style: the style loss (relu1_1 to relu4_1, with ``style_layer_weights``), before ``style_weight``.
        lr: the learning rate of this step.
        applied: ``False`` when a non-finite loss skipped the update.
        images: image pairs in the step, all processes together.
        kind: ``"step"``, for callbacks that dispatch on a string.
    """

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
    """A row of ``RUN_DIR/log.csv`` (rank 0 only), every ``log_every`` steps and at the last.

    Attributes:
        step: steps done.
        loss: mean total loss over the steps since the previous row (those with a finite loss, if any).
        content: mean content loss over those steps.
        style: mean style loss over those steps.
        lr: the learning rate of the last of them.
        images_per_s: image pairs per second over those steps, all processes together.
        nonfinite_skipped: steps skipped so far for a non-finite loss.
        bad_images: unusable images met so far.
        kind: ``"log"``, for callbacks that dispatch on a string.
    """

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
    """A checkpoint was written (rank 0 only), every ``save_every`` steps, at the end and when stopped.

    Attributes:
        step: the step it holds.
        path: the checkpoint file.
        kind: ``"checkpoint"``, for callbacks that dispatch on a string.
    """

    step: int
    path: Path
    kind: Literal["checkpoint"] = field(default="checkpoint", init=False)


@dataclass(frozen=True)
class QualityEvent:
    """The decoder was scored at a checkpoint (rank 0 only): the AdaIN paper's losses on the run's fixed pairs.

    Attributes:
        step: the checkpoint's step.
        content: mean content loss (relu4_1 to the AdaIN target) over the pairs.
        style: mean style loss (mean/std, relu1_1..relu4_1, unit weights) over the pairs.
        held_out: ``True`` when the pairs come from ``eval_content_dir``/``eval_style_dir`` (never trained on),
            ``False`` when they are the first training pairs.
        grid: the PNG of the pairs' content | style | output rows.
        kind: ``"quality"``, for callbacks that dispatch on a string.
    """

    step: int
    content: float
    style: float
    held_out: bool
    grid: Path
    kind: Literal["quality"] = field(default="quality", init=False)


@dataclass(frozen=True)
class InvalidCheckpointEvent:
    """While resuming, a checkpoint could not be used (truncated, not finite...); the previous one is tried.

    Attributes:
        path: the checkpoint file.
        reason: why it could not be used.
        kind: ``"invalid_checkpoint"``, for callbacks that dispatch on a string.
    """

    path: Path
    reason: str
    kind: Literal["invalid_checkpoint"] = field(default="invalid_checkpoint", init=False)


@dataclass(frozen=True)
class NewRunEvent:
    """``resume=True`` found no valid checkpoint in ``run_dir``: a new run starts there.

    Attributes:
        run_dir: the run directory (``TrainConfig.out``).
        kind: ``"new_run"``, for callbacks that dispatch on a string.
    """

    run_dir: Path
    kind: Literal["new_run"] = field(default="new_run", init=False)


@dataclass(frozen=True)
class BadImageEvent:
    """An unusable image was skipped (also listed in ``RUN_DIR/skipped.txt``).

    Attributes:
        message: names the file and says why it cannot be used.
        kind: ``"bad_image"``, for callbacks that dispatch on a string.
    """

    message: str
    kind: Literal["bad_image"] = field(default="bad_image", init=False)


@dataclass(frozen=True)
class DoneEvent:
    """The run is finished and its model written (rank 0 only).

    Attributes:
        final: ``RUN_DIR/final``, a ``save_pretrained`` directory (load it with ``adain.load_pretrained``).
        nonfinite_skipped: steps skipped for a non-finite loss, in the whole run.
        bad_images: unusable images met.
        kind: ``"done"``, for callbacks that dispatch on a string.
    """

    final: Path
    nonfinite_skipped: int
    bad_images: int
    kind: Literal["done"] = field(default="done", init=False)


@dataclass(frozen=True)
class PushedEvent:
    """The final model was uploaded to the Hugging Face Hub (``TrainConfig.push_to_hub``).

    Attributes:
        repo: the Hub repository, ``"user/name"``.
        url: the URL of the commit.
        kind: ``"pushed"``, for callbacks that dispatch on a string.
    """

    repo: str
    url: str
    kind: Literal["pushed"] = field(default="pushed", init=False)


TrainEvent = (
    StartEvent
    | StepEvent
    | LogEvent
    | CheckpointEvent
    | QualityEvent
    | InvalidCheckpointEvent
    | NewRunEvent
    | BadImageEvent
    | DoneEvent
    | PushedEvent
)
"""Any event ``train`` reports: ``StartEvent``, ``StepEvent``, ``LogEvent``, ``CheckpointEvent``, ``QualityEvent``,
``InvalidCheckpointEvent``, ``NewRunEvent``, ``BadImageEvent``, ``DoneEvent`` or ``PushedEvent``."""

Callback = Callable[[TrainEvent], bool | None]
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
            warnings.warn(
                "train(config, callback): callback(kind, info) is deprecated; take one argument, the "
                "event (a dataclass with a kind, e.g. adain.training.StepEvent)",
                DeprecationWarning,
                stacklevel=3,
            )

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
