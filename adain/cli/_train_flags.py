"""``adain train``'s flags, derived from ``TrainConfig``: one per field, and field names spelled as flags.

The flag of field ``batch_size`` is ``--batch-size``; its type and default come from the dataclass, its help
from the field's entry in the ``Attributes:`` section of ``TrainConfig``'s docstring (the text the
documentation shows), so neither is written twice. Library messages name fields (``batch_size``,
``resume=True``); ``flag_spelling`` writes them as this command line's flags (``--batch-size``, ``--resume``).
"""

from __future__ import annotations

import argparse
import inspect
import re
import typing
from dataclasses import MISSING, fields
from typing import Any

from ..training._config import TrainConfig, recipe_names

_ENTRY = re.compile(r"^ {4}(\w+): (.*)$")  # "    name: text" in a Google-style section
_CODE = re.compile(r"``([^`]+)``")


def flag(name: str) -> str:
    """``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def flag_spelling(name: str, value: Any = None) -> str:
    """Field ``name`` (set to ``value``) as typed on the command line: ``--lr 0.0001``, ``--resume``,
    ``--no-compile``, ``--style-layer-weights 1,2,3,4``."""
    if value is None:
        return flag(name)
    if isinstance(value, bool):
        return flag(name) if value else "--no-" + flag(name)[2:]
    if isinstance(value, (tuple, list)):
        return f"{flag(name)} {','.join(map(str, value))}"
    return f"{flag(name)} {value}"


def attribute_docs(cls: type) -> dict[str, str]:
    """``{name: text}`` from the ``Attributes:`` section of ``cls``'s docstring (Google style: ``name: text``
    lines, continuation lines indented deeper, joined with spaces)."""
    lines = inspect.cleandoc(cls.__doc__ or "").splitlines()
    docs: dict[str, str] = {}
    if "Attributes:" not in lines:
        return docs
    name = None
    for line in lines[lines.index("Attributes:") + 1 :]:
        if line and not line.startswith(" "):  # the next section
            break
        entry = _ENTRY.match(line)
        if entry:
            name, docs[entry[1]] = entry[1], entry[2]
        elif name is not None and line.strip():
            docs[name] += " " + line.strip()
    return docs


def _help(text: str, names: set[str]) -> str:
    """A docstring entry as argparse help: ````field```` -> ``--field``, other code spans plain, no final full
    stop (the default follows), ``%`` escaped."""
    text = _CODE.sub(lambda m: flag(m[1]) if m[1] in names else m[1], text)
    if text.endswith(".") and not text.endswith("..."):
        text = text[:-1]
    return text.replace("%", "%%")


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--config``, ``--check-data`` and one flag per ``TrainConfig`` field (defaults suppressed, so that
    only the flags given override the recipe, the resumed run's configuration and the defaults)."""
    hints = typing.get_type_hints(TrainConfig)
    docs = attribute_docs(TrainConfig)
    names = {f.name for f in fields(TrainConfig)}
    parser.add_argument(
        "--config",
        metavar="RECIPE",
        help=f"read options from a recipe ({', '.join(recipe_names())}) or a TOML file; flags override it",
    )
    parser.add_argument(
        "--check-data",
        action="store_true",
        default=False,
        help="do not train: read every image of --content-dir and --style-dir once, list the "
        "unreadable or too small ones and exit 0 if there are none, 1 otherwise",
    )
    for f in fields(TrainConfig):
        default = f.default if f.default is not MISSING else None
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = _help(docs[f.name], names) + (f" (default: {shown})" if default not in ("", None) else "")
        if hints[f.name] is bool:
            parser.add_argument(
                flag(f.name), action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text
            )
        elif f.name == "style_layer_weights":
            parser.add_argument(
                flag(f.name), type=_floats, default=argparse.SUPPRESS, metavar="W1,W2,W3,W4", help=help_text
            )
        else:
            parser.add_argument(flag(f.name), type=hints[f.name], default=argparse.SUPPRESS, help=help_text)
