"""Colour handling for colour preservation: luminance/chroma split (BT.601 YCbCr, full range).

Tensors ``(..., 3, H, W)`` RGB in [0, 1]; luminance ``(..., 1, H, W)`` in [0, 1]; chroma ``(..., 2, H, W)``
(Cb, Cr) centred on 0.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..io import luma

__all__ = ["luminance", "chroma", "combine", "match_luminance"]

luminance = luma  # Rec. 601, the same luma the AdaIN backend uses


def chroma(rgb: Tensor) -> Tensor:
    y = luminance(rgb).squeeze(-3)
    r, _, b = rgb.unbind(-3)
    return torch.stack(((b - y) * 0.564, (r - y) * 0.713), dim=-3)


def combine(y: Tensor, cbcr: Tensor) -> Tensor:
    """Luminance ``y`` and chroma ``cbcr`` -> RGB (not clamped)."""
    y0 = y.squeeze(-3)
    cb, cr = cbcr.unbind(-3)
    r = y0 + 1.403 * cr
    g = y0 - 0.344 * cb - 0.714 * cr
    b = y0 + 1.773 * cb
    return torch.stack((r, g, b), dim=-3)


def match_luminance(y: Tensor, reference: Tensor) -> Tensor:
    """Affinely map luminance ``y`` to the mean and standard deviation of ``reference``, clamped to [0, 1].

    Gatys et al. (2016, "Preserving colour in neural artistic style transfer") do this to the style's
    luminance so the style does not shift the content's overall brightness and contrast.
    """
    std_y, mean_y = torch.std_mean(y)
    std_r, mean_r = torch.std_mean(reference)
    return ((y - mean_y) * (std_r / std_y.clamp_min(1e-6)) + mean_r).clamp(0, 1)
