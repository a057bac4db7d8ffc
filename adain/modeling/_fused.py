"""The inference encoder and decoder with fused CPU kernels: the same function, fewer passes over memory.

On the CPU every reflection-padded 3x3 convolution of the plain modules is three passes over the
activations: the padded copy, the convolution, the ReLU. Here (measured on a 2-core AVX2 EPYC at 512^2,
see docs/guides/speed.md):

- the ReLU runs inside the oneDNN convolution (``torch.ops.mkldnn._convolution_pointwise``, a post-op:
  the same float32 values, no extra pass);
- on large maps (``BORDER_FIX_PIXELS``) the padded copy is skipped: the convolution runs zero-padded and
  its one-pixel border, the only place where zero and reflection padding differ, is recomputed from thin
  reflection-padded strips (about 18% faster on a 64-channel 512^2 layer, slower on small maps where the
  four extra calls cost more than the copy they save).

The weights stay plain (channels_last) tensors that oneDNN reorders on each call. Reordering them once
(``torch.ops.mkldnn._reorder_convolution_weight``) saves up to 7% on a layer at the map size it was
packed for, but the blocked layout is chosen for that size and was measured up to 3x slower at others
(256->512 channels packed for 64^2, run at 32^2): a prepacked model would be fast at one image size only.

Every output value is the plain modules' up to float summation order. Nothing here is used unless
``fusable`` says the kernels exist in this build of torch and work on this machine.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._decoder import DECODER_OUTPUT, DECODER_PLAN, Decoder
from ._encoder import CONTENT_LAYER, ENCODER_PLAN, VGGEncoder
from ._walk import Ops, Step, walk

BORDER_FIX_PIXELS = 256 * 256
"""Maps of at least this many pixels skip the padded copy (zero-padded convolution + border recomputed)."""

_probed: dict[torch.dtype, bool] = {}


def _pointwise():
    return getattr(getattr(torch.ops, "mkldnn", None), "_convolution_pointwise", None)


def fusable(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether the fused oneDNN convolution exists here and runs for ``dtype`` on ``device`` (CPU only).

    The answer comes from running it once on a tiny input (remembered per dtype): a build of torch may
    register the operator without the oneDNN kernel behind it.
    """
    if device.type != "cpu" or dtype not in (torch.float32, torch.bfloat16) or not torch.backends.mkldnn.is_available():
        return False
    if dtype not in _probed:
        op = _pointwise()
        try:
            x = torch.ones(1, 2, 4, 4, dtype=dtype).contiguous(memory_format=torch.channels_last)
            w = torch.ones(2, 2, 3, 3, dtype=dtype)
            y = op(x, w, None, [1, 1], [1, 1], [1, 1], 1, "relu", [], "")
            _probed[dtype] = bool(y.shape == (1, 2, 4, 4) and float(y[0, 0, 1, 1]) == 18.0)
        except (RuntimeError, TypeError, AttributeError):
            _probed[dtype] = False
    return _probed[dtype]


class _Conv:
    """One 3x3 convolution's weights, ready for ``_convolution_pointwise``, and its post-op."""

    def __init__(self, conv: nn.Conv2d, relu: bool) -> None:
        self.bias = None if conv.bias is None else conv.bias.detach()
        self.attr = "relu" if relu else "none"
        self.weight = conv.weight.detach().contiguous(memory_format=torch.channels_last)

    def _run(self, x: Tensor, pad: int) -> Tensor:
        return _pointwise()(x, self.weight, self.bias, [pad, pad], [1, 1], [1, 1], 1, self.attr, [], "")

    def __call__(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` channels_last -> reflection-padded 3x3 convolution (+ ReLU), same ``H, W``."""
        h, w = x.shape[-2:]
        if h * w < BORDER_FIX_PIXELS or h < 2 or w < 2:
            return self._run(F.pad(x, (1, 1, 1, 1), mode="reflect"), 0)
        out = self._run(x, 1)  # right everywhere but on the one-pixel border
        out[..., :1, :] = self._run(F.pad(x[..., :2, :], (1, 1, 1, 0), mode="reflect"), 0)
        out[..., -1:, :] = self._run(F.pad(x[..., -2:, :], (1, 1, 0, 1), mode="reflect"), 0)
        out[..., :, :1] = self._run(F.pad(x[..., :, :2], (1, 0, 1, 1), mode="reflect"), 0)
        out[..., :, -1:] = self._run(F.pad(x[..., :, -2:], (0, 1, 1, 1), mode="reflect"), 0)
        return out


class _FusedOps(Ops):
    """``Ops`` with every 3x3 convolution of ``plan`` a ``_Conv``, its ReLU (when the next step is one) inside it."""

    def __init__(self, network: nn.Module, plan: Sequence[Step]) -> None:
        super().__init__(network)
        after = [*plan[1:], None]
        self.convs = {
            name: _Conv(getattr(network, name), relu=nxt is not None and nxt.kind == "relu")
            for (kind, name), nxt in zip(plan, after)
            if kind == "conv"
        }

    def conv(self, name: str, h: Tensor) -> Tensor:
        return self.convs[name](h)

    def relu(self, name: str, h: Tensor) -> Tensor:
        return h  # done by the convolution before it (a oneDNN post-op)


class FusedEncoder(nn.Module):
    """``VGGEncoder`` for inference up to ``relu4_1`` with fused kernels; other requests go to ``encoder``.

    Arguments:
        encoder: a ``VGGEncoder`` reaching ``relu4_1`` (kept for the layers and options this fast path
            does not cover), already on the CPU in its compute dtype.
    """

    def __init__(self, encoder: VGGEncoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.last_layer = encoder.last_layer
        self.layer_names = encoder.layer_names
        plan = ENCODER_PLAN[: [name for _, name in ENCODER_PLAN].index(CONTENT_LAYER) + 1]
        self._ops = _FusedOps(encoder, plan)

    def forward(self, x: Tensor, layers=(CONTENT_LAYER,), **options) -> dict[str, Tensor]:
        """As ``VGGEncoder.forward``; ``{"relu4_1": features}`` alone (max pooling) takes the fused path."""
        if options or tuple(layers) != (CONTENT_LAYER,) or torch.is_grad_enabled():
            return self.encoder(x, layers, **options)
        return walk(ENCODER_PLAN, x, self._ops, (CONTENT_LAYER,))


class FusedDecoder(nn.Module):
    """``Decoder`` for inference with fused kernels (``decoder`` itself runs when gradients are wanted)."""

    def __init__(self, decoder: Decoder) -> None:
        super().__init__()
        self.decoder = decoder
        self._ops = _FusedOps(decoder, DECODER_PLAN)

    def forward(self, t: Tensor) -> Tensor:
        """``(N, 512, h, w)`` channels_last features -> ``(N, 3, 8h, 8w)`` image, unclamped."""
        if torch.is_grad_enabled():
            return self.decoder(t)
        return walk(DECODER_PLAN, t, self._ops, (DECODER_OUTPUT,))[DECODER_OUTPUT]
