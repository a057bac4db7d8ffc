"""The one vocabulary of both backends: checks of the arguments ``stylize``, ``Stylizer`` and ``gatys`` share.

The same concept has the same name, accepted values and meaning in both backends and on the command
line: ``alpha``, ``preserve_color`` (``None``/``False``, ``"coral"`` (alias ``True``), ``"luminance"``),
``style_weights`` (one blend weight per style), sizes (``None`` keeps the size), ``max_memory`` and
``dtype`` (see ``adain.runtime``). Spellings of the first versions (``weights=``, ``style_blend=``,
``memory_limit=``, ``preserve_color="match"``) still work with a ``DeprecationWarning`` naming the new one.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

from .errors import InputError

__all__ = ["check_alpha", "color_mode", "normalize_style_weights", "check_size", "pop_deprecated",
           "COLOR_MODES"]

COLOR_MODES = ("coral", "luminance")
"""Colour preservation modes: CORAL recolours the style to the content before encoding (the reference's
``preserve_color``); ``"luminance"`` transfers style to the luma only and keeps the content's chroma."""


def check_alpha(alpha: Any) -> float:
    """``alpha`` as a float in [0, 1] (numpy scalars accepted)."""
    if isinstance(alpha, numbers.Real) and not isinstance(alpha, bool) and 0.0 <= float(alpha) <= 1.0:
        return float(alpha)
    raise InputError(f"alpha: must be a number in [0, 1] (0 = content only, 1 = full style), got {alpha!r}")


def color_mode(preserve_color: Any) -> str | None:
    """``preserve_color`` -> ``None``, ``"coral"`` or ``"luminance"``."""
    if preserve_color is None or preserve_color is False:
        return None
    if preserve_color is True:
        return "coral"
    if preserve_color == "match":
        warnings.warn("preserve_color='match' is deprecated; use preserve_color='coral' (the same CORAL colour "
                      "matching)", DeprecationWarning, stacklevel=3)
        return "coral"
    if isinstance(preserve_color, str) and preserve_color in COLOR_MODES:
        return preserve_color
    raise InputError(f"preserve_color: expected None/False, 'coral' (or True) or 'luminance', got {preserve_color!r}")


def normalize_style_weights(style_weights: Sequence[float] | None, n_styles: int) -> list[float]:
    """One blend weight per style, normalised to sum 1; equal when ``None``."""
    if style_weights is None:
        return [1.0 / n_styles] * n_styles
    if isinstance(style_weights, (str, bytes)) or not isinstance(style_weights, Sequence):
        raise InputError(f"style_weights: expected a sequence of numbers, one per style, got {style_weights!r}")
    values = []
    for w in style_weights:
        if not isinstance(w, numbers.Real) or isinstance(w, bool):
            raise InputError(f"style_weights: expected numbers, got {style_weights!r}")
        values.append(float(w))
    if len(values) != n_styles:
        raise InputError(f"style_weights: got {len(values)} weights for {n_styles} style(s); give one per style")
    if not all(math.isfinite(w) and w >= 0 for w in values):
        raise InputError(f"style_weights: must be finite and non-negative, got {values}")
    total = sum(values)
    if total <= 0:
        raise InputError("style_weights: at least one weight must be positive")
    return [w / total for w in values]


def check_size(size: Any, what: str) -> int | None:
    """A shorter-side size: a positive integer (integral floats and numpy integers accepted) or ``None``."""
    if size is None:
        return None
    if isinstance(size, numbers.Real) and not isinstance(size, bool):
        value = float(size)
        if math.isfinite(value) and value >= 1 and value == int(value):
            return int(value)
    raise InputError(f"{what}: size must be a positive integer or None (keep the size), got {size!r}")


def pop_deprecated(options: dict[str, Any], old: str, new: str, value: Any, where: str) -> Any:
    """``options[old]`` (removed from ``options``) when the deprecated spelling ``old`` was used, with a
    ``DeprecationWarning`` naming ``new``; otherwise ``value``. Both given is an ``InputError``."""
    if old not in options:
        return value
    if value is not None:
        raise InputError(f"{where}: {old}= is the deprecated spelling of {new}=; give only {new}=")
    warnings.warn(f"{where}: {old}= is deprecated; use {new}=", DeprecationWarning, stacklevel=3)
    return options.pop(old)
