"""The decoder training loop: ``train(config)``.

``train`` resumes or refuses an earlier run in the run directory (``_rundir``), sets the run up (``_run``: process,
models, resumed state, data), runs the loop (here: steps, logs, samples, checkpoints) and finishes it
(``_finish``: final export, loss curve, Hub upload), reporting what happens as events (``_events``) to a callback,
which can also stop it; it never prints and installs no signal handler. Process and weight setup lives in
``_setup``, options and defaults in ``TrainConfig`` (``_config``); the command line (``adain train``,
``python -m train``) lives in ``adain.cli._train``.

Data-parallel runs (``torchrun``) are detected from the ``WORLD_SIZE`` environment variable: every rank
trains on its own positions of the data order, DistributedDataParallel averages the gradients, and rank 0
alone writes logs, samples, checkpoints and the final model.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from .._arguments import environment_rank
from ..modeling._encoder import CONTENT_LAYER
from ..modeling._ops import adain
from ..weights._hub import check_push_access
from ._checkpoint import capture_rng_state, save_checkpoint
from ._config import TrainConfig
from ._data import Batch
from ._errors import Interrupted, Setting, TrainingError
from ._events import Callback, CheckpointEvent, LogEvent, QualityEvent, Reporter, StepEvent
from ._finish import finish
from ._lock import lock_run_dir
from ._quality import quality_grid, score_quality
from ._report import LOG_FIELDS, sample_grid
from ._run import Run, note_bad, setup
from ._rundir import SAMPLES_DIR, refuse_earlier_run, resume_point
from ._setup import should_stop
from ._step import StepResult, learning_rate, train_step


def train(
    config: TrainConfig,
    callback: Callback | None = None,
    *,
    worker_init_fn: Callable[[int], None] | None = None,
    resume_state: dict | None = None,
) -> Path:
    """Train a decoder as ``config`` says; returns ``RUN_DIR/final`` (a ``save_pretrained`` directory).

    The run directory is locked for the whole run, and ``push_to_hub`` credentials are checked before
    anything is loaded. Guide: [training a decoder](../guides/training.md).

    Arguments:
        config: the options ([``TrainConfig``][adain.training.TrainConfig]). With ``resume=True`` the run in
            ``out`` continues from its newest valid checkpoint (``TrainConfig.from_run(out)`` is the
            configuration it was written with); if there is none, a new run starts (``NewRunEvent``). With
            ``resume=False`` a directory holding an earlier run is refused (``RunExistsError``) before anything
            in it is written.
        callback: ``None``, or a function that receives every event (``StartEvent``, ``StepEvent``,
            ``LogEvent``, ``CheckpointEvent``, ``InvalidCheckpointEvent``, ``NewRunEvent``, ``BadImageEvent``,
            ``DoneEvent``, ``PushedEvent``); returning ``True`` stops the run at the end of the current step: a
            checkpoint is written and ``Interrupted`` raised. This is how a program stops on a signal: its
            handler sets a flag that the callback returns (the library installs no handler).
        worker_init_fn: called in each data-loading process with its id (``torch.utils.data.DataLoader``'s
            ``worker_init_fn``); the command line passes one that leaves Ctrl-C and SIGTERM to this process.
        resume_state: deprecated: a checkpoint's state to continue from; use ``resume=True``.

    Returns:
        The path of ``RUN_DIR/final``, a ``save_pretrained`` directory (``adain.load_pretrained`` loads it).

    Raises:
        ConfigError: an option that cannot be used, naming the field; ``RunExistsError`` is one.
        Interrupted: the callback stopped the run (a checkpoint was written; continue with ``resume=True``).
        TrainingError: training cannot go on (too many bad images, the loss keeps being non-finite), or the
            final push to the Hub failed (the model is kept in ``RUN_DIR/final``).
        AdaINError: another process is training in the same run directory (also a ``RuntimeError``).
    """
    config = config.validate()
    report = Reporter(callback)
    if resume_state is not None:
        warnings.warn(
            "train(..., resume_state=...) is deprecated; set resume=True in the TrainConfig: train then "
            "continues from the newest valid checkpoint itself",
            DeprecationWarning,
            stacklevel=2,
        )
    # The refusal runs under the lock, before the lock file or anything else is written (see _rundir).
    new_run_only = not config.resume and resume_state is None
    with lock_run_dir(config.out, check=(lambda: refuse_earlier_run(config.out)) if new_run_only else None):
        if config.push_to_hub and environment_rank("RANK") == 0:
            check_push_access(config.push_to_hub)  # fail now, not after days of training
        resumed = (
            (None, resume_state)
            if resume_state is not None
            else (resume_point(config.out, report) if config.resume else None)
        )
        run = setup(config, report, resumed, worker_init_fn)
        _loop(run)
        return finish(run)


# ---- the loop --------------------------------------------------------------------------------------


@dataclass
class _Window:
    """The steps since the last log row, and when the first of them began (for images per second)."""

    results: list[StepResult] = field(default_factory=list)
    since: float = field(default_factory=time.perf_counter)


def _loop(run: Run) -> None:
    """Steps ``start_step`` to ``max_iter``, with logs, samples and checkpoints; a stop request checkpoints and
    stops."""
    config = run.config
    in_a_row, last_saved, last_path = 0, run.start_step, None
    window = _Window()
    batches = iter(run.loader)
    for step in range(run.start_step, config.max_iter):
        result = _step(run, next(batches), step)
        in_a_row = 0 if result.applied else in_a_row + 1
        run.nonfinite += 0 if result.applied else 1
        if in_a_row >= config.max_nonfinite:
            raise TrainingError(
                f"the loss was NaN or infinite for {in_a_row} steps in a row (step {step}): the learning rate may be "
                "too high (",
                Setting("lr", config.lr),
                "), or the ",
                Setting("vgg"),
                " weights are not the "
                "normalised VGG-19 (check the file; a random or wrong encoder gives exploding features)",
            )
        done = step + 1
        _report(run, done, result, window)
        if done % config.save_every == 0:
            last_saved, last_path = done, _checkpoint(run, done)
        if should_stop(run.emit.stop_requested, run.dist, run.device):
            path = _checkpoint(run, done) if last_saved != done else last_path
            if run.log:
                run.log.close()
            raise Interrupted(done, path)
    if last_saved != config.max_iter and run.start_step < config.max_iter:
        _checkpoint(run, config.max_iter)


def _step(run: Run, batch: Batch, step: int) -> StepResult:
    """One optimisation step on ``batch`` (its unreadable images noted first)."""
    note_bad(run, batch.bad)
    c = batch.content.to(run.device, non_blocking=True)
    s = batch.style.to(run.device, non_blocking=True)
    c, s = c.contiguous(memory_format=torch.channels_last), s.contiguous(memory_format=torch.channels_last)
    lr = learning_rate(run.config.lr, run.config.lr_decay, step)
    return train_step(
        run.step_encoder,
        run.step_model,
        run.optimizer,
        c,
        s,
        run.weights,
        lr,
        autocast_dtype=run.autocast_dtype,
        average=run.average,
    )


def _report(run: Run, done: int, result: StepResult, window: _Window) -> None:
    """The ``"step"`` event; on rank 0, a log row every ``log_every`` steps and samples every ``sample_every``."""
    config = run.config
    window.results.append(result)
    run.emit(
        StepEvent(
            step=done,
            loss=result.loss,
            content=result.content,
            style=result.style,
            lr=result.lr,
            applied=result.applied,
            images=config.batch_size * run.dist.world,
        )
    )
    if run.is_main and (done % config.log_every == 0 or done == config.max_iter):
        now = time.perf_counter()
        images_per_s = len(window.results) * config.batch_size * run.dist.world / (now - window.since)
        row = _log_row(done, window.results, images_per_s, run.nonfinite, len(run.bad))
        assert run.log is not None, "rank 0 has a log"
        run.log.write({name: getattr(row, name) for name in LOG_FIELDS})
        run.emit(row)
        window.results, window.since = [], now
    if run.is_main and config.sample_every and done % config.sample_every == 0:
        assert run.samples is not None, "rank 0 has samples"
        _write_samples(
            run.decoder, run.encoder, run.samples, run.device, run.run_dir / SAMPLES_DIR / f"step-{done:08d}.png"
        )


def _checkpoint(run: Run, step: int) -> Path | None:
    """Save everything a resumed run needs at ``step`` (rank 0 only; other ranks return ``None``)."""
    if not run.is_main:
        return None
    config = run.config
    state = {
        "step": step,
        "decoder": run.decoder.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "rng": capture_rng_state(),
        "config": asdict(config),
        "data": {"seed": config.seed, "next_step": step, "bad": sorted(run.bad), "nonfinite": run.nonfinite},
    }
    path = save_checkpoint(run.run_dir, state, keep=config.keep_checkpoints)
    run.emit(CheckpointEvent(step=step, path=path))
    _score_quality(run, step)
    return path


def _score_quality(run: Run, step: int) -> None:
    """The checkpoint's quality record (``_quality``): a ``quality.csv`` row, a grid, TensorBoard, an event."""
    if run.quality is None or run.quality_log is None:
        return
    content, style, outputs = score_quality(run.encoder, run.decoder, run.quality.pairs, run.device)
    path = run.run_dir / SAMPLES_DIR / f"quality-{step:08d}.png"
    grid = quality_grid(run.quality.pairs, outputs, path)
    run.quality_log.write(step, content, style, run.quality.held_out)
    if run.log is not None:
        run.log.write_quality(step, content, style, grid)
    run.emit(QualityEvent(step=step, content=content, style=style, held_out=run.quality.held_out, grid=path))


def _log_row(step: int, window: list[StepResult], images_per_s: float, nonfinite: int, bad: int) -> LogEvent:
    """The log row of the steps in ``window`` (means over those whose loss was finite, if any was)."""
    ok = [r for r in window if r.applied and math.isfinite(r.loss)] or window
    mean = lambda key: sum(getattr(r, key) for r in ok) / len(ok)  # noqa: E731
    return LogEvent(
        step=step,
        loss=mean("loss"),
        content=mean("content"),
        style=mean("style"),
        lr=window[-1].lr,
        images_per_s=round(images_per_s, 3),
        nonfinite_skipped=nonfinite,
        bad_images=bad,
    )


@torch.no_grad()
def _write_samples(decoder: nn.Module, encoder: nn.Module, samples: Batch, device: torch.device, path: Path) -> None:
    c, s = samples.content.to(device), samples.style.to(device)
    out = decoder(adain(encoder(c)[CONTENT_LAYER], encoder(s)[CONTENT_LAYER]))
    sample_grid(c, s, out, path)
