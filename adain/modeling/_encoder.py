"""The normalised VGG-19 encoder, with named layers.

Takes RGB images in [0, 1]. The first layer is a 1x1 convolution (``preprocess``) that, in the
released weights, swaps RGB to BGR, scales by 255 and subtracts the Caffe ImageNet mean, so no
normalisation happens outside the network. Every 3x3 convolution is reflection-padded and max pooling
uses ``ceil_mode=True``, as in the reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from torch import Tensor, nn

from ._walk import Ops, Step, walk

# (name, in_channels, out_channels) of each 3x3 conv, in order; a pool follows the last conv of blocks 1-4.
VGG_CONVS: tuple[tuple[str, int, int], ...] = (
    ("conv1_1", 3, 64), ("conv1_2", 64, 64),
    ("conv2_1", 64, 128), ("conv2_2", 128, 128),
    ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256), ("conv3_4", 256, 256),
    ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512), ("conv4_4", 512, 512),
    ("conv5_1", 512, 512),
)  # fmt: skip
_LAST_CONV_OF_BLOCK = {"conv1_2": "pool1", "conv2_2": "pool2", "conv3_4": "pool3", "conv4_4": "pool4"}


def _encoder_plan(convs: Iterable[tuple[str, int, int]]) -> tuple[Step, ...]:
    steps = [Step("preprocess", "preprocess")]
    for conv, _, _ in convs:
        steps += [Step("conv", conv), Step("relu", "relu" + conv[len("conv") :])]
        if conv in _LAST_CONV_OF_BLOCK:
            steps.append(Step("pool", _LAST_CONV_OF_BLOCK[conv]))
    return tuple(steps)


ENCODER_PLAN: tuple[Step, ...] = _encoder_plan(VGG_CONVS)
"""The encoder's walk (``_walk``): the 1x1 ``preprocess``, then ``conv1_1, relu1_1, conv1_2, relu1_2, pool1, ...``."""

LAYER_NAMES: tuple[str, ...] = tuple(name for kind, name in ENCODER_PLAN if kind != "preprocess")
"""Every tap the encoder can return, in forward order: ``conv1_1, relu1_1, conv1_2, relu1_2, pool1, ...``."""

STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
"""The layers whose statistics define style in AdaIN training."""

CONTENT_LAYER = "relu4_1"
"""The layer AdaIN works on."""


class VGGEncoder(nn.Module):
    """VGG-19 (normalised, reflection-padded) from the input up to ``last_layer``.

    Arguments:
        last_layer: the deepest layer kept, a relu layer: ``"relu4_1"`` (enough for AdaIN) or ``"relu5_1"``
            (needed by the optimisation backend). Weights of deeper layers are not allocated.

    Attributes:
        last_layer: as given.
        layer_names: the names of the layers kept, in order, as ``forward`` takes them: ``"conv1_1"``,
            ``"relu1_1"``, ..., ``"pool1"``, ..., up to ``last_layer``.
    """

    def __init__(self, last_layer: str = "relu5_1") -> None:
        super().__init__()
        if last_layer not in LAYER_NAMES or not last_layer.startswith("relu"):
            raise ValueError(f"last_layer must be one of the relu layers in {LAYER_NAMES}, got {last_layer!r}")
        self.last_layer = last_layer
        self.preprocess = nn.Conv2d(3, 3, kernel_size=1)
        last_conv = "conv" + last_layer[len("relu") :]
        for name, cin, cout in VGG_CONVS:
            self.add_module(name, nn.Conv2d(cin, cout, kernel_size=3, padding=1, padding_mode="reflect"))
            if name == last_conv:
                break
        self.layer_names = LAYER_NAMES[: LAYER_NAMES.index(last_layer) + 1]

    def forward(
        self,
        x: Tensor,
        layers: Iterable[str] = (CONTENT_LAYER,),
        *,
        pooling: str = "max",
        pool_scale: Mapping[str, float] | None = None,
    ) -> dict[str, Tensor]:
        """Run the encoder as far as the deepest requested layer.

        Arguments:
            x: ``(N, 3, H, W)`` RGB in [0, 1]. Every block's feature map must stay at least 2x2 for the
                reflection padding, i.e. ``H, W >= 2 ** (block - 1) + 1``; callers pad small images.
            layers: names from ``layer_names`` to return (e.g. ``("relu1_1", "relu4_1")``).
            pooling: ``"max"`` (the network as trained) or ``"avg"`` (smoother gradients, used by the
                optimisation backend).
            pool_scale: optional ``{"pool1": factor, ...}`` multiplying a pooling layer's output; the
                optimisation backend uses it to give average pooling the activation magnitude of max
                pooling. Absent names are left unscaled.

        Returns:
            ``{name: (N, C, H', W') features}`` for each requested name.
        """
        wanted = set(layers)
        unknown = wanted.difference(self.layer_names)
        if unknown:
            raise ValueError(f"unknown encoder layer(s) {sorted(unknown)}; this encoder has {self.layer_names}")
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', got {pooling!r}")
        ops = Ops(self, keep=wanted, pooling=pooling, pool_scale=pool_scale)
        return walk(ENCODER_PLAN, x, ops, wanted)
