"""What ``adain stylize`` and ``adain gatys`` share: one definition of each common flag.

The shared flags (``--weights``, ``--style-weights``, ``--preserve-color``, ``--content-size``,
``--style-size``, ``--device``, ``--dtype``, ``--max-memory``, ``--mask``) are defined here once, with
their defaults read from the backend's signature (``inspect.signature(adain.stylize)`` or
``adain.gatys``), never restated; so are the folder-mode arguments (CONTENT, STYLE, ``-o``, ``--ext``,
``--overwrite``, ``--quality``), whose meaning is ``folders`` (what is written) and ``outputs`` (where).
"""

from __future__ import annotations

import argparse
import functools
import inspect
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .. import _io as io
from .._arguments import COLOR_MODES, color_mode
from .._runtime import DTYPES, check_max_memory
from ..errors import InputError
from ..inference._prepared import BACKENDS
from ..model import AdaINModel, load_pretrained
from ._outputs import parse_ext, parse_output

SHARED_OPTIONS = (
    "content_size",
    "style_size",
    "style_weights",
    "preserve_color",
    "mask",
    "device",
    "dtype",
    "max_memory",
)
"""Library arguments both subcommands take from the shared flags (same names as the Python API)."""

_COLOR_ALIASES = {"match": "coral"}  # deprecated --preserve-color values -> their new spelling
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` except where the default is ``None`` (the help text says what ``None`` does)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def signature_defaults(func: Callable) -> dict[str, Any]:
    """``{name: default}`` of ``func``'s parameters that have one: the one source of every CLI default."""
    return {name: p.default for name, p in inspect.signature(func).parameters.items() if p.default is not p.empty}


def notice(message: str) -> None:
    """One warning line on stderr (deprecated flags)."""
    print(f"adain: warning: {message}", file=sys.stderr)


# ---- value parsers -------------------------------------------------------------------------------


def parse_size(text: str) -> int | None:
    """``N`` -> ``N``; ``0`` or ``none`` -> ``None`` (keep the size)."""
    if text.lower() in ("0", "none"):
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, 0 or 'none', got {text!r}")
    return value


def _numbers(text: str) -> list[float]:
    try:
        return [float(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers such as '1 3' or '1,3', got {text!r}") from None


def parse_bytes(text: str) -> int:
    """``4000000000``, ``4e9``, ``4G``/``4GB`` (10^9) or ``4GiB`` (2^30) -> bytes."""
    match = re.fullmatch(r"\s*([0-9.]+(?:[eE][+-]?[0-9]+)?)\s*(?:([kKmMgGtT])(i?)[bB]?)?\s*", text)
    if match is not None:
        number, unit, binary = match.groups()
        scale = 1024 ** (" kmgt".index(unit.lower())) if binary else _UNITS[(unit or "").lower()]
        value = float(number) * scale
        try:
            return check_max_memory(round(value) if unit and value < 2**63 else value)
        except (InputError, ValueError):
            pass
    raise argparse.ArgumentTypeError(
        f"expected a positive number of bytes such as 4000000000, 4e9 or 4GiB, got {text!r}"
    )


def parse_quality(text: str) -> int:
    """``--quality``: an integer from 1 to 100."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"expected an integer from 1 to 100, got {text!r}")
    return value


# ---- actions -------------------------------------------------------------------------------------


class _Store(argparse.Action):
    """Store the value; with ``nargs`` the parsed lists are flattened (``1,3`` and ``1 3`` alike)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if isinstance(values, list):
            values = [v for part in values for v in (part if isinstance(part, list) else [part])]
        setattr(namespace, self.dest, values)


class _Renamed(_Store):
    """A deprecated spelling: stores into the new flag's ``dest`` and prints one line naming the new flag."""

    def __init__(self, option_strings, dest, new_flag: str = "", **kwargs) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.new_flag = new_flag

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        notice(f"{option_string} is deprecated; use {self.new_flag}")
        super().__call__(parser, namespace, values, option_string)


class _Color(argparse.Action):
    """``--preserve-color [MODE]``; a deprecated mode (``match``) is renamed with a notice."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if values in _COLOR_ALIASES:
            notice(f"{option_string} {values} is deprecated; use {option_string} {_COLOR_ALIASES[values]}")
            values = _COLOR_ALIASES[values]
        setattr(namespace, self.dest, values)


# ---- flags ---------------------------------------------------------------------------------------


def add_inputs(parser: argparse.ArgumentParser) -> None:
    """CONTENT, STYLE..., ``-o`` and ``--ext``: the folder-mode arguments."""
    parser.add_argument("content", metavar="CONTENT", help="content image, or a folder (searched recursively)")
    parser.add_argument("style", metavar="STYLE", nargs="+", help="style image(s) or folder(s)")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        type=parse_output,
        help="output file (one content, one style or blend; a name with an image extension is "
        "a file) or folder (no extension, or ending in '/')",
    )
    parser.add_argument(
        "--ext", default=None, type=parse_ext, help="output extension in folder mode (default: the content's)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace outputs that exist, atomically (without it they are skipped with a notice "
        "and the exit status is 3); an input is never replaced",
    )
    add_metadata(parser)
    parser.add_argument(
        "--quality",
        type=parse_quality,
        metavar="N",
        default=signature_defaults(io.save_image)["quality"],
        help="JPEG and WebP quality, 1 to 100",
    )


def add_metadata(parser: argparse.ArgumentParser, default: str = io.DEFAULT_METADATA) -> None:
    """``--metadata``: what an output keeps of its input's colour profile and EXIF (``adain._io.METADATA_MODES``)."""
    parser.add_argument(
        "--metadata",
        choices=io.METADATA_MODES,
        default=default,
        help="what outputs keep of the content's metadata: no-gps keeps the colour profile and EXIF but drops "
        "the GPS position, keep copies both as they are, strip writes neither",
    )


def _shared_specs(defaults: dict[str, Any], notes: dict[str, str], old_colors: Sequence[str]) -> dict[str, dict]:
    """``flag -> add_argument keywords`` of every shared flag (``notes`` extend a flag's help), in ``--help`` order."""
    specs = {**_style_specs(defaults, old_colors), **_picture_specs(defaults), **_hardware_specs(defaults)}
    for flag, note in notes.items():
        specs[flag]["help"] += f"; {note}"
    return specs


def _style_specs(defaults: dict[str, Any], old_colors: Sequence[str]) -> dict[str, dict]:
    """The model and how the styles are applied: ``--weights``, ``--style-weights``, ``--preserve-color``."""
    return {
        "--weights": dict(
            dest="weights",
            default=None,
            metavar="NAME_OR_PATH",
            action=_Store,
            help="the model: a registered name, a folder written by save_pretrained, or a Hub repo "
            "(default: the default model)",
        ),
        "--style-weights": dict(
            dest="style_weights",
            nargs="+",
            type=_numbers,
            action=_Store,
            metavar="W",
            default=defaults["style_weights"],
            help="blend all STYLE files into one style with these weights ('1 3' or '1,3'); "
            "default: each style on its own",
        ),
        "--preserve-color": dict(
            dest="preserve_color",
            nargs="?",
            const=color_mode(True),
            action=_Color,
            choices=(*COLOR_MODES, *old_colors),
            metavar="{" + ",".join(COLOR_MODES) + "}",
            default=defaults["preserve_color"],
            help="keep the content's colours: coral recolours the style (the mode without a "
            "value), luminance transfers style to the luma only",
        ),
    }


def _picture_specs(defaults: dict[str, Any]) -> dict[str, dict]:
    """The pictures' sizes and the region mask: ``--content-size``, ``--style-size``, ``--mask``."""
    return {
        "--content-size": dict(
            dest="content_size",
            type=parse_size,
            metavar="N",
            default=defaults["content_size"],
            help="resize the content so its shorter side is N; 0 or 'none' keeps its size",
        ),
        "--style-size": dict(
            dest="style_size",
            type=parse_size,
            metavar="N",
            default=defaults["style_size"],
            help="resize the styles so their shorter side is N; 0 or 'none' keeps their size",
        ),
        "--mask": dict(
            dest="mask",
            metavar="M",
            default=defaults["mask"],
            help="with two STYLE files: the first where the mask is white, the second elsewhere",
        ),
    }


def _hardware_specs(defaults: dict[str, Any]) -> dict[str, dict]:
    """Where and how the computation runs: ``--device``, ``--dtype``, ``--max-memory``."""
    return {
        "--device": dict(
            dest="device",
            default=defaults["device"],
            help="cpu, cuda, cuda:1... (default: CUDA when available, else the CPU)",
        ),
        "--dtype": dict(
            dest="dtype",
            choices=tuple(DTYPES),
            default=defaults["dtype"],
            help="compute dtype (default: bfloat16 on CUDA with bf16 support, float32 elsewhere)",
        ),
        "--max-memory": dict(
            dest="max_memory",
            type=parse_bytes,
            metavar="BYTES",
            action=_Store,
            default=defaults["max_memory"],
            help="bytes one image may use, e.g. 4e9 or 4GiB (default: 80%% of the free memory)",
        ),
    }


def add_shared(
    parser: argparse.ArgumentParser,
    defaults: dict[str, Any],
    *,
    notes: dict[str, str] | None = None,
    old_colors: Sequence[str] = (),
    only: Sequence[str] | None = None,
) -> None:
    """Add the shared flags with ``defaults`` (the backend's signature); ``notes`` (``flag -> text``)
    extend a flag's help with what the backend does differently; ``old_colors`` are deprecated
    ``--preserve-color`` values still accepted; ``only`` limits the flags to those named (a backend
    without some of the options; ``defaults`` may then lack theirs)."""
    defaults = {**dict.fromkeys(SHARED_OPTIONS), **defaults} if only is not None else defaults
    for flag, spec in _shared_specs(defaults, notes or {}, old_colors).items():
        if only is None or flag in only:
            parser.add_argument(flag, **spec)


def add_renamed(parser: argparse.ArgumentParser, defaults: dict[str, Any], renamed: dict[str, str]) -> None:
    """Old spellings (``old flag -> new flag``) that parse as the new flag and print a deprecation line."""
    specs = _shared_specs(defaults, {}, ())
    for old, new in renamed.items():
        spec = dict(specs[new], help=argparse.SUPPRESS, default=argparse.SUPPRESS)
        spec["action"] = functools.partial(_Renamed, new_flag=new)
        parser.add_argument(old, **spec)


def load_model(weights: str | None) -> AdaINModel:
    """``--weights``: a name, a save_pretrained folder or a Hub repo; ``None`` is the default model."""
    return load_pretrained() if weights is None else load_pretrained(weights)


def add_backend(p: argparse.ArgumentParser) -> None:
    """``--backend``, for the subcommands that build a ``Stylizer`` (``adain stylize``, ``adain video``)."""
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="what runs the networks: torch (default), onnxruntime (CPU, float32, faster here; exported once "
        "per weights, about 10 s, needs adain[export]) or onnxruntime-int8 (quantised once, a minute or two; "
        "refused where it is not 1.5x faster)",
    )
