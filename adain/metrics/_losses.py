"""The AdaIN paper's own quality measures and the Gram style loss, computed with a given VGG encoder.

Huang & Belongie (ICCV 2017), sec. 6 and Table 1: the *content loss* is the mean squared error between the
relu4_1 features of the output and the AdaIN target ``t = AdaIN(f(c), f(s))`` (not the content's features);
the *style loss* sums, over relu1_1, relu2_1, relu3_1 and relu4_1, the mean squared errors of the channel means
and of the channel standard deviations of the output's and the style's features. Both are the training
objective's terms (``adain.training``), with unit layer weights, reported per image pair.

The *Gram loss* (Gatys et al. 2016) is the mean squared error between Gram matrices ``F F^T / (H W)`` of the same
layers, summed over layers. Every function returns one value per pair, ``(N,)`` float32, so that a caller can
average over a data set or look at the worst pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..modeling._encoder import CONTENT_LAYER, STYLE_LAYERS
from ..modeling._ops import EPS, adain, calc_mean_std


def _per_pair_mse(a: Tensor, b: Tensor) -> Tensor:
    """Mean over every dimension but the first: ``(N, ...)`` pairs -> ``(N,)`` float32."""
    return (a.float() - b.float()).pow(2).flatten(1).mean(dim=1)


def _features(encoder: nn.Module, images: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
    return encoder(images.float(), tuple(layers))


@torch.no_grad()
def content_loss(encoder: nn.Module, output: Tensor, content: Tensor, style: Tensor, *, eps: float = EPS) -> Tensor:
    """The AdaIN paper's content loss of each pair: ``mean((relu4_1(output) - t)^2)``, ``t`` the AdaIN target
    ``AdaIN(relu4_1(content), relu4_1(style))``.

    Arguments:
        encoder: a ``VGGEncoder`` (``adain.modeling.VGGEncoder``, an ``AdaINModel``'s ``encoder``) reaching relu4_1.
        output: ``(N, 3, H, W)`` stylized images, RGB float in [0, 1], on the encoder's device.
        content: ``(N, 3, H, W)`` the content images the outputs were made from (same size as ``output``).
        style: ``(N, 3, Hs, Ws)`` the style images (any size, shared by the batch).
        eps: the variance epsilon of the channel statistics (the training's ``1e-5``).

    Returns:
        ``(N,)`` float32: one loss per pair (lower is better; 0 means the output has exactly the target features).

    Raises:
        ValueError: ``output`` and ``content`` differ in shape.
    """
    if output.shape != content.shape:
        raise ValueError(f"output {tuple(output.shape)} and content {tuple(content.shape)} must have the same shape")
    f_out = _features(encoder, output, (CONTENT_LAYER,))[CONTENT_LAYER]
    f_c = _features(encoder, content, (CONTENT_LAYER,))[CONTENT_LAYER]
    f_s = _features(encoder, style, (CONTENT_LAYER,))[CONTENT_LAYER]
    return _per_pair_mse(f_out, adain(f_c.float(), f_s.float(), eps))


@torch.no_grad()
def style_loss(
    encoder: nn.Module, output: Tensor, style: Tensor, *, layers: Sequence[str] = STYLE_LAYERS, eps: float = EPS
) -> Tensor:
    """The AdaIN paper's style loss of each pair: over ``layers``, the sum of ``MSE(mean)`` + ``MSE(std)`` of the
    features' channel statistics (unbiased variance + ``eps``, as in training).

    Arguments:
        encoder: a ``VGGEncoder`` reaching the deepest of ``layers``.
        output: ``(N, 3, H, W)`` stylized images, RGB float in [0, 1].
        style: ``(N, 3, Hs, Ws)`` the style image of each pair (sizes may differ from ``output``'s).
        layers: the encoder taps; the paper's relu1_1, relu2_1, relu3_1, relu4_1 by default.
        eps: the variance epsilon.

    Returns:
        ``(N,)`` float32, one loss per pair (lower is better).
    """
    f_out, f_s = _features(encoder, output, layers), _features(encoder, style, layers)
    total = torch.zeros(output.shape[0], device=output.device)
    for name in layers:
        mean_o, std_o = calc_mean_std(f_out[name].float(), eps)
        mean_s, std_s = calc_mean_std(f_s[name].float(), eps)
        total = total + _per_pair_mse(mean_o, mean_s) + _per_pair_mse(std_o, std_s)
    return total


def gram_matrix(features: Tensor) -> Tensor:
    """``(N, C, H, W)`` features -> ``(N, C, C)`` float32 Gram matrices ``F F^T / (H W)``."""
    n, c, h, w = features.shape
    flat = features.float().reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (h * w)


@torch.no_grad()
def gram_loss(encoder: nn.Module, output: Tensor, style: Tensor, *, layers: Sequence[str] = STYLE_LAYERS) -> Tensor:
    """The Gram style loss of each pair: over ``layers``, the sum of ``MSE(gram(output), gram(style))``, with
    Gram matrices normalised by the number of positions (``gram_matrix``), so sizes may differ.

    Arguments:
        encoder: a ``VGGEncoder`` reaching the deepest of ``layers``.
        output: ``(N, 3, H, W)`` stylized images, RGB float in [0, 1].
        style: ``(N, 3, Hs, Ws)`` the style image of each pair.
        layers: the encoder taps (relu1_1..relu4_1 by default).

    Returns:
        ``(N,)`` float32, one loss per pair (lower is better).
    """
    f_out, f_s = _features(encoder, output, layers), _features(encoder, style, layers)
    total = torch.zeros(output.shape[0], device=output.device)
    for name in layers:
        total = total + _per_pair_mse(gram_matrix(f_out[name]), gram_matrix(f_s[name]))
    return total
