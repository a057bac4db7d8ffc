"""Padding images to sizes the encoder and decoder can take, so outputs keep the exact input size.

The encoder pools three times and the decoder upsamples three times, so sides are padded to a multiple
of 8; every block's feature map must also be at least 2x2 for its reflection padding. The optimisation
backend, which reads deeper layers (relu5_1) and has no decoder, pads only to ``min_side(layers)``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch.nn.functional as F
from torch import Tensor

from ._encoder import CONTENT_LAYER, LAYER_NAMES


def min_side(layers: Iterable[str]) -> int:
    """The smallest image side from which the encoder reaches every one of ``layers``: each pooling halves
    the map (rounding up) and each block's reflection padding needs 2 pixels, so ``2 ** pools + 1``."""
    pools = max(sum(name.startswith("pool") for name in LAYER_NAMES[: LAYER_NAMES.index(layer)]) for layer in layers)
    return 2**pools + 1


MULTIPLE = 8  # the encoder pools three times; the decoder upsamples three times
MIN_SIDE = 16  # block 4 of the encoder runs at H/8 and its reflection padding needs a map of at least 2x2
MIN_STYLE_SIDE = min_side((CONTENT_LAYER,))  # the same condition without rounding up to a multiple of 8: 9


def padded_side(side: int) -> int:
    """The side an image of ``side`` pixels is padded to: a multiple of 8, at least 16."""
    return max(MIN_SIDE, -(-side // MULTIPLE) * MULTIPLE)


def feature_side(side: int) -> int:
    """Cells of the relu4_1 grid that cover ``side`` image pixels (``ceil(side / 8)``)."""
    return -(-side // MULTIPLE)


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


def pad_for_layers(x: Tensor, layers: Iterable[str]) -> Tensor:
    """Pad an image (bottom and right) only as much as the encoder needs to reach ``layers``."""
    side = min_side(layers)
    return pad_bottom_right(x, max(x.shape[-2], side), max(x.shape[-1], side))


def min_encodable(x: Tensor) -> Tensor:
    """Pad an image only as much as the encoder needs for AdaIN (styles have no output size to keep)."""
    return pad_for_layers(x, (CONTENT_LAYER,))


def feature_mask(mask: Tensor, height: int, width: int) -> Tensor:
    """A mask of an ``height x width`` image on its padded relu4_1 grid (the grid ``encode`` gives for the
    image padded by ``pad_bottom_right`` to ``padded_side``): ``(1, 1, padded_side / 8, ...)`` bool.

    ``mask`` is ``(h, w)`` bool at any resolution, binarised already. It is nearest-resized to the cells
    that cover the image (as the original resizes the mask to the feature map), then extended over the
    padding cells by reflection, like the image.
    """
    cells = F.interpolate(mask[None, None].float(), size=(feature_side(height), feature_side(width)), mode="nearest")
    return pad_bottom_right(cells, padded_side(height) // MULTIPLE, padded_side(width) // MULTIPLE) >= 0.5
