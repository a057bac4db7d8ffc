"""The one vocabulary of both backends: checks of the arguments ``stylize``, ``Stylizer`` and ``gatys`` share.

The same concept has the same name, accepted values and meaning in both backends and on the command
line: ``alpha``, ``preserve_color`` (``None``/``False``, ``"coral"`` (alias ``True``), ``"luminance"``),
``style_weights`` (one blend weight per style), sizes (``None`` keeps the size), ``max_memory`` and
``dtype`` (see ``adain._runtime``). Wherever a number is meant numpy scalars are accepted, and integral
floats (``512.0``, ``2e9``) wherever an integer is; bools and non-integral sizes are refused. Spellings
of the first versions (``weights=``, ``style_blend=``, ``memory_limit=``, ``preserve_color="match"``)
still work with a ``DeprecationWarning`` naming the new one.
"""

from __future__ import annotations

import importlib
import math
import numbers
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, overload

from ._atomic import NAME_MAX
from .errors import EnvironmentVariableError, InputError

COLOR_MODES = ("coral", "luminance")
"""Colour preservation modes: CORAL recolours the style to the content before encoding (the reference's
``preserve_color``); ``"luminance"`` transfers style to the luma only and keeps the content's chroma."""


OUTPUT_TYPES = ("pil", "np", "pt")
"""What a stylizing call returns, as its caller chooses (``output_type=``, as diffusers' pipelines): an RGB
``PIL.Image``, a numpy ``H x W x 3`` uint8 array, or a torch ``3 x H x W`` float32 tensor in [0, 1]."""


def check_output_type(output_type: Any, *, allow_none: bool = False) -> str | None:
    """``output_type``: one of ``OUTPUT_TYPES`` (``None`` passes when ``allow_none``: the input's kind decides)."""
    if (output_type is None and allow_none) or (isinstance(output_type, str) and output_type in OUTPUT_TYPES):
        return output_type
    default = " or None (a tensor gives 'pt', anything else 'pil')" if allow_none else ""
    raise InputError(f"output_type: expected one of {', '.join(map(repr, OUTPUT_TYPES))}{default}, got {output_type!r}")


def check_alpha(alpha: Any) -> float:
    """``alpha`` as a float in [0, 1] (numpy scalars accepted)."""
    value = _real(alpha)
    if value is not None and 0.0 <= value <= 1.0:
        return value
    raise InputError(f"alpha: must be a number in [0, 1] (0 = content only, 1 = full style), got {alpha!r}")


def _real(value: Any) -> float | None:
    """``value`` as a float if it is a real number (numpy scalars included; bools are not numbers here)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # an int beyond float range: not finite, refused by the callers
            return math.inf
    return None


@overload
def check_number(
    value: Any,
    what: str,
    *,
    minimum: float | None = ...,
    above: float | None = ...,
    below: float | None = ...,
    allow_none: Literal[False] = ...,
) -> float: ...
@overload
def check_number(
    value: Any,
    what: str,
    *,
    minimum: float | None = ...,
    above: float | None = ...,
    below: float | None = ...,
    allow_none: bool,
) -> float | None: ...
def check_number(
    value: Any,
    what: str,
    *,
    minimum: float | None = None,
    above: float | None = None,
    below: float | None = None,
    allow_none: bool = False,
) -> float | None:
    """A finite real number (numpy scalars accepted), ``>= minimum``, ``> above`` and ``< below`` where
    given, as a ``float``; ``None`` passes when ``allow_none``."""
    if value is None and allow_none:
        return None
    number = _real(value)
    if (
        number is not None
        and math.isfinite(number)
        and (minimum is None or number >= minimum)
        and (above is None or number > above)
        and (below is None or number < below)
    ):
        return number
    bounds = [f"{sign} {bound:g}" for sign, bound in ((">=", minimum), (">", above), ("<", below)) if bound is not None]
    raise InputError(
        f"{what}: must be a finite number{''.join(' ' + b for b in bounds[:1])}"
        f"{''.join(' and ' + b for b in bounds[1:])}{' or None' if allow_none else ''}, got {value!r}"
    )


@overload
def check_int(
    value: Any, what: str, *, minimum: int | None = ..., allow_none: Literal[False] = ..., hint: str = ...
) -> int: ...
@overload
def check_int(value: Any, what: str, *, minimum: int | None = ..., allow_none: bool, hint: str = ...) -> int | None: ...
def check_int(
    value: Any, what: str, *, minimum: int | None = 1, allow_none: bool = False, hint: str = ""
) -> int | None:
    """An integer >= ``minimum`` (numpy integers and integral floats such as ``512.0`` or ``2e9`` accepted;
    bools and non-integral numbers refused), as an ``int``; ``None`` passes when ``allow_none``."""
    if value is None and allow_none:
        return None
    number = _real(value)
    if (
        number is not None
        and math.isfinite(number)
        and number == int(number)
        and (minimum is None or number >= minimum)
    ):
        return int(value) if isinstance(value, numbers.Integral) else int(number)
    bound = f" >= {minimum}" if minimum is not None else ""
    raise InputError(f"{what}: must be an integer{bound}{' or None' if allow_none else ''}{hint}, got {value!r}")


def number_list(values: Any, what: str) -> list[float]:
    """A sequence of real numbers (a list, tuple, 1-D numpy array or tensor) -> ``list[float]``."""
    if hasattr(values, "ndim") and hasattr(values, "tolist") and values.ndim == 1:
        values = values.tolist()  # numpy arrays and tensors
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise InputError(f"{what}: expected a sequence of numbers, got {values!r}")
    numbers_ = [_real(v) for v in values]
    floats = [v for v in numbers_ if v is not None]
    if len(floats) != len(numbers_):
        raise InputError(f"{what}: expected numbers, got {values!r}")
    return floats


def color_mode(preserve_color: Any) -> str | None:
    """``preserve_color`` -> ``None``, ``"coral"`` or ``"luminance"``."""
    if preserve_color is None or preserve_color is False:
        return None
    if preserve_color is True:
        return "coral"
    if preserve_color == "match":
        warnings.warn(
            "preserve_color='match' is deprecated; use preserve_color='coral' (the same CORAL colour matching)",
            DeprecationWarning,
            stacklevel=3,
        )
        return "coral"
    if isinstance(preserve_color, str) and preserve_color in COLOR_MODES:
        return preserve_color
    raise InputError(f"preserve_color: expected None/False, 'coral' (or True) or 'luminance', got {preserve_color!r}")


def check_style_weights(style_weights: Any) -> tuple[float, ...] | None:
    """Blend weights (a sequence, 1-D array or tensor of finite non-negative numbers, not all 0) as a
    tuple of floats, not yet normalised; ``None`` passes."""
    if style_weights is None:
        return None
    values = number_list(style_weights, "style_weights")
    if not all(math.isfinite(w) and w >= 0 for w in values):
        raise InputError(f"style_weights: must be finite and non-negative, got {values}")
    if sum(values) <= 0:
        raise InputError("style_weights: at least one weight must be positive")
    return tuple(values)


def normalize_style_weights(style_weights: Any, n_styles: int) -> list[float]:
    """One blend weight per style, normalised to sum 1; equal when ``None``."""
    values = check_style_weights(style_weights)
    if values is None:
        return [1.0 / n_styles] * n_styles
    if len(values) != n_styles:
        raise InputError(f"style_weights: got {len(values)} weights for {n_styles} style(s); give one per style")
    total = sum(values)
    return [w / total for w in values]


def check_mask_styles(n_styles: int, style_weights: Any, other: str = "") -> None:
    """A two-region ``mask`` needs exactly two styles (first: inside, second: outside) and no blend weights
    (each region takes one style). ``other``: a conflicting argument also given (e.g. ``"masks"``)."""
    if n_styles != 2 or other:
        extra = f" and no {other}=" if other else ""
        raise InputError(f"mask: needs exactly two styles (foreground, background){extra}; got {n_styles} style(s)")
    if style_weights is not None:
        raise InputError("style_weights: cannot be combined with a mask (each region takes one style)")


def check_size(size: Any, what: str) -> int | None:
    """A shorter-side size: a positive integer (integral floats and numpy integers accepted) or ``None``."""
    return check_int(size, what, allow_none=True, hint=" (None keeps the size)")


def pop_deprecated(options: dict[str, Any], old: str, new: str, value: Any, where: str) -> Any:
    """``options[old]`` (removed from ``options``) when the deprecated spelling ``old`` was used, with a
    ``DeprecationWarning`` naming ``new``; otherwise ``value``. Both given is an ``InputError``."""
    if old not in options:
        return value
    if value is not None:
        raise InputError(f"{where}: {old}= is the deprecated spelling of {new}=; give only {new}=")
    warnings.warn(f"{where}: {old}= is deprecated; use {new}=", DeprecationWarning, stacklevel=3)
    return options.pop(old)


def moved_modules(package: str, moved: Mapping[str, str]) -> Callable[[str], ModuleType]:
    """A module-level ``__getattr__`` for ``package`` that keeps its former public submodules reachable:
    ``moved`` maps an old name (``"stylizer"``) to the private module that now holds its code. Each access
    warns (``DeprecationWarning``): those modules are internal and may change; the package's ``__all__``
    is the API."""

    def __getattr__(name: str) -> ModuleType:
        if name not in moved:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        warnings.warn(
            f"{package}.{name} is deprecated: it is the internal module {moved[name]} now; use the names "
            f"{package} exports (its __all__)",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(moved[name])

    return __getattr__


# ---- the environment -----------------------------------------------------------------------------
# Every variable the package reads is checked here, before its value reaches the standard library or a client
# library (a huge timeout overflows a socket's, a 5,000-byte path is ENAMETOOLONG): a refusal is one
# EnvironmentVariableError naming the variable, its value and what is accepted.

MAX_TIMEOUT_S = 24 * 3600.0
"""The longest network timeout accepted from the environment, in seconds (a day; sockets take far less
than the largest float)."""

MAX_RANK = 1 << 20
"""The largest process rank or count accepted from ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``."""

PATH_MAX = 4096
"""Bytes in a whole path on Linux; a path from the environment may be no longer (each name at most 255)."""

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def environment_error(name: str, value: str, expected: str) -> EnvironmentVariableError:
    """The one-line refusal of ``name=value``: ``"<name>='<value>': <expected>"`` (a long value cut)."""
    shown = value if len(value) <= 80 else f"{value[:60]}... ({len(value)} characters)"
    error = EnvironmentVariableError(f"{name}={shown!r}: {expected}")
    error.variable = name
    return error


def environment_value(name: str) -> str | None:
    """``name``'s value without surrounding spaces; ``None`` when unset or empty (what "not set" means here)."""
    value = os.environ.get(name, "").strip()
    return value or None


def environment_number(name: str, default: float, *, minimum: float, maximum: float, integer: bool = False) -> float:
    """``name`` as a number in [``minimum``, ``maximum``] (an integer when ``integer``), ``default`` when unset.

    Raises:
        EnvironmentVariableError: anything else (text, ``inf``, ``nan``, out of range), naming the variable.
    """
    raw = environment_value(name)
    if raw is None:
        return default
    try:
        value = float(int(raw)) if integer else float(raw)
    except (ValueError, OverflowError):  # not a number; an integer beyond any float
        value = math.nan
    if not minimum <= value <= maximum:  # also refuses nan
        kind = "an integer" if integer else "a number"
        raise environment_error(name, raw, f"expected {kind} from {minimum:g} to {maximum:g}")
    return value


def environment_rank(name: str, default: int = 0) -> int:
    """A process rank or count set by a launcher (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``): an integer from
    ``default`` to ``MAX_RANK``; ``EnvironmentVariableError`` naming the variable otherwise."""
    return int(environment_number(name, default, minimum=default, maximum=MAX_RANK, integer=True))


def environment_flag(name: str) -> bool:
    """``name`` as a yes/no switch: ``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/``off`` (any case);
    unset or empty is ``False``. Anything else is an ``EnvironmentVariableError`` naming the variable."""
    raw = environment_value(name)
    if raw is None or raw.lower() in _FALSE:
        return False
    if raw.lower() in _TRUE:
        return True
    raise environment_error(name, raw, f"expected one of {', '.join(_TRUE)} or {', '.join(_FALSE)}")


def environment_folder(name: str) -> Path | None:
    """``name`` as an absolute folder (``~`` expanded), ``None`` when unset; its names are checked against
    ``NAME_MAX`` and ``PATH_MAX`` and it may not be an existing file. Nothing is created.

    Raises:
        EnvironmentVariableError: a relative path, an unknown ``~user``, a name or path too long for the file
            system, or an existing file, naming the variable.
    """
    raw = environment_value(name)
    if raw is None:
        return None
    try:
        path = Path(raw).expanduser()
    except RuntimeError:  # ~user of no user
        raise environment_error(name, raw, "the user after ~ is unknown on this system") from None
    check_folder_path(path, name, raw)
    return path


def path_fits(path: str | os.PathLike) -> bool:
    """Whether the file system can take ``path`` at all: each name at most ``NAME_MAX`` bytes, the whole at most
    ``PATH_MAX``. A path that does not fit cannot exist: probing it (``is_file``) would raise ENAMETOOLONG."""
    encoded = os.fsencode(path)
    return len(encoded) <= PATH_MAX and all(len(part) <= NAME_MAX for part in encoded.split(os.fsencode(os.sep)))


def check_folder_path(path: Path, name: str, raw: str) -> None:
    """Refuse (``EnvironmentVariableError`` naming ``name``) a folder path the file system cannot take."""
    if not path.is_absolute():
        raise environment_error(name, raw, "expected an absolute folder (or one starting with ~/)")
    if not path_fits(path):
        raise environment_error(name, raw, f"names are at most {NAME_MAX} bytes and paths {PATH_MAX} on this system")
    if path.is_file():
        raise environment_error(name, raw, "is a file; expected a folder")
