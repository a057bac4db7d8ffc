"""Inception-v3 as FID and ArtFID use it: pooled 2048-d features of an image.

Written here from the architecture (Szegedy et al. 2016) and the published weights' layout, in two variants:

- ``"fid"``: pytorch-fid's port of TensorFlow's 2015-12-05 Inception, the network every FID number uses.
  Images are resized to 299x299 (bilinear) and scaled to [-1, 1]; its blocks differ from torchvision's in the
  ways TensorFlow's graph does: average pools in the A, C and first E blocks exclude the padding from the
  mean, and the last E block pools its fourth branch with a max pool.
- ``"art"``: art-fid's Inception fine-tuned on art (ArtFID, Wright & Ommer 2022): torchvision's blocks, and
  the image as it is, in [0, 1], at any size of at least 75 px (art-fid resizes the shorter side to 512 first).

Weights keys are torchvision's (``Conv2d_1a_3x3.conv.weight``, ``Mixed_5b.branch1x1.bn.running_mean``, ...);
the classifier and auxiliary heads of the files are not needed and not loaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..weights._download import ProgressCallback
from ._fetch import METRIC_WEIGHTS, MetricWeights, copy_param, fetch_weights, load_state

FID_SIZE = 299
FEATURES = 2048
_BN_EPS = 0.001


class _Conv(nn.Module):
    """Convolution without bias, batch norm (eps 0.001), ReLU: keys ``conv.weight``, ``bn.*``."""

    def __init__(self, cin: int, cout: int, kernel, stride: int = 1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=_BN_EPS)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: Tensor, tf_pool: bool) -> Tensor:
    # TensorFlow's average pool divides by the number of real pixels under the window; torchvision's by 9.
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=not tf_pool)


class _A(nn.Module):
    def __init__(self, cin: int, pool: int, tf_pool: bool) -> None:
        super().__init__()
        self.tf_pool = tf_pool
        self.branch1x1 = _Conv(cin, 64, 1)
        self.branch5x5_1, self.branch5x5_2 = _Conv(cin, 48, 1), _Conv(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _Conv(cin, 64, 1)
        self.branch3x3dbl_2, self.branch3x3dbl_3 = _Conv(64, 96, 3, padding=1), _Conv(96, 96, 3, padding=1)
        self.branch_pool = _Conv(cin, pool, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_avg3(x, self.tf_pool)),
            ],
            1,
        )


class _B(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = _Conv(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = _Conv(cin, 64, 1)
        self.branch3x3dbl_2, self.branch3x3dbl_3 = _Conv(64, 96, 3, padding=1), _Conv(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), dbl, F.max_pool2d(x, 3, stride=2)], 1)


class _C(nn.Module):
    def __init__(self, cin: int, c7: int, tf_pool: bool) -> None:
        super().__init__()
        self.tf_pool = tf_pool
        row, col = ((1, 7), (0, 3)), ((7, 1), (3, 0))
        self.branch1x1 = _Conv(cin, 192, 1)
        self.branch7x7_1, self.branch7x7_2 = _Conv(cin, c7, 1), _Conv(c7, c7, row[0], padding=row[1])
        self.branch7x7_3 = _Conv(c7, 192, col[0], padding=col[1])
        self.branch7x7dbl_1 = _Conv(cin, c7, 1)
        self.branch7x7dbl_2 = _Conv(c7, c7, col[0], padding=col[1])
        self.branch7x7dbl_3 = _Conv(c7, c7, row[0], padding=row[1])
        self.branch7x7dbl_4 = _Conv(c7, c7, col[0], padding=col[1])
        self.branch7x7dbl_5 = _Conv(c7, 192, row[0], padding=row[1])
        self.branch_pool = _Conv(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            d = layer(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg3(x, self.tf_pool))], 1)


class _D(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1, self.branch3x3_2 = _Conv(cin, 192, 1), _Conv(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _Conv(cin, 192, 1)
        self.branch7x7x3_2 = _Conv(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _Conv(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _Conv(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class _E(nn.Module):
    """``pool``: ``"avg"`` (torchvision), ``"tf_avg"`` (padding excluded) or ``"max"`` (FID's last block)."""

    def __init__(self, cin: int, pool: str) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = _Conv(cin, 320, 1)
        self.branch3x3_1 = _Conv(cin, 384, 1)
        self.branch3x3_2a = _Conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1, self.branch3x3dbl_2 = _Conv(cin, 448, 1), _Conv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _Conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _Conv(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.pool == "max" else _avg3(x, self.pool == "tf_avg")
        return torch.cat(
            [
                self.branch1x1(x),
                torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1),
                torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1),
                self.branch_pool(pooled),
            ],
            1,
        )


class InceptionV3(nn.Module):
    """Inception-v3 up to its pooled 2048-d features, in the ``"fid"`` or ``"art"`` variant (module notes).

    Calling it with ``(N, 3, H, W)`` RGB in [0, 1] returns ``(N, 2048)`` float32 features. Build it with
    ``InceptionV3.from_pretrained("fid")`` / ``("art")``, or ``InceptionV3(variant)`` and ``load_weights``.

    Arguments:
        variant: ``"fid"`` or ``"art"``.
    """

    def __init__(self, variant: str = "fid") -> None:
        super().__init__()
        if variant not in ("fid", "art"):
            raise ValueError(f"variant must be 'fid' or 'art', got {variant!r}")
        self.variant = variant
        tf = variant == "fid"
        self.Conv2d_1a_3x3 = _Conv(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _Conv(32, 32, 3)
        self.Conv2d_2b_3x3 = _Conv(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _Conv(64, 80, 1)
        self.Conv2d_4a_3x3 = _Conv(80, 192, 3)
        self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = _A(192, 32, tf), _A(256, 64, tf), _A(288, 64, tf)
        self.Mixed_6a = _B(288)
        self.Mixed_6b, self.Mixed_6c = _C(768, 128, tf), _C(768, 160, tf)
        self.Mixed_6d, self.Mixed_6e = _C(768, 160, tf), _C(768, 192, tf)
        self.Mixed_7a = _D(768)
        self.Mixed_7b = _E(1280, "tf_avg" if tf else "avg")
        self.Mixed_7c = _E(2048, "max" if tf else "avg")
        self.requires_grad_(False).eval()

    @classmethod
    def from_pretrained(
        cls,
        variant: str = "fid",
        *,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
        weights: MetricWeights | None = None,
        progress: ProgressCallback | None = None,
    ) -> InceptionV3:
        """The published network of ``variant``: pytorch-fid's (``"fid"``) or art-fid's (``"art"``) weights.

        Arguments:
            variant: ``"fid"`` or ``"art"``.
            cache_dir: the weights cache root (``None``: the default).
            local_files_only: never download (also with ``HF_HUB_OFFLINE=1``).
            weights: another source of the file (default: ``METRIC_WEIGHTS["fid-inception"]`` / ``["art-inception"]``).
            progress: download progress callback.

        Raises:
            WeightsError: the file could not be fetched, failed its check, or is not this network.
        """
        model = cls(variant)
        spec = weights or METRIC_WEIGHTS["fid-inception" if variant == "fid" else "art-inception"]
        path = fetch_weights(spec, cache_dir=cache_dir, local_files_only=local_files_only, progress=progress)
        model.load_weights(load_state(path))
        return model

    def load_weights(self, state: Mapping[str, Tensor]) -> None:
        """Load every tensor of this network from ``state`` (torchvision keys; other keys are ignored).

        Raises:
            CorruptWeightsError: a tensor is missing or has the wrong shape.
        """
        for key, tensor in [*self.named_parameters(), *self.named_buffers()]:
            if not key.endswith("num_batches_tracked"):
                copy_param(tensor, state, key)

    def forward(self, images: Tensor) -> Tensor:
        x = images.float()
        if self.variant == "fid":
            x = F.interpolate(x, size=(FID_SIZE, FID_SIZE), mode="bilinear", align_corners=False)
            x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c):
            x = block(x)
        for late in (self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = late(x)
        return x.mean(dim=(2, 3))
