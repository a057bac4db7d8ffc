"""The ``adain`` command line: argv parsing, progress bars and exit codes live here, nowhere else.

Each subcommand is a private module of this package (``_stylize`` for ``adain stylize``) with
``register(subparsers)``, which adds its parser and sets ``func`` (``args -> exit code``). Errors print one
line to stderr and exit non-zero; ``--debug`` (anywhere on the command line) shows the traceback. Ctrl-C,
SIGTERM and SIGHUP stop the command as an exception does, so every temporary file is removed on the way out,
and print one line; ``train`` and ``video`` first ask the library to stop at the end of its step
(``_signals``), a second signal stops at once.

Exit status: 0 done; 1 an error (in folder mode: at least one output failed); 2 a usage error; 3 done,
but some outputs were skipped because they exist (``--overwrite`` replaces them); 130 interrupted
(Ctrl-C); 128 + the signal's number when stopped by SIGTERM (143) or SIGHUP (129).
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
from ..errors import AdaINError, OutputExistsError, WeightsError

__all__ = ["main"]

# Subcommand modules, in the order `adain --help` lists them.
COMMANDS: tuple[str, ...] = (
    "stylize", "video", "gatys", "train", "evaluate", "download", "convert", "export", "demo"
)  # fmt: skip

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SKIPPED = 3
EXIT_INTERRUPTED = 130

_EPILOG = (
    "exit status: 0 done, 1 error (or some outputs failed), 2 usage error, 3 done but some outputs were "
    "skipped because they exist, 130 interrupted, 143 terminated"
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
    parser = argparse.ArgumentParser(prog="adain", description="Arbitrary style transfer with AdaIN.", epilog=_EPILOG)
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
        text = str(exc).strip() or type(exc).__name__
        if isinstance(exc, OutputExistsError) and exc.filename:
            text = f"{exc.filename}: exists; pass --overwrite to replace it"  # the library names overwrite=True
        # One line, except for weights errors: when every source failed the message lists each one (and
        # where a rejected file was moved, and where to put files by hand), which is what the user needs next.
        message = text if isinstance(exc, WeightsError) else text.splitlines()[0]
        print(f"adain: error: {message}", file=sys.stderr)
        return EXIT_ERROR
