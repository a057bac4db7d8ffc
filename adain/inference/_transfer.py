"""AdaIN on padded content features, with the content statistics of the *valid* feature cells only.

The engine pads images at the bottom and right to a multiple of 8 (``adain.modeling._padding``). The
padded border repeats content near those edges; counting its feature cells would bias the statistics
towards them, so the content's mean and standard deviation are taken over the cells that cover the image
(on multiples of 8 there is no padding and this is exactly the reference). With a mask each region has
its own statistics. The statistics are either measured on one feature map (``content_stats``) or
gathered tile by tile over an image too large to encode at once (``Moments``, used by ``adain.inference._tiling``);
``adain`` then applies them, on the whole map or on any tile of it. The style side of the transfer is
a ``Style``: what ``Engine.style`` made of the style images, immutable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..modeling import _padding as padding
from ..modeling._ops import affine, blend_stats, calc_mean_std, masked_mean_std

Stats = tuple[Tensor, Tensor]
"""``(mean, std)``, each ``(N or 1, C, 1, 1)`` float32."""

ContentStats = Stats | list[Stats | None]
"""Without a mask one ``Stats``; with a mask ``[foreground, background]``, ``None`` for a region without a cell
in the whole image (``Moments``, for tiles)."""

StatsHook = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
"""``(mean, std) -> (mean, std)`` of the content features, each ``(N, C, 1, 1)`` float32: given the statistics
measured on a batch (frames in order), returns those AdaIN normalises with (``Engine.run(content_stats=...)``)."""


@dataclass(frozen=True, eq=False)
class Style:
    """What ``Engine.style`` made of one style image or a blend of several: immutable, so one ``Style`` can
    serve any number of contents, frames or threads (a ``Stylizer`` holds the one ``set_style`` made).

    Attributes:
        weights: one blend weight per style, summing to 1 (with a mask each region takes one style instead).
        stats: per style, the ``(mean, std)`` of its relu4_1 features, each ``(1, 512, 1, 1)`` float32, encoded
            once; ``None`` when they depend on the content (``color`` set).
        images: with ``color``, the style images, ``(1, 3, h, w)`` float32 in [0, 1] on the engine's device,
            encoded again for each content (``Engine.style_stats``); else empty.
        mask: ``None``, or with two styles an ``(H, W)`` bool tensor on the device, True where the first style
            goes, at any resolution with the content's aspect ratio (the ``Stylizer`` fits it to each content).
        color: ``None``, ``"coral"`` (each style image recoloured to the content before it is encoded) or
            ``"luminance"`` (style transferred to the content's luma only, its chroma kept).
    """

    weights: tuple[float, ...]
    stats: tuple[Stats, ...] | None
    images: tuple[Tensor, ...] = ()
    mask: Tensor | None = None
    color: str | None = None


def _valid(fg: Tensor, size: tuple[int, int]) -> Tensor:
    """True on the feature cells of ``fg``'s grid that cover a ``size`` image."""
    valid = torch.zeros_like(fg)
    valid[..., : padding.feature_side(size[0]), : padding.feature_side(size[1])] = True
    return valid


def content_stats(f_c: Tensor, fg: Tensor | None, size: tuple[int, int], eps: float) -> ContentStats:
    """The content statistics of the padded features ``f_c`` ``(N, C, h, w)`` of a ``size`` (H, W) image.

    Arguments:
        fg: ``None``, or the mask on ``f_c``'s grid (``padding.feature_mask``, True = first style).
    Returns:
        ``(mean, std)`` over the valid cells (``calc_mean_std``: unbiased variance + ``eps``; a lone cell
        takes the whole padded map, which has no more information but a defined spread); with ``fg`` one
        pair per region (``masked_mean_std``). A region without a valid cell gets finite statistics that
        nothing uses: it has no padding cell either (those reflect valid ones), so ``adain`` never selects
        it; deciding this on the host would make it wait for the device on every masked frame.
    """
    hv, wv = padding.feature_side(size[0]), padding.feature_side(size[1])
    if fg is None:
        return calc_mean_std(f_c[..., :hv, :wv] if hv * wv > 1 else f_c, eps)
    valid = _valid(fg, size)
    return [masked_mean_std(f_c.float(), region & valid, eps) for region in (fg, ~fg)]


def adain(
    f_c: Tensor, c_stats: ContentStats, s_stats: Sequence[Stats], weights: Sequence[float], fg: Tensor | None
) -> Tensor:
    """AdaIN (``affine``) of ``f_c`` (any part of a padded feature map) with given content statistics, as float32.

    Without ``fg`` the styles' statistics are blended with ``weights`` (``blend_stats``); with ``fg`` (on
    ``f_c``'s grid) the first style goes where it is True, the second elsewhere, each region normalised
    with its own content statistics (a region without statistics stays 0, as it has no cell).
    """
    if fg is None:
        assert isinstance(c_stats, tuple), "content_stats gives one pair without a mask"
        return affine(f_c, c_stats, blend_stats([m for m, _ in s_stats], [s for _, s in s_stats], weights))
    assert isinstance(c_stats, list), "content_stats gives one pair per region with a mask"
    out = torch.zeros(f_c.shape, dtype=torch.float32, device=f_c.device)
    for region, c, s in zip((fg, ~fg), c_stats, s_stats):
        if c is not None:
            out = torch.where(region, affine(f_c, c, s), out)
    return out


class Moments:
    """Per-channel count, mean and sum of squared deviations of feature cells, merged part by part in
    float64 (Chan, Golub & LeVeque's parallel update, stable however many parts), so statistics over an
    image's tiles equal those of the whole feature map to float rounding."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: Tensor | None = None  # (C,) float64
        self.m2: Tensor | None = None  # (C,) float64

    def add(self, cells: Tensor) -> None:
        """``(C, K)`` feature cells, any dtype and device."""
        k = cells.shape[-1]
        if k == 0:
            return
        x = cells.double()
        mean = x.mean(-1)
        m2 = (x - mean[:, None]).square_().sum(-1)
        if self.mean is None or self.m2 is None:  # the first cells (count 0)
            self.count, self.mean, self.m2 = k, mean, m2
            return
        n = self.count + k
        delta = mean - self.mean
        self.mean = self.mean + delta * (k / n)
        self.m2 = self.m2 + m2 + delta.square() * (self.count * k / n)
        self.count = n

    def stats(self, eps: float) -> Stats | None:
        """``(mean, std)`` ``(1, C, 1, 1)`` float32 as ``calc_mean_std`` gives them (unbiased variance +
        ``eps``; a single cell has variance 0); ``None`` when nothing was added."""
        if self.mean is None or self.m2 is None:  # nothing added (count 0)
            return None
        var = self.m2 / (self.count - 1) if self.count > 1 else torch.zeros_like(self.m2)
        return self.mean.float().view(1, -1, 1, 1), (var + eps).sqrt().float().view(1, -1, 1, 1)
