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

# A Python identifier, optionally with "=value", not part of a path, a longer word or a flag.
_KEYWORD = re.compile(r"(?<![\w./\\-])([a-z][a-z0-9_]*)(?:=('[^']*'|\"[^\"]*\"|[\w.+-]+))?(?![\w/\\-]|\.\w|\()")


def parser_flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """``{dest: flag}`` of every optional argument of ``parser`` and of its sub-commands (the long
    spelling; the first one registered when two flags fill one ``dest``, as a deprecated spelling does)."""
    flags: dict[str, str] = {}
    for action in parser._actions:  # argparse keeps no public list of a parser's arguments
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                for dest, flag in parser_flags(sub).items():
                    flags.setdefault(dest, flag)
        elif action.option_strings and action.dest not in ("help", "version", argparse.SUPPRESS):
            long = [o for o in action.option_strings if o.startswith("--")]
            flags.setdefault(action.dest, (long or action.option_strings)[0])
    return flags


def command_flags(parser: argparse.ArgumentParser, command: str | None) -> dict[str, str]:
    """``{dest: flag}`` of the sub-command ``command`` of ``adain``'s ``parser`` (its own flags only: the
    same ``dest`` may be another command's flag)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return parser_flags(action.choices[command])
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
