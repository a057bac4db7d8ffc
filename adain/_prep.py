"""Argument checks, padding and colour-space helpers for ``adain.stylize`` (tensor and value level only)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .device import free_memory
from .errors import InputError

MULTIPLE = 8  # the encoder pools three times; the decoder upsamples three times
MIN_SIDE = 16  # block 4 of the encoder runs at H/8 and its reflection padding needs a map of at least 2x2
MIN_STYLE_SIDE = 9  # the same condition without rounding up to a multiple of 8: ceil(side / 8) >= 2
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_COLOR_MODES = {False: None, None: None, True: "coral", "coral": "coral", "luminance": "luminance"}


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, str):
        name = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32"}.get(dtype, dtype)
        if name in _DTYPES:
            return _DTYPES[name]
    elif dtype in _DTYPES.values():
        return dtype
    raise InputError(f"dtype: expected one of {sorted(_DTYPES)} (or None for float32), got {dtype!r}")


def check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha: must be a number in [0, 1] (0 = content only, 1 = full style), got {alpha!r}")
    return float(alpha)


def color_mode(preserve_color: bool | str | None) -> str | None:
    if isinstance(preserve_color, (bool, str)) or preserve_color is None:
        if preserve_color in _COLOR_MODES:
            return _COLOR_MODES[preserve_color]
    raise InputError(f"preserve_color: expected False, True, 'coral' or 'luminance', got {preserve_color!r}")


def normalise_weights(weights: Sequence[float] | None, n_styles: int) -> list[float]:
    """Style weights summing to 1; equal when ``None``."""
    if weights is None:
        return [1.0 / n_styles] * n_styles
    try:
        values = [float(w) for w in weights]
    except (TypeError, ValueError):
        raise InputError(f"weights: expected a sequence of numbers, got {weights!r}") from None
    if len(values) != n_styles:
        raise InputError(f"weights: got {len(values)} weights for {n_styles} style(s); give one per style")
    if not all(math.isfinite(w) and w >= 0 for w in values):
        raise InputError(f"weights: must be finite and non-negative, got {values}")
    total = sum(values)
    if total <= 0:
        raise InputError("weights: at least one weight must be positive")
    return [w / total for w in values]


def padded_side(side: int) -> int:
    return max(MIN_SIDE, -(-side // MULTIPLE) * MULTIPLE)


def pad_bottom_right(x: Tensor, height: int, width: int) -> Tensor:
    """Extend ``(N, C, H, W)`` to ``(N, C, height, width)`` by reflection at the bottom and right.

    Padding only at the far edges keeps the feature grid aligned with the reference (feature cell i
    covers pixels 8i..8i+7), so the output is cropped from the top-left. Reflection needs the pad to be
    smaller than the side, so tiny images are reflected repeatedly; a 1-pixel side is replicated.
    """
    while x.shape[-2] < height or x.shape[-1] < width:
        h, w = x.shape[-2:]
        dh, dw = min(height - h, h - 1), min(width - w, w - 1)
        mode = "reflect"
        if (height > h and dh == 0) or (width > w and dw == 0):
            dh, dw, mode = height - h, width - w, "replicate"
        x = F.pad(x, (0, dw, 0, dh), mode=mode)
    return x


def min_encodable(x: Tensor) -> Tensor:
    """Pad a style image only as much as the encoder needs (styles have no output size to keep)."""
    h, w = x.shape[-2:]
    return pad_bottom_right(x, max(h, MIN_STYLE_SIDE), max(w, MIN_STYLE_SIDE))


def available_memory(device: torch.device) -> int | None:
    """80% of the memory free on ``device`` now, in bytes, or ``None`` when it cannot be told."""
    free = free_memory(device)
    return None if free is None else free * 8 // 10


_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def rgb_to_yiq(x: Tensor) -> Tensor:
    return torch.einsum("ij,njhw->nihw", _YIQ.to(x), x)


def yiq_to_rgb(x: Tensor) -> Tensor:
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(_YIQ.double()).to(x), x)
