"""The one translation of library messages into the command line's words: Python arguments become flags.

The library names its arguments as Python does (``max_pixels``, ``overwrite=True``, ``on_oom='shrink'``);
a user of ``adain`` typed ``--max-pixels``, ``--overwrite``, ``--on-oom shrink``. ``command_flags`` reads
the running command's parser (every optional flag and the ``dest`` it fills: nothing is restated by hand)
and ``in_flags`` rewrites a message with it: ``name=value`` becomes ``--flag value`` (``--flag`` alone for
``True``), a name with an underscore becomes its flag wherever it stands, and a plain name (``alpha``)
only where it opens the message (``alpha: must be ...``), since plain words such as ``device`` also occur
in prose. Words inside paths are left alone.
"""

from __future__ import annotations

import argparse
import re
from typing import NoReturn

# A Python identifier, optionally with "=value", not part of a path, a longer word or a flag.
_KEYWORD = re.compile(r"(?<![\w./\\-])([a-z][a-z0-9_]*)(?:=('[^']*'|\"[^\"]*\"|[\w.+-]+))?(?![\w/\\-]|\.\w|\()")


class FlagParser(argparse.ArgumentParser):
    """The command line's parser: it remembers the flag of every ``dest`` (``flags``) and its sub-command
    parsers (``subcommands``) as they are added, so that messages can be told in flags without reaching
    into argparse's internals; its usage errors are one line pointing at ``--help``, with exit status 2.
    Sub-command parsers are made of the same class (argparse's default)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.flags: dict[str, str] = getattr(self, "flags", {})
        self.subcommands: list[dict[str, argparse.ArgumentParser]] = getattr(self, "subcommands", [])

    def add_argument(self, *args, **kwargs):
        action = super().add_argument(*args, **kwargs)
        if not hasattr(self, "flags"):  # argparse adds -h while __init__ runs, before ours ends
            self.flags, self.subcommands = {}, []
        if action.option_strings and action.dest not in ("help", "version", argparse.SUPPRESS):
            long = [o for o in action.option_strings if o.startswith("--")]
            self.flags.setdefault(action.dest, (long or action.option_strings)[0])
        return action

    def add_subparsers(self, **kwargs):
        action = super().add_subparsers(**kwargs)
        self.subcommands.append(action.choices)  # filled as sub-commands are added
        return action

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")  # 2: EXIT_USAGE


def parser_flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """``{dest: flag}`` of every optional argument of ``parser`` (a ``FlagParser``) and of its
    sub-commands (the long spelling; the first one added when two flags fill one ``dest``, as a deprecated
    spelling does)."""
    flags = dict(getattr(parser, "flags", {}))
    for choices in getattr(parser, "subcommands", []):
        for sub in choices.values():
            for dest, flag in parser_flags(sub).items():
                flags.setdefault(dest, flag)
    return flags


def command_flags(parser: argparse.ArgumentParser, command: str | None) -> dict[str, str]:
    """``{dest: flag}`` of the sub-command ``command`` of ``adain``'s ``parser`` (its own flags only: the
    same ``dest`` may be another command's flag)."""
    for choices in getattr(parser, "subcommands", []):
        if command in choices:
            return parser_flags(choices[command])
    return parser_flags(parser)


def in_flags(message: str, flags: dict[str, str]) -> str:
    """``message`` with the Python argument names of ``flags`` replaced by their flags (see the module)."""

    def replace(match: re.Match) -> str:
        name, value = match.group(1), match.group(2)
        flag = flags.get(name)
        if flag is None:
            return match.group(0)
        if value is not None:
            value = value.strip("'\"")
            if value == "True":
                return flag
            return f"{flag} {'none' if value == 'None' else value}"
        if "_" in name or (match.start() == 0 and message[match.end() : match.end() + 1] == ":"):
            return flag
        return match.group(0)

    return _KEYWORD.sub(replace, message)
