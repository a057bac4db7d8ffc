"""The ``adain`` command line: argv parsing, progress bars and exit codes live here, nowhere else.

Each subcommand is a private module of this package (``_stylize`` for ``adain stylize``) with
``register(subparsers)``, which adds its parser and sets ``func`` (``args -> exit code``). Errors print one
line to stderr and exit non-zero; ``--debug`` (anywhere on the command line) shows the traceback. Ctrl-C,
SIGTERM and SIGHUP stop the command as an exception does, so every temporary file is removed on the way out,
and print one line; ``train`` and ``video`` first ask the library to stop at the end of its step
(``_signals``), a second signal stops at once.

Exit status (``exit_status``; the table is in ``docs/guides/command-line.md``): 0 done; 1 a failure (an
unreadable input, weights, a full disk; in folder mode: at least one output failed); 2 a usage error (argparse's,
and every ``InputError`` about an argument's value, an output that is an input or cannot be written); 3 an
output exists and was kept (skipped; ``--overwrite`` replaces it); 130 interrupted (Ctrl-C); 128 + the signal's
number when stopped by SIGTERM (143) or SIGHUP (129). Library messages name Python arguments
(``max_pixels``, ``overwrite=True``); ``_flags`` turns them into the command's flags.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence

from .._version import __version__
from ..errors import (
    AdaINError,
    EnvironmentVariableError,
    ImageReadError,
    InputError,
    MissingDependencyError,
    OutputExistsError,
    WeightsError,
)
from ._flags import FlagParser, command_flags, in_flags

__all__ = ["main"]

# Subcommand modules, in the order `adain --help` lists them (`_dataset` adds `stylize-dataset`).
COMMANDS: tuple[str, ...] = (
    "stylize", "dataset", "video", "gatys", "train", "evaluate", "download", "convert", "export", "demo"
)  # fmt: skip

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SKIPPED = 3
EXIT_INTERRUPTED = 130

_EPILOG = (
    "exit status: 0 done, 1 failure (or some outputs failed), 2 usage error (a bad flag or value), 3 done but "
    "some outputs were skipped because they exist, 130 interrupted, 143 terminated"
)
_STOP_SIGNALS = ("SIGTERM", "SIGHUP")


class Stopped(BaseException):
    """A stop signal (SIGTERM, SIGHUP) arrived: raised where the program is, like ``KeyboardInterrupt``, so
    that cleanup (``finally``, context managers) runs; a ``BaseException`` so no ``except Exception``
    mistakes it for a failed image."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def build_parser() -> argparse.ArgumentParser:
    parser = FlagParser(prog="adain", description="Arbitrary style transfer with AdaIN.", epilog=_EPILOG)
    parser.add_argument("--version", action="version", version=f"adain {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMANDS:
        importlib.import_module(f"{__name__}._{name}").register(subparsers)
    for sub in subparsers.choices.values():
        # After the command too; SUPPRESS keeps a --debug given before the command from being reset.
        sub.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks on errors"
        )
    return parser


@contextlib.contextmanager
def _stop_signals_raise() -> Iterator[None]:
    """SIGTERM and SIGHUP raise ``Stopped`` in the main thread while the command runs (their default
    would kill the process on the spot, leaving temporary files behind)."""

    def handler(signum, frame):
        for other in previous:  # a second signal must not cut the cleanup short
            signal.signal(other, signal.SIG_IGN)
        raise Stopped(signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for name in _STOP_SIGNALS:
            if hasattr(signal, name):
                previous[getattr(signal, name)] = signal.signal(getattr(signal, name), handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script passes it to ``sys.exit``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.flags = command_flags(parser, args.command)  # for the messages commands print themselves
    try:
        with _stop_signals_raise():
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("adain: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Stopped as exc:
        print(f"adain: stopped by {exc}", file=sys.stderr)
        return 128 + exc.signum
    except (AdaINError, OSError, ValueError, RuntimeError) as exc:
        if args.debug:
            traceback.print_exc()
        return report_error(exc, args.flags, debug=args.debug)


def exit_status(exc: BaseException) -> int:
    """The exit status of a command that raised ``exc``: ``EXIT_SKIPPED`` (3) for an output that exists,
    ``EXIT_USAGE`` (2) for an argument the command cannot use (every ``InputError`` but an unreadable
    image or a missing optional dependency; an output folder that cannot be written is one; an environment
    variable the command cannot use is another), ``EXIT_ERROR`` (1) for every other failure (an unreadable
    input, weights, a full disk, an extra not installed)."""
    if isinstance(exc, OutputExistsError):
        return EXIT_SKIPPED
    if isinstance(exc, EnvironmentVariableError):
        return EXIT_USAGE
    if isinstance(exc, InputError) and not isinstance(exc, (ImageReadError, MissingDependencyError)):
        return EXIT_USAGE
    return EXIT_ERROR


def report_error(exc: BaseException, flags: dict[str, str], *, debug: bool = False) -> int:
    """Print ``exc`` as the command line says it (one line, Python argument names as flags) and return
    its exit status. A weights error keeps its few lines (each source once, where to put files by hand);
    its ``details`` (every source's own error) are printed with ``--debug``."""
    text = in_flags(str(exc).strip() or type(exc).__name__, flags)
    status = exit_status(exc)
    if status == EXIT_SKIPPED:
        name = getattr(exc, "filename", None) or text.split(":")[0]
        print(f"adain: skipped {name}: it exists (--overwrite replaces it)", file=sys.stderr)
        return status
    message = text if isinstance(exc, WeightsError) else text.splitlines()[0]
    print(f"adain: error: {message}", file=sys.stderr)
    details = getattr(exc, "details", None)
    if debug and details:
        print(in_flags(str(details), flags), file=sys.stderr)
    return status
