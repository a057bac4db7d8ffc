"""The network as two fixed-signature graphs, for exporters (ONNX): tensors in, tensors out, no Python options.

``StyleStatsGraph``: style image -> relu4_1 mean and std (``calc_mean_std``: unbiased variance + eps).
``StylizeGraph``: padded content image, style statistics and alpha -> stylized image clamped to [0, 1].
Together they compute what ``adain.Stylizer`` computes for one style (without masks, blends or colour
preservation, which callers can build from the statistics), on a content padded by the caller
(``padding.pad_bottom_right`` to ``padding.padded_side``) and cropped back afterwards.

Content statistics are taken over the whole padded feature map. ``Stylizer`` takes them over the cells
that cover the image, which are the same cells whenever both sides are at least 9 px (``ceil(side / 8)``
cells cover a side padded to ``8 * ceil(side / 8)``); only a side under 9 px, padded to 16, differs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..modeling._decoder import Decoder
from ..modeling._encoder import CONTENT_LAYER, VGGEncoder
from ..modeling._ops import affine, calc_mean_std


class StyleStatsGraph(nn.Module):
    """``style`` ``(S, 3, h, w)`` in [0, 1], sides at least 9 -> ``(style_mean, style_std)``, each
    ``(S, 512, 1, 1)``."""

    def __init__(self, encoder: VGGEncoder, eps: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.eps = eps

    def forward(self, style: Tensor) -> tuple[Tensor, Tensor]:
        feat = self.encoder(style, (CONTENT_LAYER,))[CONTENT_LAYER]
        return calc_mean_std(feat, self.eps)


class StylizeGraph(nn.Module):
    """``(content, style_mean, style_std, alpha)`` -> ``image``, the ``Stylizer`` pipeline on a padded content.

    Inputs: ``content`` ``(N, 3, H, W)`` in [0, 1], ``H`` and ``W`` multiples of 8 and at least 16;
    ``style_mean`` and ``style_std`` ``(N or 1, 512, 1, 1)``; ``alpha`` ``(1,)`` in [0, 1]. Output:
    ``(N, 3, H, W)`` clamped to [0, 1], as ``Stylizer`` returns it. The order of operations is
    ``Stylizer``'s, so ``alpha`` 1 and 0 give exactly AdaIN and the plain content features.
    """

    def __init__(self, encoder: VGGEncoder, decoder: Decoder, eps: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.eps = eps

    def forward(self, content: Tensor, style_mean: Tensor, style_std: Tensor, alpha: Tensor) -> Tensor:
        f_c = self.encoder(content, (CONTENT_LAYER,))[CONTENT_LAYER]
        t = affine(f_c, calc_mean_std(f_c, self.eps), (style_mean, style_std))
        a = alpha.reshape(-1, 1, 1, 1)
        return torch.clamp(self.decoder(t * a + f_c * (1 - a)), 0, 1)


class EncoderGraph(nn.Module):
    """``image`` ``(N, 3, H, W)`` in [0, 1], sides at least 9 -> relu4_1 ``features`` ``(N, 512, ceil(H/8),
    ceil(W/8))``: ``AdaINModel.encode`` as a graph of one input (the onnxruntime backend's encoder)."""

    def __init__(self, encoder: VGGEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, image: Tensor) -> Tensor:
        return self.encoder(image, (CONTENT_LAYER,))[CONTENT_LAYER]
