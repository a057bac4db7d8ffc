"""A call's inputs checked before any work: the arguments, and every image without decoding it.

``stylize`` runs these checks before it loads (or downloads) weights, and ``Stylizer.set_style`` /
``__call__`` before they decode a pixel, so a bad call fails at once with one line naming the argument
or the file: a missing or unreadable file (its header is read, nothing more), an empty or meta tensor,
a count of ``style_weights`` or a ``mask`` that does not match the styles, a mask whose aspect ratio is
not the content's. The shared vocabulary itself (what each argument accepts) is ``adain._arguments``;
what an image-like may be is ``adain._images``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from .. import _images as images
from .._arguments import check_int, check_mask_styles, check_size, color_mode, normalize_style_weights
from ..errors import InputError
from .._io import DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class StyleInputs:
    """The style arguments of a call, checked: the images as given (not decoded) and the rest normalised."""

    styles: list[Any]  # the image-likes, as given
    names: list[str]  # "style", or "style[0]", "style[1]", ... in messages
    sizes: list[tuple[int, int]]  # (H, W) of each style as given
    style_size: int | None
    weights: list[float]  # one per style, summing to 1
    color: str | None  # None, "coral" or "luminance"
    mask_size: tuple[int, int] | None  # (H, W) of the mask as given; None without a mask


def style_list(style: Any) -> list[Any]:
    """One style or a list/tuple of them -> a non-empty list."""
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles:
        raise InputError("style: at least one style image is needed")
    return styles


def check_styles(style: Any, *, style_size: Any, style_weights: Any, mask: Any, preserve_color: Any,
                 content_hw: tuple[int, int] | None = None, max_pixels: Any = DEFAULT_MAX_PIXELS) -> StyleInputs:
    """Every style argument of ``stylize`` / ``Stylizer.set_style``, checked without decoding an image;
    with the content's ``(H, W)`` as given (``content_hw``), the mask's aspect ratio too; files over
    ``max_pixels`` are refused."""
    max_pixels = check_max_pixels(max_pixels)
    styles = style_list(style)
    size = check_size(style_size, "style_size")
    weights = normalize_style_weights(style_weights, len(styles))
    color = color_mode(preserve_color)
    mask_size = None
    if mask is not None:
        check_mask_styles(len(styles), style_weights)
        mask_size = images.mask_size(mask, max_pixels=max_pixels)
        if content_hw is not None:
            images.check_mask_aspect(mask_size, content_hw)
    names = ["style"] if len(styles) == 1 else [f"style[{i}]" for i in range(len(styles))]
    sizes = [images.image_size(s, what=name, max_pixels=max_pixels) for s, name in zip(styles, names)]
    return StyleInputs(styles, names, sizes, size, weights, color, mask_size)


def check_content(content: Any, *, content_size: Any, max_pixels: Any = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """``(H, W)`` of the content as given, checked without decoding it (``content_size`` checked too; a
    file over ``max_pixels`` is refused)."""
    check_size(content_size, "content_size")
    return images.image_size(content, what="content", max_pixels=check_max_pixels(max_pixels))


def check_max_pixels(max_pixels: Any) -> int:
    """``max_pixels``: the most pixels an image file may have (a positive integer)."""
    return check_int(max_pixels, "max_pixels", hint=" (pixels an image file may have)")


def target_size(size: tuple[int, int], new_size: int | None, crop: bool) -> tuple[int, int]:
    """``(H, W)`` of an image of ``size`` after resizing its shorter side to ``new_size`` and ``crop``."""
    h, w = size
    if new_size is not None:
        h, w = images.resized_size(h, w, new_size)
    if crop:
        h = w = min(h, w)
    return h, w


def square_crop(content: Any, style: Any, mask: Any, content_size: int | None, style_size: int | None
                ) -> tuple[Tensor, list[Tensor], Tensor | None]:
    """Content, styles and mask resized and cut to their centre squares, for a backend without ``crop``
    (``stylize(method="gatys", crop=True)``); the mask is checked against the content as given."""
    content_size, style_size = check_size(content_size, "content_size"), check_size(style_size, "style_size")
    content_hw = images.image_size(content, what="content")
    mask_t = None if mask is None else images.fit_mask(images.to_mask(mask), content_hw, crop=True)
    content_t = images.to_tensor(content, size=content_size, crop=True, what="content")
    styles = [images.to_tensor(s, size=style_size, crop=True, what=f"style[{i}]")
              for i, s in enumerate(style_list(style))]
    return content_t, styles, mask_t
