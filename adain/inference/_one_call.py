"""The one-call ``stylize``: one image with AdaIN, behind ``adain.stylize(method="adain")`` (``adain.methods``).

The same boundary as the ``Stylizer`` (``adain.inference._stylizer``: its ``load_style`` and ``stylize_one``),
for a single content and style with no ``Stylizer`` kept: every argument and image is checked before the
model is built, and weights are loaded (or downloaded) only when no ``model`` is given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .._images import ImageLike
from .._io import DEFAULT_MAX_PIXELS
from ..model import AdaINModel, load_pretrained
from . import _checks as checks
from ._engine import Engine
from ._stylizer import DEFAULT_SIZE, load_style, stylize_one
from ._tiling import TileProgress


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
    max_memory: int | None = None,
    tile_size: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    callback: Callable[[TileProgress], None] | None = None,
    output_type: str = "pil",
    backend: str | None = None,
):
    """One image in one call with AdaIN: ``adain.stylize(method="adain")`` (``adain.methods.stylize``, whose
    docstring describes the arguments). Everything is checked once (files: their headers) before weights are
    loaded, let alone downloaded. Returns the result as ``output_type`` says (default an RGB ``PIL.Image``)."""
    call = checks.check_call(
        alpha=alpha,
        content_size=content_size,
        crop=crop,
        tile_size=tile_size,
        max_pixels=max_pixels,
        output_type=output_type,
        by_input=False,
    )
    (item,) = checks.check_contents(content, max_pixels=call.max_pixels, many=False)
    checks.check_resized(item, call.content_size, call.max_pixels, "content_size")
    given = checks.check_styles(
        style,
        style_size=style_size,
        style_weights=style_weights,
        mask=mask,
        preserve_color=preserve_color,
        max_pixels=call.max_pixels,
        content_hw=item.size,
    )
    device, dtype, max_memory, _, backend = checks.check_runtime(device, dtype, max_memory, backend=backend)
    engine = Engine(
        checks.check_model(model) if model is not None else load_pretrained(),
        device,
        dtype,
        max_memory=max_memory,
        backend=backend,
    )
    return stylize_one(engine, load_style(engine, given, call.crop, call.max_pixels), item, call, None, callback)
