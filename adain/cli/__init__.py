"""The ``adain`` command line: argv parsing, progress bars and exit codes live here, nowhere else.

Each subcommand is a module of this package with ``register(subparsers)``, which adds its parser and
sets ``func`` (``args -> exit code``). Errors print one line to stderr and exit non-zero; ``--debug``
shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

from ..errors import AdaINError, WeightsNotFoundError
from ..version import __version__

__all__ = ["main", "build_parser"]

# Subcommand modules, in the order `adain --help` lists them.
COMMANDS: tuple[str, ...] = ("stylize", "video", "gatys", "train", "download", "convert")

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adain", description="Arbitrary style transfer with AdaIN.")
    parser.add_argument("--version", action="version", version=f"adain {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script passes it to ``sys.exit``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("adain: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (AdaINError, OSError, ValueError, RuntimeError) as exc:
        if args.debug:
            traceback.print_exc()
        text = str(exc).strip() or type(exc).__name__
        # One line, except when weights could not be found: that message lists every source tried and
        # where to put the files by hand, which is what the user needs next.
        message = text if isinstance(exc, WeightsNotFoundError) else text.splitlines()[0]
        print(f"adain: error: {message}", file=sys.stderr)
        return EXIT_ERROR
