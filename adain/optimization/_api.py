"""``adain.gatys``: image optimisation style transfer (Gatys, Ecker & Bethge 2016) on the package's VGG.

This module holds the two entry points and the order of a run: options and inputs checked (``_inputs``),
weights loaded and images decoded, the working size chosen from the memory estimate (``_memory``), then the
pyramid of scales run (``_scales``) and the result brought back to the content's size.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from PIL import Image
from torch import Tensor

from .._images import ImageLike, tensor_to_pil
from .._runtime import resolve_device
from ..errors import InputError
from ..model import AdaINModel
from ..modeling._ops import coral
from ._inputs import autocast_dtype, check_inputs, load_encoder, make_options, read_images
from ._memory import working_size
from ._optimize import Callback
from ._options import options_signature
from ._pyramid import resize
from ._scales import frozen, run_scales


def gatys(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    *,
    model: AdaINModel | None = None,
    callback: Callback | None = None,
    **options: Any,
) -> Image.Image:
    """Stylize ``content`` with ``style`` by optimising the image (Gatys et al. 2016).

    Every image and option is checked (files: their headers) before weights are loaded, and the memory the
    run needs is estimated before anything is allocated. Guide: [Gatys](../guides/gatys.md).

    Arguments:
        content: the content image: a path, ``PIL.Image``, HxWxC numpy array or CxHxW tensor in [0, 1], as
            ``adain.stylize`` takes it.
        style: one style image (the same kinds), or a list of them: blended with ``style_weights``, or placed
            by ``mask`` (two styles) or ``masks`` (one per style).
        model: an [``AdaINModel``][adain.AdaINModel] whose encoder (up to relu5_1) is used, never modified;
            ``None``: ``adain.load_pretrained()``.
        callback: ``None``, or a function called with a [``GatysProgress``][adain.GatysProgress] after every
            optimisation step; returning ``True`` stops the run early (the result so far is returned, at the
            output size).
        **options: any field of [``GatysOptions``][adain.optimization.GatysOptions], which lists each one with
            its default and meaning (``content_size``, ``style_weight``, ``iterations``, ``device``, ...).

    Returns:
        An RGB ``PIL.Image`` of exactly the content's size after ``content_size`` resizing.

    Raises:
        InputError: a bad option or image (``ImageReadError`` for an unreadable file), or, with
            ``on_oom="error"``, a run the memory estimate says will not fit ``max_memory``.
    """
    return tensor_to_pil(gatys_tensor(content, style, model=model, callback=callback, **options).clamp(0, 1))


# typeshed's FunctionType lacks __signature__, the attribute inspect.signature reads first (PEP 362).
gatys.__signature__ = options_signature(  # type: ignore[attr-defined]
    gatys, list(inspect.signature(gatys).parameters.values())[:4]
)


def gatys_tensor(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    *,
    model: AdaINModel | None = None,
    callback: Callback | None = None,
    **options: Any,
) -> Tensor:
    """As ``gatys``, but returns the ``(3, H, W)`` float32 result on the CPU, unclamped (about [0, 1]).

    Arguments:
        content: the content image, as in [``gatys``][adain.gatys].
        style: one style image or a list, as in ``gatys``.
        model: an ``AdaINModel`` or ``None``, as in ``gatys``.
        callback: receives a ``GatysProgress`` after every step, as in ``gatys``.
        **options: any field of [``GatysOptions``][adain.optimization.GatysOptions].

    Returns:
        The ``(3, H, W)`` float32 tensor on the CPU, ``H x W`` the content's size after ``content_size``
        resizing; not clamped (about [0, 1]).
    """
    opts = make_options(options)
    if model is not None and not isinstance(model, AdaINModel):
        raise InputError(f"model: expected an adain.AdaINModel or None, got {type(model).__name__}")
    device = resolve_device(opts.device)
    autocast = autocast_dtype(opts, device)
    styles = check_inputs(content, style, opts)  # everything checked before weights are loaded
    encoder = load_encoder(model, device)

    content_t, style_ts = read_images(content, styles, opts)
    if opts.preserve_color == "coral":
        style_ts = [coral(s, content_t).clamp(0, 1) for s in style_ts]
    height, width = content_t.shape[-2:]
    final_style_short = opts.style_size or max(16, round(opts.style_scale * min(height, width)))

    def style_sizes(h: int, w: int) -> list[tuple[int, int]]:
        return [_style_size(s, round(final_style_short * min(h, w) / min(height, width))) for s in style_ts]

    work = working_size(opts, (height, width), style_sizes, 2 if autocast else 4, device)
    with frozen(encoder, device):
        out = run_scales(encoder, content_t, style_ts, opts, device, autocast, work, style_sizes, callback)
    if work != (height, width):
        out = resize(out, (height, width))
    return out[0].float().cpu()


def _style_size(style: Tensor, short: int) -> tuple[int, int]:
    """``(h, w)`` of ``style`` (``(3, H, W)``) resized so that its shorter side is ``short`` (at least 16)."""
    h, w = style.shape[-2:]
    s = min(h, w)
    return max(16, round(h * short / s)), max(16, round(w * short / s))
