"""Training data: random crops of content/style image pairs from two folders, in a resumable order.

The order is a pure function of ``(seed, position)``: position ``k`` of a folder's stream is image
``perm_e[k mod n]`` where ``perm_e`` is a permutation seeded by ``(seed, epoch e = k div n)``, and the
crop at position ``k`` is drawn from a generator seeded by ``(seed, k)``. A run resumed at step ``s``
therefore sees exactly the images and crops it would have seen, whatever the number of worker
processes, and data-parallel ranks read disjoint positions (``(step * world + rank) * batch + b``).

Bad files (unreadable, empty, truncated, not an image, decompression bomb, or too small: ``badfiles``) are
never fatal here: the next position of the same permutation is tried instead and the bad path is reported
with the batch, so the caller can count, list and, past the limit ``badfiles`` sets, stop.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .._images import resized_size
from ..errors import InputError
from ._badfiles import failure_message, find_images, open_usable

_CONTENT_STREAM, _STYLE_STREAM = 0, 1


class ImageStream:
    """An endless, seeded sequence of random crops from the images below a folder.

    Arguments:
        root: folder searched recursively (extensions case-insensitive, see ``adain._io.list_images``).
        image_size: the shorter side each image is resized to (aspect kept), in pixels.
        crop_size: side of the random square crop taken from the resized image, ``<= image_size``.
        seed, stream: together seed the permutation and the crops (content and style use different
            streams so that they are not shuffled alike).
        min_side: images whose shorter side is below this many pixels are skipped as too small.
    """

    def __init__(
        self, root: str | os.PathLike, *, image_size: int, crop_size: int, seed: int, stream: int, min_side: int = 0
    ) -> None:
        if crop_size > image_size:
            raise InputError(f"crop_size ({crop_size}) must not exceed image_size ({image_size})")
        self.root = Path(root)
        self.paths, self.problems = find_images(root)  # problems: entries below root that cannot be read
        self.image_size, self.crop_size = image_size, crop_size
        self.seed, self.stream, self.min_side = seed, stream, min_side
        self._perm_epoch, self._perm = -1, np.empty(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.paths)

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            rng = np.random.default_rng([self.seed, self.stream, epoch])
            self._perm, self._perm_epoch = rng.permutation(len(self.paths)), epoch
        return self._perm

    def path_at(self, position: int) -> Path:
        """The file the stream holds at ``position`` (before any skipping of bad files)."""
        n = len(self.paths)
        return self.paths[int(self._permutation(position // n)[position % n])]

    def sample(self, position: int) -> tuple[Tensor, list[str]]:
        """``((3, crop, crop) float32 in [0, 1], [bad paths met])`` for stream position ``position``.

        A bad file is replaced by the next file of the same permutation; if every file is bad,
        ``InputError`` is raised.
        """
        n = len(self.paths)
        perm = self._permutation(position // n)
        bad: list[str] = []
        rng = np.random.default_rng([self.seed, self.stream, position, 1])
        for attempt in range(n):
            path = self.paths[int(perm[(position + attempt) % n])]
            try:
                return self._load_crop(path, rng), bad
            except MemoryError:
                raise
            except Exception as exc:  # noqa: BLE001 -- a malformed file can fail deep in a decoder; skip it, listed
                bad.append(failure_message(path, exc))
        raise InputError(f"{self.root}: none of the {n} images could be used ({bad[0] if bad else ''})")

    def _load_crop(self, path: Path, rng: np.random.Generator) -> Tensor:
        img = open_usable(path, self.min_side)
        w, h = img.size
        rh, rw = resized_size(h, w, self.image_size)
        top = int(rng.integers(0, rh - self.crop_size + 1))
        left = int(rng.integers(0, rw - self.crop_size + 1))
        # Resize only the crop's region of the source (Pillow's ``box``) instead of the whole image and
        # then cropping: the same pixels up to border filtering, and several times less work at 512.
        sx, sy = w / rw, h / rh
        box = (left * sx, top * sy, (left + self.crop_size) * sx, (top + self.crop_size) * sy)
        crop = img.resize((self.crop_size, self.crop_size), Image.Resampling.BILINEAR, box=box)
        arr = np.asarray(crop, dtype=np.uint8)
        return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


class PairDataset(torch.utils.data.Dataset):
    """Map-style dataset over stream *positions*: item ``k`` is ``(content crop, style crop, bad paths)``."""

    def __init__(self, content: ImageStream, style: ImageStream) -> None:
        self.content, self.style = content, style

    def __len__(self) -> int:  # endless; DataLoader only needs this for its own bookkeeping
        return 2**62

    def __getitem__(self, position: int) -> tuple[Tensor, Tensor, list[str]]:
        c, bad_c = self.content.sample(position)
        s, bad_s = self.style.sample(position)
        return c, s, bad_c + bad_s


@dataclass
class Batch:
    """``content``, ``style``: ``(B, 3, crop, crop)`` float32 in [0, 1]; ``bad``: messages naming skipped files."""

    content: Tensor
    style: Tensor
    bad: list[str]

    def pin_memory(self) -> Batch:
        return Batch(self.content.pin_memory(), self.style.pin_memory(), self.bad)


def collate_pairs(items: Sequence[tuple[Tensor, Tensor, list[str]]]) -> Batch:
    return Batch(
        torch.stack([c for c, _, _ in items]),
        torch.stack([s for _, s, _ in items]),
        [msg for _, _, bad in items for msg in bad],
    )


def positions_for_step(step: int, batch_size: int, rank: int = 0, world_size: int = 1) -> list[int]:
    """The stream positions rank ``rank`` reads at ``step``; ranks of one step read disjoint positions."""
    first = (step * world_size + rank) * batch_size
    return list(range(first, first + batch_size))


class StepBatchSampler(torch.utils.data.Sampler):
    """Yields ``positions_for_step(step, ...)`` for ``step = start_step, start_step + 1, ...`` forever."""

    def __init__(self, start_step: int, batch_size: int, rank: int = 0, world_size: int = 1) -> None:
        self.start_step, self.batch_size, self.rank, self.world_size = start_step, batch_size, rank, world_size

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        while True:
            yield positions_for_step(step, self.batch_size, self.rank, self.world_size)
            step += 1
