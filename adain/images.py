"""Image-likes to tensors and back: paths, ``PIL.Image``, numpy arrays and tensors in; ``(3, H, W)`` float
tensors in [0, 1] out; masks (one convention for both backends); and tensors back to ``PIL.Image``.
"""

from __future__ import annotations

import math
import os
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from .color import luma
from .errors import ImageReadError, InputError
from .io import read_image, read_size, to_rgb

__all__ = ["ImageLike", "to_tensor", "to_batch", "to_mask", "tensor_to_pil", "resized_size", "image_size"]

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray, Tensor]


def resized_size(h: int, w: int, size: int) -> tuple[int, int]:
    """``(H, W)`` with the shorter side ``size`` and the aspect kept, as ``torchvision.transforms.Resize(size)``."""
    if h <= w:
        return size, int(size * w / h)
    return int(size * h / w), size


def _check_size_arg(size: int | None, what: str) -> None:
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise InputError(f"{what}: size must be a positive integer or None, got {size!r}")


def _array_to_tensor(arr: np.ndarray, what: str) -> Tensor:
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise InputError(f"{what}: a numpy image must be HxW, HxWx1, HxWx3 or HxWx4, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float() / 255.0
    elif arr.dtype == np.uint16:
        t = torch.from_numpy(arr.astype(np.float32)).permute(2, 0, 1) / 65535.0
    elif arr.dtype.kind == "f":
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).permute(2, 0, 1)
    else:
        raise InputError(f"{what}: numpy images must be uint8, uint16 or float in [0, 1], got dtype {arr.dtype}")
    return t


def _tensor_to_float(t: Tensor, what: str) -> Tensor:
    """uint8 (0-255) or floating tensor -> float32 in its own range; anything else is refused."""
    if t.dtype == torch.uint8:
        return t.float() / 255.0
    if not t.is_floating_point():
        raise InputError(f"{what}: tensors must be float in [0, 1] or uint8, got dtype {t.dtype}")
    return t.float()


def _check_float_image(t: Tensor, what: str) -> Tensor:
    # One pass: NaN propagates into both aminmax results and an infinity shows up as a bound.
    lo, hi = (float(v) for v in torch.aminmax(t))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise InputError(f"{what}: image contains NaN or infinite values")
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise InputError(
            f"{what}: float images must be in [0, 1], got values in [{lo:.3g}, {hi:.3g}] "
            "(divide 0-255 data by 255)"
        )
    return t if lo >= 0 and hi <= 1 else t.clamp(0, 1)


def _tensor_channels_to_rgb(t: Tensor, what: str) -> Tensor:
    if t.shape[0] == 1:
        return t.expand(3, -1, -1).contiguous()
    if t.shape[0] == 4:  # straight (non-premultiplied) alpha over white
        rgb, alpha = t[:3], t[3:4]
        return rgb * alpha + (1 - alpha)
    if t.shape[0] != 3:
        raise InputError(f"{what}: expected 1, 3 or 4 channels, got {t.shape[0]}")
    return t


def to_tensor(source: ImageLike, *, size: int | None = None, crop: bool = False, what: str = "image") -> Tensor:
    """Turn any supported image into a ``(3, H, W)`` float32 tensor in [0, 1].

    Arguments:
        source: a path, ``PIL.Image``, numpy ``HxW[xC]`` array (uint8, uint16, or float in [0, 1]), or
            a tensor ``CxHxW`` / ``1xCxHxW`` (float in [0, 1], or uint8), with C in 1, 3, 4.
        size: new shorter side (aspect kept, bilinear with antialias); ``None`` keeps the size.
        crop: take the centre square (of side ``size``, or the shorter side when ``size`` is None).
        what: the argument's name, used in error messages.
    Returns:
        ``(3, H, W)`` float32 tensor on the CPU (or ``source``'s device for tensors).

    Files, PIL images and uint8 arrays are resized in Pillow on 8-bit data, exactly like the
    reference's ``transforms.Resize`` + ``ToTensor``; float arrays and tensors are resized in torch.
    """
    _check_size_arg(size, what)
    if isinstance(source, (str, os.PathLike)):
        return _pil_to_tensor(read_image(source), size, crop)
    if isinstance(source, Image.Image):
        try:
            return _pil_to_tensor(to_rgb(source), size, crop)
        except (OSError, ValueError) as exc:
            raise ImageReadError(f"{what}: cannot convert PIL image of mode {source.mode!r}: {exc}") from None
    if isinstance(source, np.ndarray):
        if 0 in source.shape[:2]:
            raise InputError(f"{what}: image has no pixels (shape {source.shape})")
        if source.dtype == np.uint8 and source.ndim in (2, 3) and (source.ndim == 2 or source.shape[2] in (1, 3, 4)):
            arr = source[:, :, 0] if source.ndim == 3 and source.shape[2] == 1 else source
            return _pil_to_tensor(to_rgb(Image.fromarray(np.ascontiguousarray(arr))), size, crop)
        t = _array_to_tensor(source, what)
    elif isinstance(source, Tensor):
        t = source.detach()
        if t.dim() == 4:
            if t.shape[0] != 1:
                raise InputError(
                    f"{what}: a 4-D tensor must have batch size 1 here, got shape {tuple(t.shape)} "
                    "(a Stylizer takes batches)"
                )
            t = t[0]
        if t.dim() != 3 or t.shape[0] not in (1, 3, 4):
            raise InputError(f"{what}: tensors must be CxHxW or 1xCxHxW with C in 1, 3, 4; got shape {tuple(source.shape)}")
        t = _tensor_to_float(t, what)
    else:
        raise InputError(
            f"{what}: expected a path, PIL.Image, numpy array or torch tensor, got {type(source).__name__}"
        )
    if t.shape[-1] < 1 or t.shape[-2] < 1:
        raise InputError(f"{what}: image has no pixels (shape {tuple(t.shape)})")
    t = _tensor_channels_to_rgb(_check_float_image(t, what), what)
    return _resize_crop_tensor(t, size, crop)


def _pil_to_tensor(img: Image.Image, size: int | None, crop: bool) -> Tensor:
    if size is not None:
        h, w = resized_size(img.height, img.width, size)
        img = img.resize((w, h), Image.Resampling.BILINEAR)
    if crop:
        side = min(img.size)
        top, left = _centre_crop_origin(img.height, img.width, side)
        img = img.crop((left, top, left + side, top + side))
    arr = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def _centre_crop_origin(h: int, w: int, side: int) -> tuple[int, int]:
    # Same rounding as torchvision's CenterCrop.
    return int(round((h - side) / 2.0)), int(round((w - side) / 2.0))


def _resize_crop_tensor(t: Tensor, size: int | None, crop: bool) -> Tensor:
    """Resize/crop the last two dims of a ``(3, H, W)`` or ``(N, 3, H, W)`` tensor."""
    if size is not None:
        h, w = resized_size(t.shape[-2], t.shape[-1], size)
        # What torchvision's resize does for float tensors: bilinear with antialiasing.
        batch = t if t.dim() == 4 else t[None]
        batch = F.interpolate(batch, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        t = (batch if t.dim() == 4 else batch[0]).clamp(0, 1)
    if crop:
        side = min(t.shape[-2:])
        top, left = _centre_crop_origin(t.shape[-2], t.shape[-1], side)
        t = t[..., top : top + side, left : left + side]
    return t.contiguous()


def tensor_to_pil(t: Tensor) -> Image.Image:
    """``(3, H, W)`` or ``(1, 3, H, W)`` float image (any range) -> 8-bit RGB ``PIL.Image``.

    Rounds like ``torchvision.utils.save_image`` (``x * 255 + 0.5``, clamped, truncated), so saved
    results match the reference's files.
    """
    if t.dim() == 4:
        t = t[0]
    arr = t.detach().float().mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(arr), mode="RGB")


def image_size(source: ImageLike, *, what: str = "image") -> tuple[int, int]:
    """``(H, W)`` of an image without decoding its pixels (files: the header only).

    Lets callers refuse work that would not fit in memory before any large allocation. For files the
    EXIF orientation is taken into account (a rotated photo swaps H and W).
    """
    if isinstance(source, (str, os.PathLike)):
        return read_size(source)
    if isinstance(source, Image.Image):
        return source.height, source.width
    if isinstance(source, np.ndarray):
        if source.ndim not in (2, 3):
            raise InputError(f"{what}: a numpy image must be HxW or HxWxC, got shape {source.shape}")
        return int(source.shape[0]), int(source.shape[1])
    if isinstance(source, Tensor):
        if source.dim() not in (3, 4):
            raise InputError(f"{what}: tensors must be CxHxW or NxCxHxW, got shape {tuple(source.shape)}")
        return int(source.shape[-2]), int(source.shape[-1])
    raise InputError(f"{what}: expected a path, PIL.Image, numpy array or torch tensor, got {type(source).__name__}")


def to_batch(source: Tensor, *, size: int | None = None, crop: bool = False, what: str = "content") -> Tensor:
    """An ``(N, C, H, W)`` tensor (float in [0, 1] or uint8, C in 1, 3, 4) -> ``(N, 3, H', W')`` float32 in [0, 1].

    Same checks and resizing as ``to_tensor``, for a batch such as video frames; stays on its device.
    """
    _check_size_arg(size, what)
    if not isinstance(source, Tensor) or source.dim() != 4 or source.shape[1] not in (1, 3, 4):
        shape = tuple(source.shape) if isinstance(source, Tensor) else type(source).__name__
        raise InputError(f"{what}: a batch must be an (N, C, H, W) tensor with C in 1, 3, 4; got {shape}")
    if 0 in source.shape:
        raise InputError(f"{what}: batch has no images or no pixels (shape {tuple(source.shape)})")
    t = _check_float_image(_tensor_to_float(source.detach(), what), what)
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    elif t.shape[1] == 4:
        t = t[:, :3] * t[:, 3:] + (1 - t[:, 3:])
    return _resize_crop_tensor(t, size, crop)


def to_mask(source: ImageLike, *, what: str = "mask") -> Tensor:
    """A mask image -> ``(H, W)`` bool tensor, True (foreground) where its luma is >= 0.5.

    Binarised here, at full resolution, so that resizing it to a feature grid later cannot create
    in-between values that would belong to neither region.
    """
    if isinstance(source, np.ndarray) and source.dtype == np.bool_:
        source = torch.from_numpy(source)
    if isinstance(source, Tensor) and source.dtype == torch.bool:
        source = source.float()  # True = inside
    if isinstance(source, Tensor) and source.dim() == 2:
        source = source[None]
    return luma(to_tensor(source, what=what))[0] >= 0.5
