"""``adain.stylize``: one image in one call, by either backend (``method="adain"`` or ``"gatys"``).

A thin dispatcher, so that neither backend imports the other: ``"adain"`` goes to the inference engine
(``adain.inference``), ``"gatys"`` to the optimisation backend (``adain.optimization``). Each backend checks
its own arguments, once; only what is particular to this entry point is checked here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from . import _images as images
from ._arguments import check_alpha, check_output_type, check_size, pop_deprecated
from ._images import ImageLike
from ._io import DEFAULT_MAX_PIXELS
from .errors import InputError
from .inference._checks import check_one_content, style_list
from .inference._stylizer import DEFAULT_SIZE
from .inference._stylizer import stylize as stylize_adain
from .model import AdaINModel
from .optimization import gatys_tensor

__all__ = ["METHODS", "stylize"]

METHODS = ("adain", "gatys")
"""Values accepted by ``stylize(method=...)``."""


def stylize(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    alpha: float = 1.0,
    *,
    model: AdaINModel | None = None,
    content_size: int | None = DEFAULT_SIZE,
    style_size: int | None = DEFAULT_SIZE,
    crop: bool = False,
    preserve_color: bool | str | None = None,
    style_weights: Sequence[float] | None = None,
    mask: ImageLike | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    method: str = "adain",
    max_memory: int | None = None,
    tile_size: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    callback: Callable | None = None,
    output_type: str = "pil",
    **gatys_options: Any,
):
    """Stylize one image in one call.

    Arguments:
        content: a path, ``PIL.Image``, HxWxC numpy array (uint8, or float in [0, 1]) or CxHxW /
            1xCxHxW tensor in [0, 1].
        style: the same kinds, or a list of them (interpolation, or two styles with ``mask``).
        alpha: style strength in [0, 1].
        model: an ``AdaINModel``; default ``adain.load_pretrained()``.
        content_size, style_size: new shorter side (aspect kept); ``None`` keeps the size.
        crop: centre square crop of content and style.
        preserve_color: ``None``/``False``, ``"coral"`` (or ``True``; the reference's CORAL) or
            ``"luminance"``.
        style_weights: interpolation weights, one per style, normalised to sum 1 (default equal).
        mask: two styles only: foreground where the mask's luma >= 0.5 gets the first style.
        device: default CUDA when available, else CPU. dtype: see ``Stylizer``.
        method: ``"adain"`` (a trained decoder, milliseconds) or ``"gatys"`` (image optimisation,
            ``adain.gatys``; seconds to minutes, reference quality on a GPU). With ``"gatys"``, ``alpha``
            must be 1 (use ``style_weight``), and any further keyword is a ``adain.gatys`` option.
        max_memory: bytes the call may use (default 80% of the free memory); see ``adain._runtime``. A larger
            image is stylized in overlapping tiles, with the same result: see ``Stylizer.__call__``.
        tile_size: ``None`` tiles only when needed; an integer: tiles of about that many output pixels a side.
        max_pixels: image files with more pixels are refused (decompression bombs); 12000x12000 passes.
        callback: progress: a ``TileProgress`` after each step of a tiled image (``"gatys"``: a ``GatysProgress``).
        output_type: ``"pil"`` (an RGB ``PIL.Image``), ``"np"`` (an ``H x W x 3`` uint8 array) or ``"pt"`` (a
            ``3 x H x W`` float32 tensor in [0, 1]).
    Returns:
        The stylized image, of exactly the (resized, cropped) content size, as ``output_type`` says.
    """
    if method not in METHODS:
        raise InputError(f"method: expected one of {list(METHODS)}, got {method!r}")
    style_weights = pop_deprecated(gatys_options, "weights", "style_weights", style_weights, "stylize")
    # The single place where a backend is chosen; further methods are added here.
    if method == "gatys":
        adain_only = [name for name, given in (("tile_size", tile_size is not None),
                                               ("max_pixels", max_pixels != DEFAULT_MAX_PIXELS)) if given]
        return _stylize_gatys(content, style, alpha, model=model, content_size=content_size, style_size=style_size,
                              crop=crop, preserve_color=preserve_color, style_weights=style_weights, mask=mask,
                              device=device, dtype=dtype, max_memory=max_memory, callback=callback,
                              output_type=output_type, adain_only=adain_only, **gatys_options)
    if gatys_options:
        raise InputError(f"unexpected argument(s) {sorted(gatys_options)} for method='adain'")
    return stylize_adain(content, style, alpha, model=model, content_size=content_size, style_size=style_size,
                         crop=crop, preserve_color=preserve_color, style_weights=style_weights, mask=mask,
                         device=device, dtype=dtype, max_memory=max_memory, tile_size=tile_size,
                         max_pixels=max_pixels, callback=callback, output_type=output_type)


def _stylize_gatys(content, style, alpha, *, crop: bool, content_size, style_size, mask, output_type,
                   adain_only: list[str], **options):
    """``stylize(method="gatys")``: stylize's arguments handed to ``adain.gatys`` (which checks them all
    before loading weights); it has no alpha, and no crop of its own: the inputs are cropped first."""
    if adain_only:
        raise InputError(f"{', '.join(adain_only)}: only for method='adain' (gatys reads and sizes images its own way)")
    if check_alpha(alpha) != 1:
        raise InputError(
            f"alpha: method='gatys' has no alpha (got {alpha}); pass style_weight= (or content_weight=) instead"
        )
    output_type = check_output_type(output_type)
    check_one_content(content)
    if crop:
        content, style, mask = _square_crop(content, style, mask, content_size, style_size)
        content_size = style_size = None
    out = gatys_tensor(content, style, content_size=content_size, style_size=style_size, mask=mask, **options)
    return images.to_output(out.clamp(0, 1)[None], output_type)


def _square_crop(content, style, mask, content_size, style_size) -> tuple[Tensor, list[Tensor], Tensor | None]:
    """Content, styles and mask resized and cut to their centre squares, for a backend without ``crop``; the
    mask is checked against the content as given."""
    content_size, style_size = check_size(content_size, "content_size"), check_size(style_size, "style_size")
    content_hw = images.image_size(content, what="content")
    mask_t = None if mask is None else images.fit_mask(images.to_mask(mask), content_hw, crop=True)
    content_t = images.to_tensor(content, size=content_size, crop=True, what="content")
    styles = [images.to_tensor(s, size=style_size, crop=True, what=f"style[{i}]")
              for i, s in enumerate(style_list(style))]
    return content_t, styles, mask_t
