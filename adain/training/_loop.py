"""The decoder training loop: ``train(config)``.

``train`` resumes or refuses an earlier run in the run directory (``_rundir``), sets the run up (process,
models, resumed state, data), runs the loop (steps, logs, samples, checkpoints) and finishes it (final
export, loss curve, Hub upload), reporting what happens as events (``_events``) to a callback, which can also
stop it; it never prints and installs no signal handler. Process and weight setup lives in ``_setup``,
options and defaults in ``TrainConfig`` (``_config``); the command line (``adain train``, ``python -m train``)
lives in ``adain.cli._train``.

Data-parallel runs (``torchrun``) are detected from the ``WORLD_SIZE`` environment variable: every rank
trains on its own positions of the data order, DistributedDataParallel averages the gradients, and rank 0
alone writes logs, samples, checkpoints and the final model.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._runtime import resolve_dtype
from ..modeling._decoder import Decoder
from ..modeling._encoder import CONTENT_LAYER, VGGEncoder
from ..modeling._ops import adain
from ..weights._hub import check_push_access, push_to_hub
from ._badfiles import count_under, too_many_bad
from ._checkpoint import capture_rng_state, restore_rng_state, save_checkpoint
from ._config import TrainConfig
from ._data import Batch, ImageStream, PairDataset, StepBatchSampler, collate_pairs
from ._errors import BadImagesError, Interrupted, Setting, TrainingError
from ._events import (
    BadImageEvent,
    Callback,
    CheckpointEvent,
    DoneEvent,
    LogEvent,
    PushedEvent,
    Reporter,
    StartEvent,
    StepEvent,
)
from ._lock import lock_run_dir
from ._report import LOG_FIELDS, ScalarLog, draw_loss_curve, sample_grid
from ._rundir import FINAL_DIR, LOSS_CURVE_NAME, SAMPLES_DIR, SKIPPED_NAME, refuse_earlier_run, resume_point
from ._setup import (
    Distributed,
    data_parallel,
    export_final,
    init_distributed,
    load_decoder,
    load_encoder,
    seed_everything,
    should_stop,
    training_device,
)
from ._step import LossWeights, StepResult, frozen, learning_rate, make_optimizer, train_step


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
        if config.push_to_hub and int(os.environ.get("RANK", "0")) == 0:
            check_push_access(config.push_to_hub)  # fail now, not after days of training
        resumed = (
            (None, resume_state)
            if resume_state is not None
            else (resume_point(config.out, report) if config.resume else None)
        )
        run = _setup(config, report, resumed, worker_init_fn)
        _loop(run)
        return _finish(run)


# ---- setup -----------------------------------------------------------------------------------------


@dataclass
class _Run:
    """One run's pieces: built by ``_setup``, used by ``_loop`` and ``_finish``.

    ``bad`` (unreadable images) and ``nonfinite`` (skipped steps) grow as the loop goes; every
    checkpoint saves them so that a resumed run goes on counting.
    """

    config: TrainConfig
    emit: Reporter
    dist: Distributed
    device: torch.device
    run_dir: Path
    encoder: VGGEncoder
    decoder: Decoder
    optimizer: torch.optim.Optimizer
    step_encoder: Callable[..., Any]  # the encoder and decoder as train_step calls them: compiled, and DDP-wrapped
    step_model: Callable[..., Any]
    average: Callable[[torch.Tensor], torch.Tensor] | None
    autocast_dtype: torch.dtype | None
    content: ImageStream
    style: ImageStream
    loader: torch.utils.data.DataLoader
    samples: Batch | None  # rank 0 only, as are the log and every file written
    log: ScalarLog | None
    weights: LossWeights
    start_step: int
    bad: set[str]
    nonfinite: int

    @property
    def is_main(self) -> bool:
        return self.dist.rank == 0


def _setup(
    config: TrainConfig,
    emit: Reporter,
    resumed: tuple[Path | None, dict] | None,
    worker_init_fn: Callable[[int], None] | None,
) -> _Run:
    """Join the process group, build the models and the optimizer, restore ``resumed`` (a checkpoint's path and
    state), open the data."""
    dist_info = init_distributed(config.device)
    is_main = dist_info.rank == 0
    device = training_device(config.device, dist_info)
    run_dir = Path(config.out)
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed)  # same on every rank: identical initial decoders
    encoder, decoder, optimizer = _models(config, device)
    start_step, bad, nonfinite = _restore(resumed[1] if resumed else None, decoder, optimizer)
    on_cuda = device.type == "cuda"
    # "auto" means what dtype=None means everywhere (adain._runtime): bf16 on CUDA with bf16, else float32.
    dtype = resolve_dtype(config.dtype, device, allowed=("float32", "bfloat16"))
    autocast_dtype = None if dtype == torch.float32 else dtype
    model, average = data_parallel(decoder, device, dist_info)
    # dynamic=False: the encoder sees two batch sizes (content + style together, then the decoded batch);
    # with automatic dynamic shapes the second would replace the first graph by a slower symbolic one.
    step_encoder = torch.compile(encoder, dynamic=False) if config.compile else encoder
    step_model = torch.compile(model, dynamic=False) if config.compile else model
    content, style, loader = _data(config, start_step, dist_info, pin_memory=on_cuda, worker_init_fn=worker_init_fn)
    relu1_1, relu2_1, relu3_1, relu4_1 = config.style_layer_weights  # four: checked by validate()
    run = _Run(
        config=config,
        emit=emit,
        dist=dist_info,
        device=device,
        run_dir=run_dir,
        encoder=encoder,
        decoder=decoder,
        optimizer=optimizer,
        step_encoder=step_encoder,
        step_model=step_model,
        average=average,
        autocast_dtype=autocast_dtype,
        content=content,
        style=style,
        loader=loader,
        samples=collate_pairs([loader.dataset[k] for k in range(min(4, config.batch_size))]) if is_main else None,
        log=ScalarLog(run_dir, start_step) if is_main else None,
        weights=LossWeights(config.content_weight, config.style_weight, (relu1_1, relu2_1, relu3_1, relu4_1)),
        start_step=start_step,
        bad=bad,
        nonfinite=nonfinite,
    )
    emit(
        StartEvent(
            start_step=start_step,
            max_iter=config.max_iter,
            device=str(device),
            world_size=dist_info.world,
            content_images=len(content),
            style_images=len(style),
            autocast=str(autocast_dtype) if autocast_dtype else "float32",
            resumed_from=resumed[0] if resumed else None,
        )
    )
    _note_bad(run, content.problems + style.problems)  # entries of the folders that could not be read
    return run


def _models(config: TrainConfig, device: torch.device) -> tuple[VGGEncoder, Decoder, torch.optim.Optimizer]:
    """The frozen encoder, the decoder to train (fresh, or ``init_decoder``) and its optimizer."""
    encoder = frozen(load_encoder(config.vgg)).to(device)
    torch.manual_seed(config.seed)  # the initial decoder depends on the seed alone, not on how the encoder was built
    decoder = (load_decoder(config.init_decoder) if config.init_decoder else Decoder()).to(device)
    # channels_last: faster convolutions with cuDNN and, measured here, 5-10% faster with oneDNN on CPU too.
    encoder, decoder = encoder.to(memory_format=torch.channels_last), decoder.to(memory_format=torch.channels_last)
    return encoder, decoder, make_optimizer(decoder.parameters(), config.lr)


def _restore(state: dict | None, decoder: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[int, set[str], int]:
    """Load a checkpoint's weights, optimizer and RNG states; returns its step, bad images and skipped steps."""
    if state is None:
        return 0, set(), 0
    decoder.load_state_dict(state["decoder"], strict=True)
    optimizer.load_state_dict(state["optimizer"])
    restore_rng_state(state["rng"])
    return int(state["step"]), set(state["data"].get("bad", [])), int(state["data"].get("nonfinite", 0))


def _data(
    config: TrainConfig,
    start_step: int,
    dist_info: Distributed,
    *,
    pin_memory: bool,
    worker_init_fn: Callable[[int], None] | None,
) -> tuple[ImageStream, ImageStream, torch.utils.data.DataLoader]:
    """The content and style streams and a loader giving this rank its batches from ``start_step`` on."""
    content = ImageStream(
        config.content_dir,
        image_size=config.image_size,
        crop_size=config.crop_size,
        seed=config.seed,
        stream=0,
        min_side=config.min_image_side,
    )
    style = ImageStream(
        config.style_dir,
        image_size=config.image_size,
        crop_size=config.crop_size,
        seed=config.seed,
        stream=1,
        min_side=config.min_image_side,
    )
    loader = torch.utils.data.DataLoader(
        PairDataset(content, style),
        batch_sampler=StepBatchSampler(start_step, config.batch_size, dist_info.rank, dist_info.world),
        num_workers=config.workers,
        collate_fn=collate_pairs,
        pin_memory=pin_memory,
        worker_init_fn=worker_init_fn,
        prefetch_factor=4 if config.workers > 0 else None,
        persistent_workers=False,
    )
    return content, style, loader


# ---- the loop --------------------------------------------------------------------------------------


@dataclass
class _Window:
    """The steps since the last log row, and when the first of them began (for images per second)."""

    results: list[StepResult] = field(default_factory=list)
    since: float = field(default_factory=time.perf_counter)


def _loop(run: _Run) -> None:
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


def _step(run: _Run, batch: Batch, step: int) -> StepResult:
    """One optimisation step on ``batch`` (its unreadable images noted first)."""
    _note_bad(run, batch.bad)
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


def _report(run: _Run, done: int, result: StepResult, window: _Window) -> None:
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


def _checkpoint(run: _Run, step: int) -> Path | None:
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
    return path


# ---- the finish ------------------------------------------------------------------------------------


def _finish(run: _Run) -> Path:
    """On rank 0: export ``RUN_DIR/final``, draw the loss curve, push to the Hub if asked. Returns ``final``."""
    config = run.config
    final = run.run_dir / FINAL_DIR
    if run.is_main:
        assert run.log is not None, "rank 0 has a log"
        run.log.close()
        export_final(
            run.encoder,
            run.decoder,
            final,
            description=(
                f"Decoder trained with adain.training.train: {config.max_iter} steps, batch {config.batch_size}, "
                f"content {config.content_dir}, style {config.style_dir}, style weight {config.style_weight}."
            ),
        )
        draw_loss_curve(run.log.path, run.run_dir / LOSS_CURVE_NAME)
        run.emit(DoneEvent(final=final, nonfinite_skipped=run.nonfinite, bad_images=len(run.bad)))
        if config.push_to_hub:
            run.emit(PushedEvent(repo=config.push_to_hub, url=_push(final, config.push_to_hub)))
    return final


def _push(final: Path, repo_id: str) -> str:
    """Upload ``final`` to ``repo_id``; any failure is one ``TrainingError`` line saying where the model is."""
    try:
        return push_to_hub(final, repo_id, commit_message="adain.training.train: final decoder")
    except Exception as exc:  # noqa: BLE001 -- HTTP, transport and verification errors alike: the model is safe
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TrainingError(
            f"training finished but the push to {repo_id} failed ({type(exc).__name__}: {reason}); the final model "
            f"is in {final}: push it later with adain.weights.push_to_hub({str(final)!r}, {repo_id!r})"
        ) from None


def _note_bad(run: _Run, messages) -> None:
    """Record newly found unreadable images (``RUN_DIR/skipped.txt``); more than ``_badfiles`` tolerates stop the
    run."""
    new = [m for m in messages if m not in run.bad]
    if not new:
        return
    run.bad.update(new)
    for m in new:
        run.emit(BadImageEvent(message=m))
    skipped = run.run_dir / SKIPPED_NAME
    if run.is_main:
        skipped.write_text("".join(f"{m}\n" for m in sorted(run.bad)))
    for stream in (run.content, run.style):
        reason = too_many_bad(stream.root, count_under(stream.root, run.bad), len(stream), run.config.max_bad_fraction)
        if reason is not None:
            raise BadImagesError(*reason, f" {skipped} lists the bad files met so far")


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
