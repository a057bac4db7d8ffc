"""What each pyramid scale's objective measures: the style targets, and the loss terms built at a scale.

``style_targets`` puts the style images on the device once per run (luma-matched for
``preserve_color='luminance'``) with their blend weights or region guides; ``scale_objective`` encodes the
content and the styles at one scale into the content and style loss terms of an ``Objective``;
``measure_pool_scale`` measures the factors that keep average pooling's activations as large as max pooling's.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._arguments import normalize_style_weights
from ..modeling import _padding as padding
from ..modeling._color import luma, match_luma
from ._losses import STYLE_LOSSES, ContentLoss, relative
from ._optimize import Objective
from ._options import GatysOptions
from ._pyramid import resize

_POOLS = {"pool1": "relu1_2", "pool2": "relu2_2", "pool3": "relu3_4", "pool4": "relu4_4"}


@dataclass(frozen=True)
class Targets:
    """What the style terms are measured from, at every scale: the style images on the device (luma-matched
    with ``preserve_color='luminance'``), their blend weights, and the region guides (``None``: no masks)."""

    styles: list[Tensor]
    blend: list[float]
    masks: list[Tensor] | None


def style_targets(opts: GatysOptions, styles: list[Tensor], content: Tensor, masks: list[Tensor] | None) -> Targets:
    """The ``Targets`` of a run on ``content``'s device, from the ``(3, H, W)`` style images, the
    ``(1, C, H, W)`` content as optimised (its luma with ``preserve_color='luminance'``) and the region guides."""
    device = content.device
    styles = [s[None].to(device) for s in styles]
    if opts.preserve_color == "luminance":
        styles = [match_luma(luma(s), content).expand(-1, 3, -1, -1) for s in styles]
    return Targets(
        styles,
        normalize_style_weights(opts.style_weights, len(styles)),
        [m.to(device) for m in masks] if masks is not None else None,
    )


def measure_pool_scale(encoder: nn.Module, image: Tensor, autocast: torch.dtype | None) -> dict[str, float]:
    """Factors making average pooling's output as large (on average) as max pooling's, per pool layer.

    Average pooling of a ReLU map is smaller than max pooling of it, and the loss shrinks layer after
    layer; we measure each pool's input in the max-pooling network once (on the content at the first
    scale) and scale the average-pooled output by ``mean(maxpool(a)) / mean(avgpool(a))``.
    """
    image = padding.pad_for_layers(image, _POOLS.values())  # tiny images, as the objective pads them
    with torch.no_grad(), torch.autocast(image.device.type, dtype=autocast) if autocast else contextlib.nullcontext():
        taps = encoder(image, tuple(_POOLS.values()), pooling="max")
    scale = {}
    for pool, layer in _POOLS.items():
        a = taps[layer].float()
        avg = F.avg_pool2d(a, 2, 2, ceil_mode=True).mean()
        scale[pool] = float(F.max_pool2d(a, 2, 2, ceil_mode=True).mean() / avg.clamp_min(1e-12))
    return scale


def scale_objective(
    encoder: nn.Module,
    opts: GatysOptions,
    content_s: Tensor,
    targets: Targets,
    hw: tuple[int, int],
    style_hw: list[tuple[int, int]],
    pool_scale: dict[str, float] | None,
    autocast: torch.dtype | None,
) -> Objective:
    """The loss at one pyramid scale: content and style targets measured from ``content_s`` (of size ``hw``)
    and the styles resized to ``style_hw``. The features are freed on return; the loss terms keep only
    their targets."""
    probe = Objective(
        encoder,
        [],
        [],
        tv_weight=0,
        normalize=False,
        pooling=opts.pooling,
        pool_scale=pool_scale,
        autocast_dtype=autocast,
    )
    probe.layers = tuple(dict.fromkeys(list(opts.content_layers) + list(opts.style_layers)))
    with torch.no_grad():
        c_feats = probe.features(content_s)
        s_feats = [probe.features(resize(s, sh)) for s, sh in zip(targets.styles, style_hw)]
    content_terms = [
        _term(opts, layer, ContentLoss(c_feats[layer]), opts.content_weight) for layer in opts.content_layers
    ]
    style_terms = _style_terms(opts, c_feats, s_feats, targets, hw)
    return Objective(
        encoder,
        content_terms,
        style_terms,
        tv_weight=opts.tv_weight,
        normalize=opts.normalize_gradients,
        pooling=opts.pooling,
        pool_scale=pool_scale,
        autocast_dtype=autocast,
    )


def _style_terms(
    opts: GatysOptions,
    c_feats: dict[str, Tensor],
    s_feats: list[dict[str, Tensor]],
    targets: Targets,
    hw: tuple[int, int],
) -> list[tuple[str, nn.Module, float]]:
    """``(layer, loss, weight)`` per style layer: one loss of the blended styles, or with masks one per
    style, weighted by its region resized to the layer's feature map."""
    loss_cls = STYLE_LOSSES[opts.style_loss]
    layers = list(opts.content_layers) + list(opts.style_layers)
    terms: list[tuple[str, nn.Module, float]] = []
    for layer, lw in zip(opts.style_layers, opts.layer_weight_values()):
        if targets.masks is None:
            loss = loss_cls.from_features([f[layer] for f in s_feats], targets.blend)
            terms.append(_term(opts, layer, loss, opts.style_weight * lw))
            continue
        for k, mask in enumerate(targets.masks):
            # Padded like the image (see Objective.features), then resized to the layer's feature map.
            feat_hw = (c_feats[layer].shape[-2], c_feats[layer].shape[-1])
            region = resize(padding.pad_for_layers(resize(mask, hw), layers), feat_hw)
            loss = loss_cls.from_features([s_feats[k][layer]], [1.0], weight=region)
            terms.append(_term(opts, layer, loss, opts.style_weight * lw))
    return terms


def _term(opts: GatysOptions, layer: str, loss, weight: float) -> tuple[str, nn.Module, float]:
    """``(layer, loss, weight)``, the weight divided by the target's energy with ``loss_scale="relative"``."""
    return layer, loss, relative(weight, loss) if opts.loss_scale == "relative" else weight
