"""SSIM (Wang et al. 2004), the structural similarity MicroAST and others report between output and content.

The standard parameters: an 11x11 Gaussian window of standard deviation 1.5, ``K1 = 0.01``, ``K2 = 0.03``,
a data range of 1 (images in [0, 1]), statistics over the window's valid positions only (no padding), computed
per channel and averaged over channels and positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03


def _gaussian_window(size: int, sigma: float, channels: int, device: torch.device) -> Tensor:
    x = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :]).to(torch.float32)
    return window.expand(channels, 1, size, size).contiguous()


@torch.no_grad()
def ssim(a: Tensor, b: Tensor, *, data_range: float = 1.0) -> Tensor:
    """The mean SSIM of each pair of images.

    Arguments:
        a: ``(N, C, H, W)`` float images, values in ``[0, data_range]``; H and W at least 11.
        b: images of the same shape as ``a``.
        data_range: the span of the values (1 for [0, 1] images).

    Returns:
        ``(N,)`` float32 in [-1, 1]: 1 for identical images.

    Raises:
        ValueError: the shapes differ or an image is smaller than the 11x11 window.
    """
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(f"ssim needs two (N, C, H, W) tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if min(a.shape[-2:]) < WINDOW:
        raise ValueError(f"ssim needs images of at least {WINDOW}x{WINDOW} pixels, got {tuple(a.shape[-2:])}")
    a, b = a.float(), b.float()
    channels = a.shape[1]
    window = _gaussian_window(WINDOW, SIGMA, channels, a.device)

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(x, window, groups=channels)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return index.flatten(1).mean(dim=1)
