"""The inputs of an optimisation run: checked first, from headers only, then read.

``make_options`` turns ``gatys``'s keyword arguments into ``GatysOptions`` (deprecated names renamed),
``autocast_dtype`` picks the encoder's precision and ``check_inputs`` checks every image of the call
without decoding it; only then are the weights loaded (``load_encoder``) and the images decoded
(``read_images``, ``read_init``, ``region_guides``), so a bad call is refused before anything heavy happens.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .._arguments import check_mask_styles, color_mode, normalize_style_weights, pop_deprecated
from .._images import ImageLike, check_mask_aspect, image_size, mask_size, to_mask, to_tensor
from .._runtime import resolve_dtype
from ..errors import InputError
from ..inference._checks import style_list
from ..model import AdaINModel, load_pretrained
from ._options import GatysOptions
from ._pyramid import resize

_DEPRECATED = {"style_blend": "style_weights", "memory_limit": "max_memory"}


def make_options(options: dict[str, Any]) -> GatysOptions:
    """``GatysOptions`` from ``gatys``'s keyword arguments; ``InputError`` names any unknown one."""
    options = dict(options)
    for old, new in _DEPRECATED.items():
        value = pop_deprecated(options, old, new, options.get(new), "gatys")
        if value is not None:
            options[new] = value
    if "preserve_color" in options:
        options["preserve_color"] = color_mode(options["preserve_color"])
    known = {p for p in GatysOptions.__dataclass_fields__}
    unknown = sorted(set(options) - known)
    if unknown:
        raise InputError(f"unknown option(s) {unknown}; options are {sorted(known)}")
    return GatysOptions(**options)


def autocast_dtype(opts: GatysOptions, device: torch.device) -> torch.dtype | None:
    """The encoder's autocast dtype, ``None`` for plain float32 (float16 overflows in VGG: refused)."""
    dtype = resolve_dtype(opts.dtype, device, allowed=("float32", "bfloat16"))
    return None if dtype == torch.float32 else dtype


def check_inputs(content: ImageLike, style: ImageLike | Sequence[ImageLike], opts: GatysOptions) -> list:
    """The styles as a list, after checking every image of the call without decoding it (files: their
    headers; ``adain._images.image_size``), ``style_weights`` and the masks against the styles, and each
    mask's aspect ratio against the content's; ``gatys`` does this before it loads any weights."""
    styles = style_list(style)
    normalize_style_weights(opts.style_weights, len(styles))
    guides = {} if opts.masks is None else {f"masks[{i}]": m for i, m in enumerate(opts.masks)}
    if opts.masks is not None and len(opts.masks) != len(styles):
        raise InputError(f"masks: {len(opts.masks)} masks for {len(styles)} style images; give one per style")
    if opts.masks is not None and opts.style_weights is not None:
        raise InputError("style_weights: cannot be combined with masks (each region takes its own style)")
    if opts.mask is not None:
        check_mask_styles(len(styles), opts.style_weights, other="masks" if opts.masks is not None else "")
        guides["mask"] = opts.mask
    size = image_size(content, what="content")
    for i, s in enumerate(styles):
        image_size(s, what=f"style[{i}]")
    for name, guide in guides.items():
        check_mask_aspect(mask_size(guide, what=name), size, name)
    if not (isinstance(opts.init, str) and opts.init in ("content", "noise")):
        image_size(opts.init, what="init")
    return styles


def load_encoder(model: AdaINModel | None, device: torch.device) -> nn.Module:
    """The encoder of ``model`` (``None``: ``adain.load_pretrained()``) on ``device``; the model is not changed."""
    if model is None:
        model = load_pretrained()
    encoder = model.encoder
    if next(encoder.parameters()).device != device:
        encoder = copy.deepcopy(encoder).to(device)
    return encoder


def read_images(content: ImageLike, styles: list, opts: GatysOptions) -> tuple[Tensor, list[Tensor]]:
    """The content, resized to ``content_size``, and the styles at their own size, decoded as ``(3, H, W)``
    float32 tensors in [0, 1] on the CPU."""
    content_t = to_tensor(content, size=opts.content_size, what="content")
    return content_t, [to_tensor(s, size=None, what=f"style[{i}]") for i, s in enumerate(styles)]


def read_init(opts: GatysOptions, device: torch.device) -> Tensor:
    """The ``init`` image (not ``"content"`` or ``"noise"``), decoded as ``(1, 3, h, w)`` float32 on ``device``."""
    return to_tensor(opts.init, what="init")[None].to(device)


def region_guides(opts: GatysOptions, size: tuple[int, int]) -> list[Tensor] | None:
    """One ``(1, 1, h, w)`` guide per style, from ``mask`` (two styles) or ``masks`` (one per style).

    Masks are read with the package's one convention (``adain._images.to_mask``: luma >= 0.5 is
    inside), then resized bilinearly, so the guides are soft only along region borders.
    """
    if opts.mask is not None:
        fg = to_mask(opts.mask).float()[None, None]
        return [resize(fg, size), resize(1 - fg, size)]
    if opts.masks is None:
        return None
    return [resize(to_mask(m, what=f"masks[{i}]").float()[None, None], size) for i, m in enumerate(opts.masks)]
