"""Colour spaces for colour preservation, shared by both backends.

Luminance-only transfer (Gatys et al. 2017, "Controlling perceptual factors") stylizes the Rec. 601
luma as a grey image and puts the content's chroma back. Chroma is taken in YIQ: a fixed linear map
whose Y row is the Rec. 601 luma, so luma and chroma separate and recombine exactly.

Tensors are ``(..., 3, H, W)`` RGB in [0, 1]; luma is ``(..., 1, H, W)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=torch.float64)
_YIQ_INVERSE = torch.linalg.inv(_YIQ)


def luma(rgb: Tensor) -> Tensor:
    """Rec. 601 luma ``0.299 R + 0.587 G + 0.114 B`` of ``(..., 3, H, W)`` -> ``(..., 1, H, W)``."""
    r, g, b = rgb.unbind(-3)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(-3)


def rgb_to_yiq(rgb: Tensor) -> Tensor:
    """``(..., 3, H, W)`` RGB -> YIQ (Y = Rec. 601 luma, I and Q centred on 0)."""
    return torch.einsum("ij,...jhw->...ihw", _YIQ.to(rgb), rgb)


def yiq_to_rgb(yiq: Tensor) -> Tensor:
    """Inverse of ``rgb_to_yiq`` (not clamped)."""
    return torch.einsum("ij,...jhw->...ihw", _YIQ_INVERSE.to(yiq), yiq)


def replace_luma(rgb: Tensor, y: Tensor) -> Tensor:
    """``rgb``'s chroma with luma ``y`` (``(..., 1, H, W)``, same size): the result of luminance-only
    transfer. Not clamped."""
    return yiq_to_rgb(torch.cat([y, rgb_to_yiq(rgb)[..., 1:, :, :]], dim=-3))


def match_luma(y: Tensor, reference: Tensor) -> Tensor:
    """Map luma ``y`` affinely to the mean and standard deviation of ``reference``, clamped to [0, 1].

    Done to the style's luma before luminance-only transfer, so that the style does not shift the
    content's overall brightness and contrast (Gatys et al. 2016, "Preserving colour").
    """
    std_y, mean_y = torch.std_mean(y)
    std_r, mean_r = torch.std_mean(reference)
    return ((y - mean_y) * (std_r / std_y.clamp_min(1e-6)) + mean_r).clamp(0, 1)
