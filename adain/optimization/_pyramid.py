"""The multi-scale pyramid: which sizes to optimise at, and moving state from one scale to the next."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor


def pyramid_sizes(
    height: int, width: int, *, min_size: int = 128, factor: float = math.sqrt(2)
) -> list[tuple[int, int]]:
    """``(h, w)`` of every scale, smallest first, ending at exactly ``(height, width)``.

    Each scale is ``factor`` (``sqrt(2)``) times the previous one; the smallest has a shorter side of at
    least ``min_size`` (a single scale when the target is already that small). Aspect is kept.
    """
    short = min(height, width)
    sizes = [(height, width)]
    k = 1
    while short / factor**k >= min_size - 1e-6:  # tolerance: sqrt(2)**2 is not exactly 2
        s = factor**k
        sizes.append((max(1, round(height / s)), max(1, round(width / s))))
        k += 1
    return sizes[::-1]


def resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of ``(N, C, h, w)`` to ``size`` (antialiased when shrinking); returns ``x`` if unchanged."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def carry_up(x: Tensor, previous_content: Tensor, content: Tensor) -> Tensor:
    """The start at the next scale: ``content`` (``(1, C, h, w)`` at that scale) plus what the optimisation
    changed at the previous scale (``x - previous_content``), upsampled to ``(h, w)``.

    Upsampling only the change keeps the sharper content of the larger scale: an upsampled image alone is
    blurry, which costs many full-size steps to undo.
    """
    return content + resize(x - previous_content, (content.shape[-2], content.shape[-1]))
