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
from .inference._one_call import stylize as stylize_adain
from .inference._stylizer import DEFAULT_SIZE
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
    backend: str | None = None,
    **gatys_options: Any,
) -> Any:  # PIL.Image, ndarray or Tensor, as output_type says
    """Stylize one image in one call.

    Every argument and every input image is checked (files: their headers) before weights are loaded, let
    alone downloaded; a bad one raises ``InputError`` (``ImageReadError`` for files) naming it. Guide:
    [Stylize and Stylizer](../guides/stylize.md).

    Arguments:
        content: a path, ``PIL.Image``, HxWxC numpy array (uint8, uint16, or float in [0, 1]) or CxHxW /
            1xCxHxW tensor in [0, 1]. Transparency is composited onto white; EXIF orientation is applied.
        style: the same kinds, or a list of them (a blend with ``style_weights``, or two styles with ``mask``).
        alpha: style strength in [0, 1]: 1 is full style, 0 the content through the decoder. ``"gatys"`` has
            no alpha: it must be 1 there (use ``style_weight``).
        model: an [``AdaINModel``][adain.AdaINModel]; ``None``: ``adain.load_pretrained()`` (downloaded on first
            use). Load one once and pass it to every call.
        content_size: new shorter side of the content in pixels (aspect kept), default 512 (the reference's);
            ``None`` keeps its size.
        style_size: new shorter side of each style image in pixels, default 512; ``None`` keeps its size
            (``"gatys"``: the style is sized by ``style_scale`` instead).
        crop: take the centre square of content and style (after resizing).
        preserve_color: ``None`` or ``False``: the style's colours; ``"coral"`` (or ``True``; the reference's
            CORAL) recolours the style to the content first; ``"luminance"`` transfers style to the
            luminance only and keeps the content's chroma.
        style_weights: blend weights, one non-negative number per style, normalised to sum 1; ``None``: equal.
        mask: two styles only: an image (the same kinds as ``content``, with the content's aspect ratio, any
            resolution); the first style goes where its luma is >= 0.5, the second elsewhere. See
            [masks and colour](../guides/masks-and-colour.md).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``... or a ``torch.device``, one this machine has;
            ``None``: CUDA when available, else CPU.
        dtype: compute dtype: ``"float32"``, ``"bfloat16"``, ``"float16"`` (CUDA; not with ``"gatys"``) or a
            ``torch.dtype``; ``None``: bfloat16 on a CUDA device that supports it and on a CPU with native bf16,
            float32 elsewhere. Feature statistics are always float32.
        method: ``"adain"`` (a trained decoder, milliseconds) or ``"gatys"`` (image optimisation,
            [``adain.gatys``][adain.gatys]; seconds to minutes on a GPU, the quality reference); ``METHODS``
            lists them. With ``"gatys"`` any further keyword is an ``adain.gatys`` option.
        max_memory: bytes the call may use; ``None``: 80% of the memory free on the device. With ``"adain"``,
            a larger image is stylized in overlapping tiles with the same result
            ([huge images](../guides/tiling.md)); with ``"gatys"`` see its ``on_oom``.
        tile_size: ``"adain"`` only. ``None`` tiles only when needed; an integer: tiles owning about that many
            output pixels a side.
        max_pixels: ``"adain"`` only. Image files with more pixels are refused before decoding (decompression
            bombs); the default, 178956970 (Pillow's threshold), lets a 12000x12000 photo through.
        callback: progress: ``"adain"`` calls it with a [``TileProgress``][adain.TileProgress] after each batch
            of tiles of a tiled image; ``"gatys"`` with a [``GatysProgress``][adain.GatysProgress] after every
            step (returning ``True`` stops it early).
        output_type: ``"pil"`` (an RGB ``PIL.Image``), ``"np"`` (an ``H x W x 3`` uint8 array) or ``"pt"`` (a
            ``3 x H x W`` float32 tensor in [0, 1]; with ``"adain"`` on a content tensor's own device, else on
            the CPU).
        backend: ``"adain"`` only. What runs the networks, as in [``Stylizer``][adain.Stylizer]: ``None`` or
            ``"torch"``; ``"onnxruntime"`` (CPU, float32, needs ``adain[export]``) or ``"onnxruntime-int8"``.
        **gatys_options: ``"gatys"`` only: options of [``adain.gatys``][adain.gatys] (``iterations``,
            ``style_weight``, ...; every one is a field of
            [``GatysOptions``][adain.optimization.GatysOptions]). Refused with ``"adain"``.

    Returns:
        The stylized image, of exactly the (resized, cropped) content size, as ``output_type`` says.

    Raises:
        InputError: an argument or image that cannot be used (``ImageReadError`` for an unreadable file),
            raised before any weights are loaded.
    """
    if method not in METHODS:
        raise InputError(f"method: expected one of {list(METHODS)}, got {method!r}")
    style_weights = pop_deprecated(gatys_options, "weights", "style_weights", style_weights, "stylize")
    # What both backends take, named once: each backend checks its own share of it.
    arguments: dict[str, Any] = dict(
        model=model,
        content_size=content_size,
        style_size=style_size,
        crop=crop,
        preserve_color=preserve_color,
        style_weights=style_weights,
        mask=mask,
        device=device,
        dtype=dtype,
        max_memory=max_memory,
        tile_size=tile_size,
        max_pixels=max_pixels,
        callback=callback,
        output_type=output_type,
        backend=backend,
    )
    # The single place where a backend is chosen; further methods are added here.
    if method == "gatys":
        return _stylize_gatys(content, style, alpha, **arguments, **gatys_options)
    if gatys_options:
        raise InputError(f"unexpected argument(s) {sorted(gatys_options)} for method='adain'")
    return stylize_adain(content, style, alpha, **arguments)


def _stylize_gatys(
    content,
    style,
    alpha,
    *,
    crop: bool,
    content_size,
    style_size,
    mask,
    output_type,
    tile_size: int | None,
    max_pixels: int,
    backend: str | None,
    **options,
):
    """``stylize(method="gatys")``: stylize's arguments handed to ``adain.gatys`` (which checks them all
    before loading weights); it has no alpha, no ``tile_size`` nor ``max_pixels`` (refused when given), and
    no crop of its own: the inputs are cropped first."""
    given = {
        "tile_size": tile_size is not None,
        "max_pixels": max_pixels != DEFAULT_MAX_PIXELS,
        "backend": backend is not None,
    }
    adain_only = [name for name, is_given in given.items() if is_given]
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
    styles = [
        images.to_tensor(s, size=style_size, crop=True, what=f"style[{i}]") for i, s in enumerate(style_list(style))
    ]
    return content_t, styles, mask_t
