"""The boundary's checks: every argument and image of a call checked once, before any work.

``stylize`` runs them before it loads (or downloads) weights, and ``Stylizer.set_style`` / ``__call__``
before they decode a pixel, so a bad call fails at once with one line naming the argument or the file: a
missing or unreadable file, an empty or meta tensor, a count of ``style_weights`` or a ``mask`` that does
not match the styles, a mask whose aspect ratio is not the content's. Each check returns what it learnt
(a ``CheckedImage`` with the size read from a file's header, ``StyleInputs``, ``CallOptions``, resolved
devices and dtypes), and what comes after takes those records rather than the raw arguments: nothing is
checked twice, and a file is opened once for its header and once to be decoded. The shared vocabulary
(what each argument accepts) is ``adain._arguments``; what an image-like may be is ``adain._images``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .. import _images as images
from .._arguments import (
    check_alpha,
    check_int,
    check_mask_styles,
    check_output_type,
    check_size,
    color_mode,
    normalize_style_weights,
)
from .._runtime import check_max_memory, resolve_device, resolve_dtype
from ..errors import InputError
from ..export._onnx import require_export_extra
from ..model import AdaINModel
from ._engine import Engine
from ._prepared import BACKENDS, compile_options
from ._tile_grid import OVERLAP

MIN_TILE_SIZE = OVERLAP
"""The smallest ``tile_size`` accepted: a tile computes ``OVERLAP`` pixels of context beyond each side of
the pixels it owns, so a tile owning fewer pixels than that computes over 9 times the pixels it gives
(at ``tile_size=8``, 361 times: minutes instead of seconds)."""

MIN_STYLE_SIDE = 32
"""The smallest shorter side worth suggesting for a style (relu4_1 sees it at 1/8: 4 x 4 features)."""

MAX_UPSCALE = 16
"""The most resizing may scale an image's shorter side up by when the result is large (over
``UPSCALED_PIXELS``). Beyond it the result is mostly interpolation, and a thin strip becomes an enormous
job: a 3000x2 image at ``content_size=512`` would be 768000x512. A small icon made 512x512 stays allowed."""

UPSCALED_PIXELS = 4 * 2**20
"""Pixels (4 MiP, e.g. 2048x2048) above which an image scaled up more than ``MAX_UPSCALE`` times is refused."""


@dataclass(frozen=True)
class CheckedImage:
    """An image-like argument, checked without decoding it (a file: its header)."""

    source: Any  # as given: a path, PIL.Image, numpy array or tensor
    what: str  # its name in messages: "content", "style", "style[1]", "mask"
    size: tuple[int, int]  # (H, W) as given, EXIF orientation applied
    batch: bool = False  # an (N, C, H, W) tensor of frames, stylized as a batch


@dataclass(frozen=True)
class StyleInputs:
    """The style arguments of a call, checked: the images (not decoded) and the rest normalised."""

    styles: list[CheckedImage]
    style_size: int | None
    weights: list[float]  # one per style, summing to 1
    color: str | None  # None, "coral" or "luminance"
    mask: CheckedImage | None


@dataclass(frozen=True)
class CallOptions:
    """The options of a stylizing call, checked."""

    alpha: float
    content_size: int | None
    crop: bool
    tile_size: int | None
    max_pixels: int
    output_type: str | None  # None: a tensor gives "pt", anything else "pil"


def check_model(model: Any) -> AdaINModel:
    """``model`` must be an ``AdaINModel``."""
    if not isinstance(model, AdaINModel):
        raise InputError(f"model: expected an adain.AdaINModel, got {type(model).__name__}")
    return model


def check_runtime(
    device: Any, dtype: Any, max_memory: Any, compile: Any = None, backend: Any = None
) -> tuple[torch.device, torch.dtype, int | None, dict | None, str]:
    """``(device, dtype, max_memory, torch.compile options, backend)`` resolved (``adain._runtime``) for an
    ``Engine``. ``backend``: ``None``/``"torch"``, or an onnxruntime one (``BACKENDS``), which runs on the CPU
    in float32 only (``device=None`` and ``dtype=None`` then mean those) and needs the ``export`` extra."""
    max_memory = check_max_memory(max_memory)
    backend = "torch" if backend is None else backend
    if backend not in BACKENDS:
        raise InputError(f"backend: expected one of {list(BACKENDS)}, got {backend!r}")
    if backend == "torch":
        resolved = resolve_device(device)
        return resolved, resolve_dtype(dtype, resolved), max_memory, compile_options(compile, resolved), backend
    resolved = resolve_device("cpu" if device is None or device == "auto" else device)
    if resolved.type != "cpu":
        raise InputError(f"device: backend={backend!r} runs on the CPU only, got {str(resolved)!r}")
    resolved_dtype = resolve_dtype("float32" if dtype is None or dtype == "auto" else dtype, resolved)
    if resolved_dtype != torch.float32:
        raise InputError(f"dtype: backend={backend!r} runs in float32 only, got {str(resolved_dtype)!r}")
    if compile not in (None, False):
        raise InputError(f"compile: torch.compile does not apply to backend={backend!r}; leave compile off")
    require_export_extra()  # InputError naming the pip install when onnxruntime or the exporter is missing
    return resolved, resolved_dtype, max_memory, None, backend


def check_max_pixels(max_pixels: Any) -> int:
    """``max_pixels``: the most pixels an image file may have (a positive integer)."""
    return check_int(max_pixels, "max_pixels", hint=" (pixels an image file may have)")


def check_call(
    *,
    alpha: Any,
    content_size: Any,
    crop: Any,
    tile_size: Any,
    max_pixels: Any,
    output_type: Any,
    by_input: bool = True,
) -> CallOptions:
    """The options of ``Stylizer.__call__`` / ``stylize``; ``by_input``: ``output_type=None`` is accepted (the
    input's kind decides, as a ``Stylizer`` does)."""
    alpha = check_alpha(alpha)
    content_size = check_size(content_size, "content_size")
    tile_size = check_int(
        tile_size,
        "tile_size",
        minimum=MIN_TILE_SIZE,
        allow_none=True,
        hint=f" (None = only when needed; a tile computes {OVERLAP} px of context per side, smaller tiles "
        "would mostly compute context)",
    )
    max_pixels = check_max_pixels(max_pixels)
    output_type = check_output_type(output_type, allow_none=by_input)
    return CallOptions(alpha, content_size, bool(crop), tile_size, max_pixels, output_type)


def check_contents(content: Any, *, max_pixels: int, many: bool = True) -> list[CheckedImage]:
    """The content images of a call, checked without decoding them. ``many`` (a ``Stylizer``): a list/tuple
    gives one item per element, and an ``(N, C, H, W)`` tensor is one batch of frames; else (``stylize``)
    ``content`` is one image."""
    if not many:
        check_one_content(content)
        return [CheckedImage(content, "content", images.check_image(content, what="content", max_pixels=max_pixels))]
    items = list(content) if isinstance(content, (list, tuple)) else [content]
    return [
        CheckedImage(c, "content", images.check_batch(c, "content"), batch=True)
        if isinstance(c, Tensor) and c.dim() == 4
        else CheckedImage(c, "content", images.image_size(c, what="content", max_pixels=max_pixels))
        for c in items
    ]


def check_one_content(content: Any) -> None:
    """A one-call ``stylize`` (either method) takes one image: an ``(N, C, H, W)`` batch is refused unless N = 1."""
    if isinstance(content, Tensor) and content.dim() == 4 and content.shape[0] != 1:
        raise InputError(
            f"content: stylize takes one image, got a batch of shape {tuple(content.shape)}; use a Stylizer"
        )


def style_list(style: Any) -> list[Any]:
    """One style or a list/tuple of them -> a non-empty list."""
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles:
        raise InputError("style: at least one style image is needed")
    return styles


def check_styles(
    style: Any,
    *,
    style_size: Any,
    style_weights: Any,
    mask: Any,
    preserve_color: Any,
    max_pixels: int,
    content_hw: tuple[int, int] | None = None,
) -> StyleInputs:
    """Every style argument of ``stylize`` / ``Stylizer.set_style``, checked without decoding an image;
    with the content's ``(H, W)`` as given (``content_hw``), the mask's aspect ratio too; files over
    ``max_pixels`` (checked already) are refused."""
    styles = style_list(style)
    size = check_size(style_size, "style_size")
    weights = normalize_style_weights(style_weights, len(styles))
    color = color_mode(preserve_color)
    checked_mask = None
    if mask is not None:
        check_mask_styles(len(styles), style_weights)
        checked_mask = CheckedImage(mask, "mask", images.mask_size(mask, max_pixels=max_pixels))
        if content_hw is not None:
            images.check_mask_aspect(checked_mask.size, content_hw)
    names = ["style"] if len(styles) == 1 else [f"style[{i}]" for i in range(len(styles))]
    checked = [
        CheckedImage(s, name, images.check_image(s, what=name, max_pixels=max_pixels)) for s, name in zip(styles, names)
    ]
    for image in checked:
        check_resized(image, size, max_pixels, "style_size")
    return StyleInputs(checked, size, weights, color, checked_mask)


def check_resized(image: CheckedImage, new_size: int | None, max_pixels: int, argument: str) -> tuple[int, int]:
    """``(H, W)`` of ``image`` once its shorter side is resized to ``new_size`` (before any crop: the
    resized image is computed whole), refused before anything is decoded when that scales the shorter side
    up more than ``MAX_UPSCALE`` times to more than ``UPSCALED_PIXELS`` pixels, or gives more than
    ``max_pixels`` pixels. ``argument`` names the
    size argument to change (``"content_size"``, ``"style_size"``).

    Raises:
        InputError: one line naming the image, its size, the size it would have and what to change.
    """
    h, w = image.size
    if new_size is None:
        return h, w
    th, tw = images.resized_size(h, w, new_size)
    short, ratio = min(h, w), max(h, w) / min(h, w)
    if new_size > MAX_UPSCALE * short and th * tw > UPSCALED_PIXELS:
        raise InputError(
            f"{image.what}: a {w}x{h} image would be scaled up {new_size / short:.0f} times to {tw}x{th} by "
            f"{argument}={new_size}; at most {MAX_UPSCALE} times is done: pass a {argument} of at most "
            f"{MAX_UPSCALE * short}, or None to keep its size"
        )
    if th * tw > max_pixels:
        fits = max(1, int(math.sqrt(max_pixels / ratio)))
        raise InputError(
            f"{image.what}: a {w}x{h} image resized to {tw}x{th} = {th * tw} pixels by {argument}={new_size} is "
            f"over max_pixels={max_pixels}; pass a {argument} of at most {fits}, or raise max_pixels"
        )
    return th, tw


def check_hook(content_stats: Any, mask: Tensor | None) -> None:
    """``content_stats`` (a callable or ``None``) cannot be combined with a mask."""
    if content_stats is not None and not callable(content_stats):
        raise InputError(f"content_stats: expected a function (mean, std) -> (mean, std), got {content_stats!r}")
    if content_stats is not None and mask is not None:
        raise InputError("content_stats: cannot be combined with a mask (each region has its own statistics)")


def check_fits(engine: Engine, height: int, width: int, what: str) -> None:
    """``InputError`` when one ``height x width`` style image does not fit the engine's memory budget
    (styles are encoded whole: they are not tiled)."""
    limit, needed = engine.budget(), engine.frame_bytes(height, width)
    if limit is not None and needed > limit:
        fits = int(math.sqrt(limit / engine.bytes_per_pixel * min(height, width) / max(height, width)))
        # Below a few dozen pixels the budget is the problem, not the size: never advise "at most about 0".
        smaller = (
            f"pass a smaller {what.split('[')[0]}_size (at most about {fits}), or raise max_memory if the memory "
            "really is there"
            if fits >= MIN_STYLE_SIDE
            else f"only a {what.split('[')[0]}_size under {MIN_STYLE_SIDE} would fit, too small to carry a style: "
            "raise max_memory, or free memory on the device"
        )
        raise InputError(
            f"{what}: a {width}x{height} image needs about {needed / 2**30:.1f} GiB on {engine.device}, over the "
            f"limit of {limit / 2**30:.1f} GiB; {smaller}"
        )


def target_size(size: tuple[int, int], new_size: int | None, crop: bool) -> tuple[int, int]:
    """``(H, W)`` of an image of ``size`` after resizing its shorter side to ``new_size`` and ``crop``."""
    h, w = size
    if new_size is not None:
        h, w = images.resized_size(h, w, new_size)
    if crop:
        h = w = min(h, w)
    return h, w
