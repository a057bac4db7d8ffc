"""LPIPS (Zhang et al., CVPR 2018), version 0.1 with the AlexNet backbone: the content distance of ArtFID.

Written here from the paper and the published weights' layout (no code of the ``lpips`` package): the images,
in [-1, 1], are shifted and scaled per channel (``SHIFT``, ``SCALE``); AlexNet's five ReLU outputs are each
normalised to unit length along the channels, their squared differences weighted per channel by a learned
1x1 convolution (the "linear heads", no bias), averaged over positions, and summed over the five layers.

Weights: torchvision's ImageNet AlexNet (``features.<i>.weight``/``bias``) and the v0.1 heads
(``lin<k>.model.1.weight``, ``(1, C, 1, 1)``), both downloaded by ``_fetch``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..weights._download import ProgressCallback
from ._fetch import METRIC_WEIGHTS, MetricWeights, copy_param, fetch_weights, load_state

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
"""LPIPS's input scaling: ``(x - SHIFT) / SCALE`` per RGB channel, ``x`` in [-1, 1]."""

# torchvision AlexNet ``features``: (index, in, out, kernel, stride, padding) of each conv; a 3x3/2 max pool
# precedes conv 3 and conv 6.
_ALEXNET = ((0, 3, 64, 11, 4, 2), (3, 64, 192, 5, 1, 2), (6, 192, 384, 3, 1, 1), (8, 384, 256, 3, 1, 1),
            (10, 256, 256, 3, 1, 1))  # fmt: skip
_POOL_BEFORE = {3, 6}
_NORM_EPS = 1e-10


class LPIPS(nn.Module):
    """LPIPS v0.1 (AlexNet) distance between images; build it with ``LPIPS.from_pretrained``.

    Calling it with two ``(N, 3, H, W)`` RGB batches in [0, 1] of one shape returns ``(N,)`` float32 distances
    (0 for identical images, larger is more different; about 0.6 between a typical AdaIN output and its content).
    """

    shift: Tensor
    scale: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(i, o, k, stride=s, padding=p) for _, i, o, k, s, p in _ALEXNET)
        self.heads = nn.ModuleList(nn.Conv2d(o, 1, 1, bias=False) for _, _, o, _, _, _ in _ALEXNET)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False).eval()

    @classmethod
    def from_pretrained(
        cls,
        *,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
        backbone: MetricWeights = METRIC_WEIGHTS["alexnet"],
        heads: MetricWeights = METRIC_WEIGHTS["lpips-alex"],
        progress: ProgressCallback | None = None,
    ) -> LPIPS:
        """The published LPIPS: AlexNet and the v0.1 heads, fetched and checked (``adain.metrics.fetch_weights``).

        Arguments:
            cache_dir: the weights cache root (``None``: the default).
            local_files_only: never download (also with ``HF_HUB_OFFLINE=1``).
            backbone: the AlexNet file (a mirror of your own can replace it).
            heads: the linear heads' file (likewise).
            progress: download progress callback.

        Raises:
            WeightsError: a file could not be fetched, failed its check, or does not have the expected layout.
        """
        fetch = dict(cache_dir=cache_dir, local_files_only=local_files_only, progress=progress)
        model = cls()
        model.load_weights(load_state(fetch_weights(backbone, **fetch)), load_state(fetch_weights(heads, **fetch)))  # type: ignore[arg-type]
        return model

    def load_weights(self, alexnet: Mapping[str, Tensor], heads: Mapping[str, Tensor]) -> None:
        """Load torchvision AlexNet's ``features.<i>.*`` and the heads' ``lin<k>.model.1.weight`` tensors.

        Raises:
            CorruptWeightsError: a tensor is missing or has the wrong shape.
        """
        for conv, (index, *_rest) in zip(_conv2d(self.convs), _ALEXNET):
            copy_param(conv.weight, alexnet, f"features.{index}.weight")
            assert conv.bias is not None, "built with a bias"
            copy_param(conv.bias, alexnet, f"features.{index}.bias")
        for k, head in enumerate(_conv2d(self.heads)):
            copy_param(head.weight, heads, f"lin{k}.model.1.weight")

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        if a.shape != b.shape or a.dim() != 4:
            raise ValueError(
                f"LPIPS needs two (N, 3, H, W) tensors of one shape, got {tuple(a.shape)}, {tuple(b.shape)}"
            )
        fa, fb = self._features(a), self._features(b)
        total = torch.zeros(a.shape[0], device=a.device)
        for head, x, y in zip(self.heads, fa, fb):
            diff = (_unit(x) - _unit(y)) ** 2
            total = total + head(diff).mean(dim=(1, 2, 3))
        return total

    def _features(self, images: Tensor) -> list[Tensor]:
        x = ((images.float() * 2 - 1) - self.shift) / self.scale
        out = []
        for conv, (index, *_rest) in zip(self.convs, _ALEXNET):
            if index in _POOL_BEFORE:
                x = F.max_pool2d(x, kernel_size=3, stride=2)
            x = F.relu(conv(x))
            out.append(x)
        return out


def _conv2d(modules: nn.ModuleList) -> list[nn.Conv2d]:
    return [cast(nn.Conv2d, m) for m in modules]


def _unit(x: Tensor) -> Tensor:
    return x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + _NORM_EPS)
