"""The encoder and decoder on a fixed-size canvas that holds a smaller image at its top-left corner.

A compiled graph is specialised to its input shape; ``adain.inference._compiled`` runs images of many sizes through
a few canvas sizes instead. For the result on the image's own cells to be the image's result alone, the
image's bottom and right borders must behave as the borders of a map of its own size, at every layer:

- before each reflection-padded 3x3 convolution, the row just below the valid region and the column just
  to its right are overwritten with what reflection padding of the valid region puts there (row ``h - 2``,
  column ``w - 2``), so the valid outputs read only valid cells and those reflections;
- before each 2x2 max pool (``ceil_mode``), that row and column repeat the last valid ones, so the partial
  window of an odd-sized map sees the same values as alone;
- the valid size follows the network (halved rounding up at each pool, doubled at each upsampling).

The cells outside the valid region hold unspecified (finite) values and are cropped by the caller. The
valid sizes are 0-dim integer tensors, so one compiled graph serves every image size on a canvas.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._decoder import DECODER_OUTPUT, DECODER_PLAN, Decoder
from ._encoder import CONTENT_LAYER, ENCODER_PLAN, VGGEncoder
from ._walk import Ops, walk


def _edge(h: Tensor, hv: Tensor, wv: Tensor, shift: int) -> Tensor:
    """``h`` with row ``hv`` := row ``hv - shift`` and then column ``wv`` := column ``wv - shift``."""
    rows = torch.arange(h.shape[-2], device=h.device).view(-1, 1)
    cols = torch.arange(h.shape[-1], device=h.device)
    h = torch.where(rows == hv, h.roll(shift, dims=-2), h)
    return torch.where(cols == wv, h.roll(shift, dims=-1), h)


class _CanvasOps(Ops):
    """``Ops`` on a canvas whose top-left ``hv x wv`` cells are valid (0-dim integer tensors, updated as the
    walk pools and upsamples): the borders fixed up before each convolution and pooling, as described above."""

    def __init__(self, network: nn.Module, hv: Tensor, wv: Tensor) -> None:
        super().__init__(network)
        self.hv, self.wv = hv, wv

    def conv(self, name: str, h: Tensor) -> Tensor:
        return super().conv(name, _edge(h, self.hv, self.wv, 2))  # the reflection of row/column hv-1/wv-1's neighbour

    def relu(self, name: str, h: Tensor) -> Tensor:
        return torch.relu(h)

    def pool(self, name: str, h: Tensor) -> Tensor:
        h = super().pool(name, _edge(h, self.hv, self.wv, 1))
        self.hv, self.wv = (self.hv + 1) // 2, (self.wv + 1) // 2
        return h

    def up(self, name: str, h: Tensor) -> Tensor:
        self.hv, self.wv = self.hv * 2, self.wv * 2
        return super().up(name, h)


def encode_on_canvas(encoder: VGGEncoder, x: Tensor, hv: Tensor, wv: Tensor) -> Tensor:
    """``(N, 3, H, W)`` canvas whose top-left ``hv x wv`` is the image -> relu4_1 features ``(N, 512, H', W')``
    whose top-left ``ceil(hv/8) x ceil(wv/8)`` cells are the image's own (``encoder.forward`` with max pooling)."""
    return walk(ENCODER_PLAN, x, _CanvasOps(encoder, hv, wv), (CONTENT_LAYER,))[CONTENT_LAYER]


def decode_on_canvas(decoder: Decoder, t: Tensor, hv: Tensor, wv: Tensor) -> Tensor:
    """``(N, 512, h, w)`` canvas whose top-left ``hv x wv`` cells are the features -> ``(N, 3, 8h, 8w)`` whose
    top-left ``8hv x 8wv`` pixels are ``decoder(features)``."""
    return walk(DECODER_PLAN, t, _CanvasOps(decoder, hv, wv), (DECODER_OUTPUT,))[DECODER_OUTPUT]
