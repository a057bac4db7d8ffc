"""``adain train`` (also ``python -m train``): flags and TOML config -> ``adain.training.train``.

Every flag is derived from a ``TrainConfig`` field (``_train_flags``), so defaults and help live only there.
Precedence: the defaults, then the resumed run's configuration (``TrainConfig.from_run``) with ``--resume``,
then ``--config FILE.toml``, then flags. Resuming, refusing a directory that holds a run, and locking it are
``train``'s; this module maps flags, draws the progress bar, writes one line per event worth a line, spells
the options that library messages name as flags, and turns Ctrl-C and SIGTERM into a stop at the end of
the step (``_signals``; exit status 130). ``--check-data`` reads every image of both folders once and lists
the bad ones instead of training.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from typing import Any, NoReturn

from tqdm import tqdm

from .._arguments import environment_rank
from .._atomic import check_writable
from ..errors import AdaINError, InputError
from ..training import (
    BadImageEvent,
    DoneEvent,
    Interrupted,
    InvalidCheckpointEvent,
    LogEvent,
    NewRunEvent,
    PushedEvent,
    StartEvent,
    StepEvent,
    TrainConfig,
    TrainEvent,
    train,
)
from ..training._badfiles import FolderCheck, check_folder
from ..training._config import config_from, read_toml
from ..training._errors import BadImagesError, NamesSettings
from . import EXIT_INTERRUPTED
from ._signals import StopRequests, ignore_stop_signals
from ._train_flags import add_arguments, flag_spelling


class TrainCommandError(AdaINError):
    """A library error re-raised with the options its message names spelled as flags."""


class TrainUsageError(TrainCommandError, InputError):
    """A ``TrainCommandError`` for a setting the command cannot use: a usage error (exit status 2)."""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a decoder on folders of content and style images",
        description="Train an AdaIN decoder (guide: docs/guides/training.md).",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The ``TrainConfig`` fields that ``--config`` and the flags set (flags win)."""
    names = {f.name for f in fields(TrainConfig)}
    values = {}
    if getattr(args, "config", None):
        try:
            values = read_toml(args.config)
        except InputError as exc:
            raise InputError(f"--config {exc}") from None
    values.update({k: v for k, v in vars(args).items() if k in names})
    return values


def _warn(message: str) -> None:
    tqdm.write(f"adain train: {message}", file=sys.stderr)


def message(exc: NamesSettings) -> str:
    """A library message with its options spelled as flags (and, for too many bad images, how to list them)."""
    text = exc.render(flag_spelling)
    if isinstance(exc, BadImagesError):
        text += "; `adain train --check-data` lists every one"
    return text


def run(args: argparse.Namespace) -> int:
    """Train as ``args`` say; the exit code is 0 when done, 130 when interrupted (checkpoint saved).

    With ``--check-data``: check the folders instead (0 when every image is usable, 1 otherwise).
    """
    try:
        overrides = _overrides(args)
        if getattr(args, "check_data", False):
            return _check_data(config_from(TrainConfig(), overrides).validate())
        return _train(_config(overrides))
    except NamesSettings as exc:
        kind = TrainUsageError if isinstance(exc, InputError) else TrainCommandError
        raise kind(message(exc)) from exc


def _config(overrides: dict[str, Any]) -> TrainConfig:
    """The run's configuration: with ``--resume``, the resumed run's own under the TOML file and the flags."""
    out = overrides.get("out", TrainConfig().out)
    base = (TrainConfig.from_run(out) if overrides.get("resume") else None) or TrainConfig()
    return config_from(base, overrides)


class _Progress:
    """``train``'s callback on rank 0: a progress bar and one line per event worth a line; returns whether a
    signal asked to stop."""

    def __init__(self, stop: StopRequests) -> None:
        self.stop = stop
        self.bar: tqdm[NoReturn] | None = None

    def __call__(self, event: TrainEvent) -> bool:
        if isinstance(event, StartEvent):
            self.bar = tqdm(
                total=event.max_iter, initial=event.start_step, unit="step", dynamic_ncols=True, disable=None
            )
            _warn(
                f"{event.content_images} content and {event.style_images} style images; device {event.device} "
                f"x{event.world_size}, {event.autocast}; starting at step {event.start_step}"
            )
        elif isinstance(event, StepEvent) and self.bar is not None:
            self.bar.update(1)
        elif isinstance(event, LogEvent) and self.bar is not None:
            self.bar.set_postfix(
                loss=f"{event.loss:.3g}",
                content=f"{event.content:.3g}",
                style=f"{event.style:.3g}",
                img_s=f"{event.images_per_s:.1f}",
                refresh=False,
            )
        elif isinstance(event, InvalidCheckpointEvent):
            _warn(f"checkpoint {event.path} is unusable ({event.reason}); trying the previous one")
        elif isinstance(event, NewRunEvent):
            _warn(f"no valid checkpoint in {event.run_dir}; starting a new run")
        elif isinstance(event, BadImageEvent):
            _warn(f"skipped {event.message}")
        elif isinstance(event, DoneEvent):
            self.close()
            _warn(
                f"done: final model in {event.final} (skipped {event.nonfinite_skipped} non-finite steps, "
                f"{event.bad_images} bad images)"
            )
        elif isinstance(event, PushedEvent):
            _warn(f"pushed to {event.repo}: {event.url}")
        return self.stop.requested

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _train(config: TrainConfig) -> int:
    """``train`` with a progress bar (rank 0), stopping at the end of a step on the first SIGINT or SIGTERM."""
    check_writable(config.out, "out")  # before the encoder loads and the folders are walked
    with StopRequests() as stop:
        progress = _Progress(stop) if environment_rank("RANK") == 0 else None
        try:
            train(config, progress or (lambda event: stop.requested), worker_init_fn=ignore_stop_signals)
        except Interrupted as exc:
            if progress is not None:
                progress.close()
            _warn(message(exc))
            return EXIT_INTERRUPTED
        finally:
            if progress is not None:
                progress.close()
    return 0


def _check_data(config: TrainConfig) -> int:
    """``--check-data``: one line per bad file of both folders (stdout), then a summary; 1 if any is bad."""
    checks = []
    for root in (config.content_dir, config.style_dir):
        with tqdm(desc=f"checking {root}", unit="img", dynamic_ncols=True, disable=None, leave=False) as bar:

            def progress(checked: int, total: int) -> None:
                bar.total = total
                bar.update(checked - bar.n)

            check = check_folder(
                root,
                min_side=config.min_image_side,
                fraction=config.max_bad_fraction,
                workers=config.workers,
                progress=progress,
            )
        for message in check.bad:
            tqdm.write(message, file=sys.stdout)
        checks.append(check)
    print(_data_summary(checks))
    return 1 if any(check.bad for check in checks) else 0


def _data_summary(checks: list[FolderCheck]) -> str:
    """One line: how many files are bad in each folder, and whether a training run would stop."""
    if not any(check.bad for check in checks):
        return (
            f"all {sum(c.total for c in checks)} images are usable ("
            + ", ".join(f"{c.total} in {c.root}" for c in checks)
            + ")"
        )
    bad = sum(len(c.bad) for c in checks)
    line = f"{bad} bad file{'s' if bad != 1 else ''}: " + ", ".join(
        f"{len(c.bad)} of {c.total} in {c.root}" for c in checks
    )
    stops = [c.root for c in checks if c.stop_reason is not None]
    if stops:
        line += "; a run would stop on " + " and ".join(map(str, stops)) + " (too many bad files)"
    else:
        line += "; a run would skip them (listed in RUN_DIR/skipped.txt)"
    return line


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m train``): errors become one line on stderr and exit code 1."""
    parser = argparse.ArgumentParser(prog="python -m train", description="Train an AdaIN decoder.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    add_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("adain train: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (AdaINError, OSError, ValueError, RuntimeError) as exc:
        if args.debug:
            raise
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"adain train: error: {text}", file=sys.stderr)
        return 1
