"""Image-likes to tensors and back: paths, ``PIL.Image``, numpy arrays and tensors in; ``(3, H, W)`` float
tensors in [0, 1] out; masks (one convention for both backends); and tensors back to ``PIL.Image``.

``image_size`` / ``mask_size`` check an image-like without decoding it (files: the header), so callers can
refuse bad inputs before any work; ``to_tensor`` makes the same checks, then reads the pixels.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from ._arguments import check_size
from ._io import DEFAULT_MAX_PIXELS, check_pixels, read_image, read_size, to_rgb
from .errors import ImageReadError, InputError
from .modeling._color import luma

ImageLike = str | os.PathLike | Image.Image | np.ndarray | Tensor


def resized_size(h: int, w: int, size: int) -> tuple[int, int]:
    """``(H, W)`` with the shorter side ``size`` and the aspect kept, as ``torchvision.transforms.Resize(size)``."""
    if h <= w:
        return size, int(size * w / h)
    return int(size * h / w), size


def _check_array(arr: np.ndarray, what: str) -> None:
    """Shape and dtype of a numpy image (either byte order), without reading its pixels."""
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise InputError(f"{what}: a numpy image must be HxW, HxWx1, HxWx3 or HxWx4, got shape {arr.shape}")
    native = arr.dtype.newbyteorder("=")
    if native not in (np.dtype(np.uint8), np.dtype(np.uint16)) and native.kind != "f":
        raise InputError(f"{what}: numpy images must be uint8, uint16 or float in [0, 1], got dtype {arr.dtype}")


def _check_tensor(t: Tensor, what: str) -> None:
    """Shape, dtype and storage of a ``(C, H, W)`` or ``(N, C, H, W)`` image tensor, without reading its values."""
    if t.dim() not in (3, 4) or t.shape[-3] not in (1, 3, 4):
        raise InputError(f"{what}: tensors must be CxHxW or NxCxHxW with C in 1, 3, 4; got shape {tuple(t.shape)}")
    if t.is_meta or t.layout != torch.strided:
        kind = "meta" if t.is_meta else str(t.layout).replace("torch.", "")
        raise InputError(f"{what}: a {kind} tensor holds no pixels this package can read; pass an ordinary tensor")
    if t.dtype != torch.uint8 and not t.is_floating_point():
        raise InputError(f"{what}: tensors must be float in [0, 1] or uint8, got dtype {t.dtype}")


def _array_to_tensor(arr: np.ndarray) -> Tensor:
    """A checked numpy image (``_check_array``) -> ``(C, H, W)`` float32 tensor in its own range."""
    arr = arr.astype(arr.dtype.newbyteorder("="), copy=False)  # big-endian data read in native order
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float() / 255.0
    if arr.dtype == np.uint16:
        return torch.from_numpy(arr.astype(np.float32)).permute(2, 0, 1) / 65535.0
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).permute(2, 0, 1)


def _tensor_to_float(t: Tensor) -> Tensor:
    """A checked (``_check_tensor``) uint8 (0-255) or floating tensor -> float32 in its own range."""
    return t.float() / 255.0 if t.dtype == torch.uint8 else t.float()


def _check_float_image(t: Tensor, what: str) -> Tensor:
    # One pass: NaN propagates into both aminmax results and an infinity shows up as a bound.
    lo, hi = (float(v) for v in torch.aminmax(t))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise InputError(f"{what}: image contains NaN or infinite values")
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise InputError(
            f"{what}: float images must be in [0, 1], got values in [{lo:.3g}, {hi:.3g}] (divide 0-255 data by 255)"
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


def to_tensor(
    source: ImageLike,
    *,
    size: int | None = None,
    crop: bool = False,
    what: str = "image",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Tensor:
    """Turn any supported image into a ``(3, H, W)`` float32 tensor in [0, 1]: ``check_image`` and ``decode``.

    Arguments:
        source: a path, ``PIL.Image``, numpy ``HxW[xC]`` array (uint8, uint16, or float in [0, 1]), or
            a tensor ``CxHxW`` / ``1xCxHxW`` (float in [0, 1], or uint8), with C in 1, 3, 4.
        size: new shorter side (aspect kept, bilinear with antialias); ``None`` keeps the size.
        crop: take the centre square (of side ``size``, or the shorter side when ``size`` is None).
        what: the argument's name, used in error messages.
        max_pixels: a file with more pixels is refused (``ImageReadError``: a possible decompression bomb).
    Returns:
        ``(3, H, W)`` float32 tensor on the CPU (or ``source``'s device for tensors).
    """
    size = check_size(size, f"{what} size")
    if not isinstance(source, (str, os.PathLike)):  # a file is checked as it is read, with one open
        check_image(source, what=what)
    return decode(source, size=size, crop=crop, what=what, max_pixels=max_pixels)


def check_image(source: ImageLike, *, what: str = "image", max_pixels: int | None = None) -> tuple[int, int]:
    """``image_size`` of one image: an ``(N, C, H, W)`` tensor must have N = 1 (a batch goes to a ``Stylizer``)."""
    if isinstance(source, Tensor) and source.dim() == 4 and source.shape[0] != 1:
        raise InputError(
            f"{what}: a 4-D tensor must have batch size 1 here, got shape {tuple(source.shape)} "
            "(a Stylizer takes batches)"
        )
    return image_size(source, what=what, max_pixels=max_pixels)


def decode(
    source: ImageLike, *, size: int | None, crop: bool, what: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS
) -> Tensor:
    """The pixels of an image ``check_image`` accepted (not checked again: a file is opened once more, to be
    read) as a ``(3, H, W)`` float32 tensor in [0, 1], resized and cropped as ``to_tensor`` says.

    Files, PIL images and uint8 arrays are resized in Pillow on 8-bit data, exactly like the
    reference's ``transforms.Resize`` + ``ToTensor``; float arrays and tensors are resized in torch.
    Float values outside [0, 1] (beyond rounding), NaN and infinities are refused here, where they are read.
    """
    if isinstance(source, (str, os.PathLike)):
        return _pil_to_tensor(read_image(source, max_pixels=max_pixels), size, crop)
    if isinstance(source, Image.Image):
        try:
            return _pil_to_tensor(to_rgb(source), size, crop)
        except (OSError, ValueError) as exc:
            raise ImageReadError(f"{what}: cannot convert PIL image of mode {source.mode!r}: {exc}") from None
    if isinstance(source, np.ndarray):
        if source.dtype == np.uint8:
            arr = source[:, :, 0] if source.ndim == 3 and source.shape[2] == 1 else source
            return _pil_to_tensor(to_rgb(Image.fromarray(np.ascontiguousarray(arr))), size, crop)
        t = _array_to_tensor(source)
    else:
        t = source.detach()
        t = _tensor_to_float(t[0] if t.dim() == 4 else t)
    t = _tensor_channels_to_rgb(_check_float_image(t, what), what)
    return _resize_crop_tensor(t, size, crop)


def _pil_to_tensor(img: Image.Image, size: int | None, crop: bool) -> Tensor:
    if size is not None:
        h, w = resized_size(img.height, img.width, size)
        img = img.resize((w, h), Image.Resampling.BILINEAR)
    if crop:
        side = min(img.size)
        top, left = centre_crop_origin(img.height, img.width, side)
        img = img.crop((left, top, left + side, top + side))
    arr = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def centre_crop_origin(h: int, w: int, side: int) -> tuple[int, int]:
    """``(top, left)`` of the centre ``side`` x ``side`` square of an ``h`` x ``w`` image, rounded as torchvision's
    ``CenterCrop``."""
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
        t = centre_square(t)
    return t.contiguous()


def tensor_to_pil(t: Tensor) -> Image.Image:
    """``(3, H, W)`` or ``(1, 3, H, W)`` float image (any range) -> 8-bit RGB ``PIL.Image``.

    Rounds like ``torchvision.utils.save_image`` (``x * 255 + 0.5``, clamped, truncated), so saved
    results match the reference's files.
    """
    if t.dim() == 4:
        t = t[0]
    arr = to_uint8(t.detach()).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(arr), mode="RGB")


def to_output(out: Tensor, output_type: str, *, batch: bool = False):
    """``(N, 3, H, W)`` results as ``output_type`` (``adain._arguments.OUTPUT_TYPES``).

    Arguments:
        out: float (``"pt"``: returned as it is, where it is; else rounded by ``to_uint8``) or uint8 0-255.
        batch: return all N results; else the first and only one.
    Returns:
        ``"pt"``: the ``(N, 3, H, W)`` / ``(3, H, W)`` tensor; ``"np"``: an ``(N, H, W, 3)`` / ``(H, W, 3)`` uint8
        array (C-contiguous); ``"pil"``: a list of RGB ``PIL.Image`` / one. Arrays and pictures are on the host.
    """
    if output_type == "pt":
        return out if batch else out[0]
    if out.dtype != torch.uint8:
        out = to_uint8(out)
    arrays = out.permute(0, 2, 3, 1).cpu().numpy()  # (N, H, W, 3)
    if output_type == "np":
        return np.ascontiguousarray(arrays if batch else arrays[0])
    pictures = [Image.fromarray(np.ascontiguousarray(a), mode="RGB") for a in arrays]
    return pictures if batch else pictures[0]


def to_uint8(t: Tensor) -> Tensor:
    """A float image (any range, any shape) -> uint8 0-255, rounded as ``tensor_to_pil`` rounds."""
    return t.float().mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)


def image_size(source: ImageLike, *, what: str = "image", max_pixels: int | None = None) -> tuple[int, int]:
    """``(H, W)`` of an image without decoding its pixels (files: the header only).

    Makes every check of ``to_tensor`` that needs no pixel values (the file opens, a supported shape and
    dtype, a tensor with data, at least one pixel), so callers can refuse bad inputs and work that would
    not fit in memory before anything large is done. For files the EXIF orientation is taken into account
    (a rotated photo swaps H and W), and with ``max_pixels`` the pixel limit ``to_tensor`` applies. Tensors
    may be ``(N, C, H, W)`` batches of any N.
    """
    if isinstance(source, (str, os.PathLike)):
        h, w = read_size(source)
        if max_pixels is not None:
            check_pixels(source, w, h, max_pixels)
        return h, w
    shape: tuple[int, ...]  # the whole shape, for the message
    size: Sequence[int]  # (H, W)
    if isinstance(source, Image.Image):
        shape, size = (source.height, source.width), (source.height, source.width)
    elif isinstance(source, np.ndarray):
        _check_array(source, what)
        shape, size = source.shape, source.shape[:2]
    elif isinstance(source, Tensor):
        _check_tensor(source, what)
        shape, size = tuple(source.shape), source.shape[-2:]
    else:
        kind = type(source).__name__
        raise InputError(f"{what}: expected a path, PIL.Image, numpy array or torch tensor, got {kind}")
    if 0 in shape:
        raise InputError(f"{what}: image has no pixels (shape {shape})")
    return int(size[0]), int(size[1])


def to_batch(source: Tensor, *, size: int | None = None, crop: bool = False, what: str = "content") -> Tensor:
    """An ``(N, C, H, W)`` tensor (float in [0, 1] or uint8, C in 1, 3, 4) -> ``(N, 3, H', W')`` float32 in [0, 1].

    Same checks and resizing as ``to_tensor``, for a batch such as video frames; stays on its device.
    """
    size = check_size(size, f"{what} size")
    check_batch(source, what)
    return decode_batch(source, size=size, crop=crop, what=what)


def check_batch(source: Tensor, what: str = "content") -> tuple[int, int]:
    """``(H, W)`` of an ``(N, C, H, W)`` batch tensor with C in 1, 3, 4 and at least one image and pixel."""
    if not isinstance(source, Tensor) or source.dim() != 4 or source.shape[1] not in (1, 3, 4):
        shape = tuple(source.shape) if isinstance(source, Tensor) else type(source).__name__
        raise InputError(f"{what}: a batch must be an (N, C, H, W) tensor with C in 1, 3, 4; got {shape}")
    if 0 in source.shape:
        raise InputError(f"{what}: batch has no images or no pixels (shape {tuple(source.shape)})")
    _check_tensor(source, what)
    return int(source.shape[-2]), int(source.shape[-1])


def decode_batch(source: Tensor, *, size: int | None, crop: bool, what: str = "content") -> Tensor:
    """A batch ``check_batch`` accepted -> ``(N, 3, H', W')`` float32 in [0, 1], resized and cropped, on its
    device (values checked here: float images in [0, 1], finite)."""
    t = _check_float_image(_tensor_to_float(source.detach()), what)
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    elif t.shape[1] == 4:
        t = t[:, :3] * t[:, 3:] + (1 - t[:, 3:])
    return _resize_crop_tensor(t, size, crop)


def _mask_image(source: ImageLike) -> ImageLike:
    """A mask as an image-like: boolean arrays/tensors (True = inside) as float, 2-D tensors as 1xHxW."""
    if isinstance(source, np.ndarray) and source.dtype == np.bool_:
        source = torch.from_numpy(np.ascontiguousarray(source))  # torch refuses negative strides (mask[:, ::-1])
    if isinstance(source, Tensor) and source.dtype == torch.bool:
        source = source.float()
    if isinstance(source, Tensor) and source.dim() == 2:
        source = source[None]
    return source


def to_mask(source: ImageLike, *, what: str = "mask", max_pixels: int = DEFAULT_MAX_PIXELS) -> Tensor:
    """A mask image -> ``(H, W)`` bool tensor, True (foreground) where its luma is >= 0.5.

    Binarised here, at full resolution, so that resizing it to a feature grid later cannot create
    in-between values that would belong to neither region.
    """
    return luma(to_tensor(_mask_image(source), what=what, max_pixels=max_pixels))[0] >= 0.5


def decode_mask(source: ImageLike, *, what: str = "mask", max_pixels: int = DEFAULT_MAX_PIXELS) -> Tensor:
    """``to_mask`` of a mask ``mask_size`` accepted, without checking it again."""
    return luma(decode(_mask_image(source), size=None, crop=False, what=what, max_pixels=max_pixels))[0] >= 0.5


def mask_size(source: ImageLike, *, what: str = "mask", max_pixels: int | None = None) -> tuple[int, int]:
    """``(H, W)`` of a mask without decoding it, checked as ``check_image`` checks images."""
    return check_image(_mask_image(source), what=what, max_pixels=max_pixels)


def check_mask_aspect(mask_hw: tuple[int, int], content_hw: tuple[int, int], what: str = "mask") -> None:
    """Refuse a mask whose aspect ratio is not the content's (beyond rounding of one pixel): resizing it
    to the content would stretch its regions. Masks of another resolution with the same aspect are fine."""
    (mh, mw), (h, w) = mask_hw, content_hw
    pairs = ((mw, mh * w / h), (mh, mw * h / w), (w, h * mw / mh), (h, w * mh / mw))
    if not any(abs(side - expected) <= 1 for side, expected in pairs):
        raise InputError(
            f"{what}: a {mw}x{mh} mask does not have the aspect ratio of the {w}x{h} content; "
            "give a mask of the content's shape (any resolution)"
        )


def fit_mask(mask: Tensor, content_hw: tuple[int, int], *, crop: bool = False, what: str = "mask") -> Tensor:
    """An ``(H, W)`` mask checked against the content's size as given (``check_mask_aspect``), and with
    ``crop`` cut to its centre square as the content is."""
    check_mask_aspect((mask.shape[-2], mask.shape[-1]), content_hw, what)
    return centre_square(mask) if crop else mask


def centre_square(t: Tensor) -> Tensor:
    """The centre square of the last two dimensions of ``t`` (a view), rounded as torchvision's ``CenterCrop``."""
    side = min(t.shape[-2:])
    top, left = centre_crop_origin(t.shape[-2], t.shape[-1], side)
    return t[..., top : top + side, left : left + side]
