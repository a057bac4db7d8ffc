"""Decoding content images in DataLoader workers, and stylizing each with its own style on the device.

Each image is stylized independently of its batch neighbours: a batch is split into groups of one size,
and every image gets its own style statistics (``(B, 512, 1, 1)``) in one AdaIN. On the CPU a convolution's
result for one image does not depend on the others in the pass (measured bit for bit at 16-224 px), so
passes take as many frames as the engine's budget allows; elsewhere (cuDNN picks its algorithms by shape,
batch size included) every pass holds exactly ``MAX_BATCH`` frames, padded with repeats, so that the bytes do
not depend on how images were batched. Images too large for the budget go alone, in tiles (``Engine.run``):
memory is never a reason to skip an image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from .._images import centre_crop_origin, resized_size, to_uint8
from .._io import read_image
from ..errors import ImageReadError
from ..inference import Engine, Style
from ..inference._engine import MAX_BATCH
from ._config import DatasetConfig
from ._plan import Item

Decoded = tuple[int, Tensor, str]
"""What a worker gives for one image: its position in the item list, ``(3, H, W)`` uint8 (empty when it cannot
be read), and the reason it cannot be read (``""`` when it can)."""


def prepare_content(img: Image.Image, config: DatasetConfig) -> Image.Image:
    """Resize (shorter side ``content_size``, Pillow bilinear as ``torchvision.transforms.Resize`` on PIL
    images) and centre-crop (``content_crop``, with ``CenterCrop``'s rounding) as ``config`` says. A crop larger
    than the image keeps the image (``CenterCrop`` would pad it with black, which stylizes into a frame)."""
    if config.content_size is not None:
        h, w = resized_size(img.height, img.width, config.content_size)
        img = img.resize((w, h), Image.Resampling.BILINEAR)
    side = config.content_crop
    if side is not None and side <= min(img.size):
        top, left = centre_crop_origin(img.height, img.width, side)
        img = img.crop((left, top, left + side, top + side))
    return img


class ContentImages(Dataset):
    """The content images of a run, decoded and prepared (``prepare_content``) in DataLoader workers.

    Arguments:
        items: the images, in the order they are computed.
        config: the sizes.
        max_pixels: files with more pixels are refused (a possible decompression bomb) and skipped.
    """

    def __init__(self, items: Sequence[Item], config: DatasetConfig, max_pixels: int) -> None:
        self.items, self.config, self.max_pixels = list(items), config, max_pixels

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Decoded:
        try:
            img = prepare_content(read_image(self.items[index].path, max_pixels=self.max_pixels), self.config)
        except ImageReadError as exc:
            return index, torch.empty(0, dtype=torch.uint8), str(exc)
        return index, torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).contiguous(), ""


def keep_list(batch: list[Decoded]) -> list[Decoded]:
    """The DataLoader's ``collate_fn``: images of several sizes stay a list (grouped on the device side)."""
    return batch


def stylize_frames(engine: Engine, frames: Sequence[Tensor], mean: Tensor, std: Tensor, alpha: float) -> list[Tensor]:
    """Stylize each frame with its own style statistics.

    Arguments:
        engine: the engine.
        frames: ``(3, H, W)`` uint8 images, any sizes, on the CPU (pinned or not).
        mean, std: the styles' statistics, ``(len(frames), 512, 1, 1)`` float32 (``StyleBank.stats``), row ``i``
            for frame ``i``.
        alpha: style strength in [0, 1].

    Returns:
        ``(3, H, W)`` uint8 CPU tensors, in the order of ``frames``.
    """
    out: list[Tensor | None] = [None] * len(frames)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, frame in enumerate(frames):
        groups.setdefault((frame.shape[-2], frame.shape[-1]), []).append(i)
    for (h, w), index in groups.items():
        for i, result in zip(
            index, _stylize_group(engine, [frames[i] for i in index], mean[index], std[index], alpha, h, w)
        ):
            out[i] = result
    return [t for t in out if t is not None]


def _stylize_group(
    engine: Engine, frames: list[Tensor], mean: Tensor, std: Tensor, alpha: float, h: int, w: int
) -> list[Tensor]:
    """``stylize_frames`` for frames of one size."""
    device = engine.device
    budget = engine.budget()
    if engine.tile_plan(h, w) is not None or (
        device.type != "cpu" and budget is not None and MAX_BATCH * engine.frame_bytes(h, w) > budget
    ):
        # Too large for a shared pass: one frame at a time (in tiles when over the budget).
        return [
            engine.run(_float(f[None], device), _style(mean[i : i + 1], std[i : i + 1], device), alpha, as_uint8=True)[
                0
            ].cpu()
            for i, f in enumerate(frames)
        ]
    step = engine.frames_per_batch(h, w) if device.type == "cpu" else MAX_BATCH
    results: list[Tensor] = []
    for start in range(0, len(frames), step):
        n = min(step, len(frames) - start)
        pad = 0 if device.type == "cpu" else step - n
        part = list(range(start, start + n)) + [start + n - 1] * pad
        x = _float(torch.stack([frames[i] for i in part]), device)
        with torch.inference_mode():
            y = engine.render(x, _style(mean[part], std[part], device), alpha).clamp_(0, 1)
            results += list(to_uint8(y[:n]).cpu())
    return results


def _float(x: Tensor, device: torch.device) -> Tensor:
    """uint8 -> float32 in [0, 1] on ``device`` (as ``adain._images.decode``: ``x / 255``)."""
    return x.to(device, non_blocking=True).float().div_(255.0)


def _style(mean: Tensor, std: Tensor, device: torch.device) -> Style:
    """A ``Style`` holding one style's statistics per frame, ``(B, 512, 1, 1)``: AdaIN broadcasts them per frame."""
    return Style((1.0,), ((mean.to(device), std.to(device)),))
