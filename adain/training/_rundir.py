"""A run directory (``TrainConfig.out``): what a run writes there, and what ``train`` does with an earlier run.

``resume=True`` continues the earlier run from its newest valid checkpoint (newer, unusable ones are
reported, and a directory without any valid checkpoint starts a new run, reported too). ``resume=False``
refuses a directory that holds an earlier run, before anything in it is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._checkpoint import CHECKPOINT_DIR, load_latest_checkpoint
from ._errors import RunExistsError
from ._events import InvalidCheckpointEvent, NewRunEvent, TrainEvent
from ._quality import QUALITY_NAME
from ._report import LOG_NAME, TENSORBOARD_DIR

SAMPLES_DIR = "samples"
SKIPPED_NAME = "skipped.txt"
LOSS_CURVE_NAME = "loss_curve.png"
FINAL_DIR = "final"

# What counts as "a run already there": any entry a run writes, present as a file or a folder, even empty.
# A new run in the directory would replace or prune each of them: log.csv and skipped.txt are rewritten from
# the start, checkpoints of the same steps are replaced and older ones pruned (keep_checkpoints), samples of
# the same steps and the loss curve are replaced, final/ is rewritten, and TensorBoard would interleave two
# runs' scalars. So the test is on every name, not only on checkpoints: a run killed before its first
# checkpoint has left a log and samples worth keeping. ``.lock`` is not among them: it holds only the PID of
# whoever trained last (written after this check passes), and a run that failed before writing anything
# leaves just that file, which must not block the next one. Files a run never writes are not its business.
RUN_ENTRIES = (
    CHECKPOINT_DIR, LOG_NAME, QUALITY_NAME, SAMPLES_DIR, TENSORBOARD_DIR, SKIPPED_NAME, LOSS_CURVE_NAME, FINAL_DIR
)  # fmt: skip
"""Every entry a run writes in its directory (besides ``.lock``), in the order a run writes them."""


def earlier_run(run_dir: str | os.PathLike) -> list[str]:
    """The entries of ``RUN_ENTRIES`` present in ``run_dir`` (empty: no run was there, or no such directory)."""
    run_dir = Path(run_dir)
    return [name for name in RUN_ENTRIES if os.path.lexists(run_dir / name)]


def refuse_earlier_run(run_dir: str | os.PathLike) -> None:
    """Raise ``RunExistsError`` if ``run_dir`` holds an earlier run (``earlier_run``); reads only."""
    found = earlier_run(run_dir)
    if found:
        raise RunExistsError(Path(run_dir), found)


def resume_point(run_dir: str | os.PathLike, emit: Callable[[TrainEvent], Any]) -> tuple[Path, dict[str, Any]] | None:
    """The newest valid checkpoint of ``run_dir`` as ``(path, state)``, or ``None`` (a new run starts).

    Each newer checkpoint that cannot be used is reported as an ``InvalidCheckpointEvent``; finding none
    is reported as a ``NewRunEvent``.
    """
    found = load_latest_checkpoint(run_dir, lambda path, reason: emit(InvalidCheckpointEvent(path, reason)))
    if found is None:
        emit(NewRunEvent(Path(run_dir)))
    return found
