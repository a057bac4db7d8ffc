"""Adaptive instance normalisation and the feature statistics it is built on.

Pure tensor functions: tensors in, tensors out, no devices, files or printing. Statistics are always
computed in float32 (or the input's precision if higher) because bf16 means and variances over
hundreds of thousands of positions lose too much precision.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

EPS = 1e-5


def _stats_dtype(x: Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def calc_mean_std(feat: Tensor, eps: float = EPS) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel mean and standard deviation over the spatial positions.

    Arguments:
        feat: ``(N, C, H, W)`` features.
        eps: added to the variance before the square root.

    Returns:
        ``(mean, std)``, each ``(N, C, 1, 1)`` in float32 (float64 if ``feat`` is float64).

    The reference port uses the *unbiased* variance (``Tensor.var``) plus ``eps``; we do the same. A
    1x1 feature map has no unbiased variance (it would be NaN), so a single position falls back to the
    biased variance, 0, giving ``std = sqrt(eps)``.
    """
    if feat.dim() != 4:
        raise ValueError(f"calc_mean_std expects (N, C, H, W) features, got shape {tuple(feat.shape)}")
    n, c = feat.shape[:2]
    flat = feat.reshape(n, c, -1).to(_stats_dtype(feat))
    correction = 1 if flat.shape[-1] > 1 else 0
    var, mean = torch.var_mean(flat, dim=-1, correction=correction)
    return mean.view(n, c, 1, 1), (var + eps).sqrt().view(n, c, 1, 1)


Stats = tuple[Tensor, Tensor]
"""``(mean, std)`` of features, each ``(N or 1, C, 1, 1)``."""


def affine(feat: Tensor, content: Stats, style: Stats) -> Tensor:
    """The AdaIN map: ``style_std * (feat - content_mean) / content_std + style_mean``.

    Every AdaIN of the package (inference, tiling, the ONNX graph, training) is this one function, computed
    as ``feat * scale + shift`` in the statistics' dtype (float32, or float64 when they are): one multiply-add
    per element, and ``feat`` may be any part of the map the statistics were taken from.

    Arguments:
        feat: ``(N, C, H, W)`` features, any float dtype.
        content, style: ``(mean, std)`` pairs broadcasting against ``(N, C, 1, 1)``.
    Returns:
        ``feat``'s shape, in the statistics' dtype.
    """
    (c_mean, c_std), (s_mean, s_std) = content, style
    scale = s_std / c_std
    return feat.to(scale.dtype) * scale + (s_mean - c_mean * scale)


def adain_with_stats(content: Tensor, style_mean: Tensor, style_std: Tensor, eps: float = EPS) -> Tensor:
    """AdaIN against precomputed style statistics (e.g. cached by a ``Stylizer``).

    ``t = style_std * (content - mean(content)) / std(content) + style_mean`` (``affine``). ``style_mean`` and
    ``style_std`` broadcast against ``(N, C, 1, 1)``. Returns ``content``'s shape and dtype.
    """
    return affine(content, calc_mean_std(content, eps), (style_mean, style_std)).to(content.dtype)


def adain(content: Tensor, style: Tensor, eps: float = EPS) -> Tensor:
    """Adaptive instance normalisation (Huang & Belongie 2017, eq. 8).

    Arguments:
        content: ``(N, C, H, W)`` content features.
        style: ``(N or 1, C, H', W')`` style features; spatial size may differ from ``content``.
        eps: added to the variances before the square root (the model's ``ModelConfig.eps``).

    Returns:
        ``(N, C, H, W)``: the content features with each channel's mean and standard deviation replaced
        by the style's.
    """
    if content.dim() != 4 or style.dim() != 4 or content.shape[1] != style.shape[1]:
        raise ValueError(
            f"adain expects (N, C, H, W) content and style with the same C, got {tuple(content.shape)} "
            f"and {tuple(style.shape)}"
        )
    s_mean, s_std = calc_mean_std(style, eps)
    return adain_with_stats(content, s_mean, s_std, eps)


def blend_stats(means: Sequence[Tensor], stds: Sequence[Tensor], weights: Sequence[float]) -> tuple[Tensor, Tensor]:
    """Combine several styles' statistics for style interpolation.

    The reference interpolates the AdaIN *outputs*: ``sum_k w_k * (std_k * c_hat + mean_k)``. Because
    ``c_hat`` is shared and the weights sum to one this equals AdaIN with ``sum w_k std_k`` and
    ``sum w_k mean_k``, so a blend costs one AdaIN instead of K. ``weights`` must already sum to 1.
    """
    return weighted_sum(weights, means), weighted_sum(weights, stds)


def weighted_sum(weights: Sequence[float], tensors: Sequence[Tensor]) -> Tensor:
    """``sum_k weights[k] * tensors[k]``, added in order (at least one term)."""
    terms = [w * t for w, t in zip(weights, tensors)]
    return sum(terms[1:], terms[0])  # from the first term, not from sum's int 0: always a Tensor


def masked_mean_std(feat: Tensor, region: Tensor, eps: float = EPS) -> tuple[Tensor, Tensor]:
    """Mean/std (unbiased, + eps) of ``feat`` (N, C, H, W) over positions where ``region`` (N or 1, 1, H, W) is True."""
    w = region.to(feat.dtype)
    count = w.sum(dim=(2, 3), keepdim=True)
    mean = (feat * w).sum(dim=(2, 3), keepdim=True) / count.clamp_min(1)
    sq = ((feat - mean) ** 2 * w).sum(dim=(2, 3), keepdim=True)
    var = sq / (count - 1).clamp_min(1)  # unbiased, like calc_mean_std; a lone position gets var 0
    return mean, (var + eps).sqrt()


def masked_adain(
    content: Tensor,
    mask: Tensor,
    foreground: tuple[Tensor, Tensor],
    background: tuple[Tensor, Tensor],
    eps: float = EPS,
) -> Tensor:
    """Spatially controlled AdaIN: two regions, each normalised with its own content statistics.

    Arguments:
        content: ``(N, C, H, W)`` content features.
        mask: ``(N or 1, 1, H, W)`` bool, True = foreground. Callers binarise at 0.5 *before* resizing
            to the feature grid with nearest neighbour, as the original does (non-binary pixels would
            otherwise belong to neither region).
        foreground, background: ``(mean, std)`` statistics of the style for each region.
    Returns:
        ``(N, C, H, W)`` features; each region's content statistics are taken over that region only.
    """
    x = content.to(_stats_dtype(content))
    mask = mask.expand(x.shape[0], 1, *x.shape[2:])
    out = torch.zeros_like(x)
    for region, (s_mean, s_std) in ((mask, foreground), (~mask, background)):
        if not bool(region.any()):
            continue
        out = torch.where(region, affine(x, masked_mean_std(x, region, eps), (s_mean, s_std)), out)
    return out.to(content.dtype)


def sqrtm_psd(mat: Tensor) -> Tensor:
    """Square root of a symmetric positive semi-definite matrix, via float64 ``eigh`` (negative
    eigenvalues from rounding are clamped to 0). Returned in float64."""
    vals, vecs = torch.linalg.eigh(mat.double())
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def colour_moments(image: Tensor, chunk: int = 1 << 20) -> tuple[Tensor, Tensor, Tensor]:
    """Per-channel mean ``(3, 1)``, unbiased standard deviation ``(3, 1)`` and centred scatter matrix
    ``sum (x - mean)(x - mean)^T`` ``(3, 3)`` of a ``(3, H, W)`` image, in float64, ``chunk`` pixels at a time."""
    flat = image.reshape(3, -1)
    n = flat.shape[-1]
    parts = range(0, n, chunk)
    sums = [flat[:, i : i + chunk].double().sum(-1, keepdim=True) for i in parts]
    mean = sum(sums[1:], sums[0]) / n
    scatter = torch.zeros(3, 3, dtype=torch.float64, device=image.device)
    for i in parts:
        centred = flat[:, i : i + chunk].double() - mean
        scatter += centred @ centred.T
    return mean, (scatter.diagonal() / (n - 1)).sqrt()[:, None], scatter


def coral(source: Tensor, target: Tensor) -> Tensor:
    """Colour-align ``source`` to ``target`` (CORAL), as the reference does for ``preserve_color``.

    Arguments:
        source: ``(3, H, W)`` image in [0, 1] to recolour (the style image).
        target: ``(3, H', W')`` image whose colour statistics to take (the content image).

    Returns:
        ``(3, H, W)`` recoloured ``source``, not clamped (the reference does not clamp).

    Reproduces the reference quirk on purpose: the covariance is ``z z^T + I`` *not* divided by the
    pixel count, so when the two images differ in size the result is scaled by roughly
    ``sqrt(Ht Wt / (H W))``. The 3x3 algebra runs in float64; the target's statistics are gathered in
    chunks (``colour_moments``), so a huge content image costs no float64 copy of itself.
    """
    if source.dim() != 3 or target.dim() != 3 or source.shape[0] != 3 or target.shape[0] != 3:
        raise ValueError(f"coral expects two (3, H, W) images, got {tuple(source.shape)} and {tuple(target.shape)}")
    s_mean, s_std, s_scatter = colour_moments(source)
    t_mean, t_std, t_scatter = (m.to(source.device) for m in colour_moments(target))
    eye = torch.eye(3, dtype=torch.float64, device=source.device)
    # z z^T of the standardised pixels is the scatter matrix divided by std_i std_j.
    cov_s = s_scatter / (s_std @ s_std.T) + eye
    cov_t = t_scatter / (t_std @ t_std.T) + eye
    transfer = sqrtm_psd(cov_t) @ torch.linalg.inv(sqrtm_psd(cov_s))
    zs = (source.reshape(3, -1).double() - s_mean) / s_std
    out = (transfer @ zs) * t_std + t_mean
    return out.reshape(source.shape).to(source.dtype)
