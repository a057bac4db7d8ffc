"""CFSD, the content feature structural distance of StyleID (Chung et al., CVPR 2024), written from its definition.

For an image, take torchvision's ImageNet VGG-19 features at relu3_1 (the image normalised with ImageNet's
mean and std), divide them by their channel count ``C``, and form the similarity of every pair of positions,
``S = F F^T`` (``(HW, HW)``); a row-wise softmax turns each row into a distribution over positions. CFSD is the
Kullback-Leibler divergence ``KL(P_content || P_output)``, summed over the rows (positions) and averaged over the
pairs: 0 when the output keeps the content's spatial self-similarity exactly. StyleID evaluates it at the
images' own size; the output and its content must have the same size.

The VGG here is torchvision's (zero padding, ImageNet normalisation), not the package's normalised encoder:
the metric is defined on it. Weights: ``features.{0,2,5,7,10}.*`` of torchvision's ``vgg19`` file.
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

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision ``vgg19().features`` index of each conv up to conv3_1, and whether a 2x2 max pool precedes it.
_CONVS = ((0, 3, 64, False), (2, 64, 64, False), (5, 64, 128, True), (7, 128, 128, False), (10, 128, 256, True))


class CFSD(nn.Module):
    """The CFSD of (output, content) pairs; build it with ``CFSD.from_pretrained``.

    Calling it with two ``(N, 3, H, W)`` RGB batches in [0, 1] of one shape (stylized outputs first, their
    contents second) returns ``(N,)`` float32 values >= 0 (StyleID's Table 1: AdaIN 0.315, lower is better).
    The similarity matrices are formed a block of rows at a time (``ROWS_PER_BLOCK``), so memory stays linear in
    the number of positions.
    """

    mean: Tensor
    std: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 3, padding=1) for _, i, o, _ in _CONVS)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False).eval()

    @classmethod
    def from_pretrained(
        cls,
        *,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
        weights: MetricWeights = METRIC_WEIGHTS["vgg19"],
        progress: ProgressCallback | None = None,
    ) -> CFSD:
        """CFSD on torchvision's ImageNet VGG-19, fetched and checked (``adain.metrics.fetch_weights``).

        Raises:
            WeightsError: the file could not be fetched, failed its check, or is not a VGG-19.
        """
        model = cls()
        path = fetch_weights(weights, cache_dir=cache_dir, local_files_only=local_files_only, progress=progress)
        model.load_weights(load_state(path))
        return model

    def load_weights(self, state: Mapping[str, Tensor]) -> None:
        """Load ``features.<i>.weight``/``bias`` of a torchvision ``vgg19`` state dict (up to conv3_1).

        Raises:
            CorruptWeightsError: a tensor is missing or has the wrong shape.
        """
        for conv, (index, *_rest) in zip((cast(nn.Conv2d, c) for c in self.convs), _CONVS):
            copy_param(conv.weight, state, f"features.{index}.weight")
            assert conv.bias is not None, "built with a bias"
            copy_param(conv.bias, state, f"features.{index}.bias")

    def relu3_1(self, images: Tensor) -> Tensor:
        """``(N, 3, H, W)`` in [0, 1] -> ``(N, 256, H', W')`` relu3_1 features of torchvision's VGG-19."""
        x = (images.float() - self.mean) / self.std
        for conv, (_, _, _, pool_first) in zip(self.convs, _CONVS):
            if pool_first:
                x = F.max_pool2d(x, 2, stride=2)
            x = F.relu(conv(x))
        return x

    def forward(self, output: Tensor, content: Tensor) -> Tensor:
        if output.shape != content.shape or output.dim() != 4:
            raise ValueError(
                f"CFSD needs output and content of one (N, 3, H, W) shape, got {tuple(output.shape)}, "
                f"{tuple(content.shape)}"
            )
        return _row_kl(self.relu3_1(content), self.relu3_1(output))


ROWS_PER_BLOCK = 1024
"""Rows of the similarity matrices formed at once: memory ``2 * ROWS_PER_BLOCK * HW`` floats per image instead of
``2 * HW^2`` (1 GiB at 512x512), the same sum."""


def _row_kl(content: Tensor, output: Tensor) -> Tensor:
    """``sum over rows of KL(softmax(S_c row) || softmax(S_o row))``, ``S = (F/C)(F/C)^T``, ``(N,)`` float32.

    Rows are independent distributions, so the matrices are formed a block of rows at a time.
    """
    n, c, h, w = content.shape
    fc = content.reshape(n, c, h * w).transpose(1, 2) / c
    fo = output.reshape(n, c, h * w).transpose(1, 2) / c
    total = torch.zeros(n, device=content.device)
    for start in range(0, h * w, ROWS_PER_BLOCK):
        log_p = F.log_softmax(fc[:, start : start + ROWS_PER_BLOCK] @ fc.transpose(1, 2), dim=-1)
        log_q = F.log_softmax(fo[:, start : start + ROWS_PER_BLOCK] @ fo.transpose(1, 2), dim=-1)
        total += (log_p.exp() * (log_p - log_q)).sum(dim=(1, 2))
    return total
