"""``adain.gatys``: image optimisation style transfer (Gatys, Ecker & Bethge 2016) on the package's VGG.

This module owns the edges of the backend: reading inputs, choosing the device and precision,
checking memory before allocating, building each pyramid scale's targets and running the scales.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from .._arguments import check_mask_styles, color_mode, normalize_style_weights, pop_deprecated
from .._images import ImageLike, check_mask_aspect, image_size, mask_size, tensor_to_pil, to_mask, to_tensor
from .._runtime import memory_budget, resolve_device, resolve_dtype
from ..errors import InputError
from ..inference._checks import style_list
from ..model import AdaINModel, load_pretrained
from ..modeling import _padding as padding
from ..modeling._color import luma, match_luma, replace_luma
from ..modeling._encoder import LAYER_NAMES
from ..modeling._ops import coral
from ._losses import STYLE_LOSSES, ContentLoss
from ._memory import MemoryEstimate, estimate_memory, largest_fitting_size
from ._optimize import GatysProgress, Objective, make_progress, optimize_scale
from ._options import GatysOptions, options_signature
from ._pyramid import pyramid_sizes, resize

Callback = Callable[[GatysProgress], "bool | None"]

_POOLS = {"pool1": "relu1_2", "pool2": "relu2_2", "pool3": "relu3_4", "pool4": "relu4_4"}


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


_DEPRECATED = {"style_blend": "style_weights", "memory_limit": "max_memory"}


def _make_options(options: dict) -> GatysOptions:
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


def _autocast_dtype(opts: GatysOptions, device: torch.device) -> torch.dtype | None:
    """The encoder's autocast dtype, ``None`` for plain float32 (float16 overflows in VGG: refused)."""
    dtype = resolve_dtype(opts.dtype, device, allowed=("float32", "bfloat16"))
    return None if dtype == torch.float32 else dtype


def _check_inputs(content: ImageLike, style, opts: GatysOptions) -> list:
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


def _encoder(model, device: torch.device) -> nn.Module:
    """The encoder of ``model`` (``None``: ``adain.load_pretrained()``) on ``device``; the model is not changed."""
    if model is None:
        model = load_pretrained()
    encoder = model.encoder
    if next(encoder.parameters()).device != device:
        encoder = copy.deepcopy(encoder).to(device)
    return encoder


def plan_memory(
    opts: GatysOptions, height: int, width: int, style_sizes: list[tuple[int, int]], feature_bytes: int
) -> MemoryEstimate:
    """The memory estimate for optimising ``height x width`` with ``opts`` (see ``adain.optimization._memory``)."""
    layers = list(opts.content_layers) + list(opts.style_layers)
    return estimate_memory(
        height,
        width,
        style_sizes=style_sizes,
        deepest=max(layers, key=LAYER_NAMES.index),
        style_layers=tuple(opts.style_layers),
        style_terms=len(style_sizes) if opts.masks or opts.mask is not None else 1,
        style_loss=opts.style_loss,
        optimizer=opts.optimizer,
        history_size=opts.history_size,
        channels=1 if opts.preserve_color == "luminance" else 3,
        feature_bytes=feature_bytes,
        pooling=opts.pooling,
    )


def _style_size(style: Tensor, short: int) -> tuple[int, int]:
    h, w = style.shape[-2:]
    s = min(h, w)
    return max(16, round(h * short / s)), max(16, round(w * short / s))


@contextlib.contextmanager
def _frozen(encoder, device: torch.device) -> Iterator:
    """Deterministic cuDNN for the run (same seed -> same pixels) and no weight gradients; restored after."""
    flags = [p.requires_grad for p in encoder.parameters()]
    saved = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    try:
        encoder.requires_grad_(False)
        if device.type == "cuda":
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        yield
    finally:
        for p, flag in zip(encoder.parameters(), flags):
            p.requires_grad_(flag)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


def _pool_scale(encoder, image: Tensor, autocast: torch.dtype | None) -> dict[str, float]:
    """Factors making average pooling's output as large (on average) as max pooling's, per pool layer.

    Average pooling of a ReLU map is smaller than max pooling of it, and the loss shrinks layer after
    layer; we measure each pool's input in the max-pooling network once (on the content at the first
    scale) and scale the average-pooled output by ``mean(maxpool(a)) / mean(avgpool(a))``.
    """
    image = padding.pad_for_layers(image, _POOLS.values())  # tiny images, as the objective pads them
    with torch.no_grad(), torch.autocast(image.device.type, dtype=autocast) if autocast else contextlib.nullcontext():
        taps = encoder(image, tuple(_POOLS.values()), pooling="max")
    scale = {}
    for pool, layer in _POOLS.items():
        a = taps[layer].float()
        avg = F.avg_pool2d(a, 2, 2, ceil_mode=True).mean()
        scale[pool] = float(F.max_pool2d(a, 2, 2, ceil_mode=True).mean() / avg.clamp_min(1e-12))
    return scale


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
    opts = _make_options(options)
    if model is not None and not isinstance(model, AdaINModel):
        raise InputError(f"model: expected an adain.AdaINModel or None, got {type(model).__name__}")
    device = resolve_device(opts.device)
    autocast = _autocast_dtype(opts, device)
    styles = _check_inputs(content, style, opts)  # everything checked before weights are loaded
    encoder = _encoder(model, device)

    content_t = to_tensor(content, size=opts.content_size, what="content")
    styles = [to_tensor(s, size=None, what=f"style[{i}]") for i, s in enumerate(styles)]
    if opts.preserve_color == "coral":
        styles = [coral(s, content_t).clamp(0, 1) for s in styles]
    height, width = content_t.shape[-2:]
    final_style_short = opts.style_size or max(16, round(opts.style_scale * min(height, width)))

    def style_sizes(h: int, w: int) -> list[tuple[int, int]]:
        return [_style_size(s, round(final_style_short * min(h, w) / min(height, width))) for s in styles]

    work = _working_size(opts, (height, width), style_sizes, 2 if autocast else 4, device)
    with _frozen(encoder, device):
        out = _run(encoder, content_t, styles, opts, device, autocast, work, style_sizes, callback)
    if work != (height, width):
        out = resize(out, (height, width))
    return out[0].float().cpu()


def _working_size(
    opts: GatysOptions, size: tuple[int, int], style_sizes, feature_bytes: int, device: torch.device
) -> tuple[int, int]:
    """The size to optimise at: ``size`` when the memory estimate fits the budget, else (``on_oom="shrink"``)
    the largest size that does; ``InputError`` naming that size otherwise."""
    height, width = size
    budget = memory_budget(device, opts.max_memory)
    estimate = plan_memory(opts, height, width, style_sizes(height, width), feature_bytes)
    if budget is None or estimate.total <= budget:
        return size
    fits = largest_fitting_size(
        height, width, budget, lambda h, w: plan_memory(opts, h, w, style_sizes(h, w), feature_bytes)
    )
    hint = (
        f"the largest size that fits is about {min(fits)} px (content_size={min(fits)})"
        if fits
        else "not even a 16 px image fits"
    )
    if opts.on_oom == "error" or fits is None:
        raise InputError(
            f"content_size: optimising {width}x{height} needs about {estimate.total / 2**30:.2f} GiB on {device} "
            f"but {budget / 2**30:.2f} GiB is available; {hint}; or pass on_oom='shrink', a smaller "
            "history_size, optimizer='adam', or dtype='bfloat16'"
        )
    return fits


def _region_guides(opts: GatysOptions, size: tuple[int, int]) -> list[Tensor] | None:
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


@dataclass(frozen=True)
class _Targets:
    """What the style terms are measured from, at every scale: the style images on the device (luma-matched
    with ``preserve_color='luminance'``), their blend weights, and the region guides (``None``: no masks)."""

    styles: list[Tensor]
    blend: list[float]
    masks: list[Tensor] | None


def _run(encoder, content_t, styles, opts: GatysOptions, device, autocast, size, style_sizes, callback) -> Tensor:
    """Optimise the image scale by scale, smallest first (one scale without ``pyramid``), at ``size``."""
    start = time.perf_counter()
    luminance = opts.preserve_color == "luminance"
    content = content_t[None].to(device)
    styles = [s[None].to(device) for s in styles]
    content_rgb = content
    if luminance:
        content_y = luma(content)
        styles = [match_luma(luma(s), content_y).expand(-1, 3, -1, -1) for s in styles]
        content = content_y
    masks = _region_guides(opts, size)
    targets = _Targets(
        styles,
        normalize_style_weights(opts.style_weights, len(styles)),
        [m.to(device) for m in masks] if masks is not None else None,
    )
    sizes = pyramid_sizes(*size, min_size=opts.min_size) if opts.pyramid else [size]
    lr, decay = opts.resolved_lr(), opts.resolved_decay()
    gen = torch.Generator().manual_seed(opts.seed)

    x: Tensor | None = None
    previous_content: Tensor | None = None
    adam_state, pool_scale = None, None
    for index, hw in enumerate(sizes):
        final = index == len(sizes) - 1
        steps = opts.iterations if final or opts.coarse_iterations is None else opts.coarse_iterations
        content_s = resize(content, hw)
        if pool_scale is None and opts.pooling == "avg":
            pool_scale = _pool_scale(encoder, content_s.expand(-1, 3, -1, -1), autocast)
        objective = _scale_objective(encoder, opts, content_s, targets, hw, style_sizes(*hw), pool_scale, autocast)
        if x is None:
            x = _initial(opts, content_s, hw, gen, luminance).to(device)
        else:
            # Upsample only what the optimisation changed (the image minus the content at the previous
            # scale) and add it to the sharper content at this scale: an upsampled image alone is blurry,
            # which costs many full-size steps to undo.
            assert previous_content is not None, "set with x at the previous scale"
            x = content_s + resize(x - previous_content, hw)
        previous_content = content_s

        def report(step: int, losses: dict[str, Tensor], index=index, hw=hw, steps=steps) -> bool:
            if callback is None:
                return False  # without a callback the losses are never read: the host never waits per step
            progress = make_progress(index, len(sizes), hw, step, steps, losses, start, device)
            return bool(callback(progress))

        result = optimize_scale(
            objective,
            x,
            optimizer=opts.optimizer,
            steps=steps,
            lr=lr,
            history_size=opts.history_size,
            average_decay=decay,
            adam_state=adam_state,
            report=report,
        )
        x, adam_state = result.image, result.adam_state
        if result.stopped:
            break
    assert x is not None, "sizes holds at least the final size"
    x = resize(x, size)
    if luminance:
        x = replace_luma(resize(content_rgb, size), x)
    return x


def _scale_objective(
    encoder,
    opts: GatysOptions,
    content_s: Tensor,
    targets: _Targets,
    hw: tuple[int, int],
    style_hw: list[tuple[int, int]],
    pool_scale: dict[str, float] | None,
    autocast: torch.dtype | None,
) -> Objective:
    """The loss at one pyramid scale: content and style targets measured from ``content_s`` (of size ``hw``)
    and the styles resized to ``style_hw``. The features are freed on return; the loss terms keep only
    their targets."""
    probe = Objective(
        encoder,
        [],
        [],
        tv_weight=0,
        normalize=False,
        pooling=opts.pooling,
        pool_scale=pool_scale,
        autocast_dtype=autocast,
    )
    probe.layers = tuple(dict.fromkeys(list(opts.content_layers) + list(opts.style_layers)))
    with torch.no_grad():
        c_feats = probe.features(content_s)
        s_feats = [probe.features(resize(s, sh)) for s, sh in zip(targets.styles, style_hw)]
    content_terms = [(layer, ContentLoss(c_feats[layer]), opts.content_weight) for layer in opts.content_layers]
    style_terms = _style_terms(opts, c_feats, s_feats, targets, hw)
    return Objective(
        encoder,
        content_terms,
        style_terms,
        tv_weight=opts.tv_weight,
        normalize=opts.normalize_gradients,
        pooling=opts.pooling,
        pool_scale=pool_scale,
        autocast_dtype=autocast,
    )


def _style_terms(
    opts: GatysOptions,
    c_feats: dict[str, Tensor],
    s_feats: list[dict[str, Tensor]],
    targets: _Targets,
    hw: tuple[int, int],
) -> list[tuple[str, nn.Module, float]]:
    """``(layer, loss, weight)`` per style layer: one loss of the blended styles, or with masks one per
    style, weighted by its region resized to the layer's feature map."""
    loss_cls = STYLE_LOSSES[opts.style_loss]
    layers = list(opts.content_layers) + list(opts.style_layers)
    terms: list[tuple[str, nn.Module, float]] = []
    for layer, lw in zip(opts.style_layers, opts.layer_weight_values()):
        if targets.masks is None:
            loss = loss_cls.from_features([f[layer] for f in s_feats], targets.blend)
            terms.append((layer, loss, opts.style_weight * lw))
            continue
        for k, mask in enumerate(targets.masks):
            # Padded like the image (see Objective.features), then resized to the layer's feature map.
            feat_hw = (c_feats[layer].shape[-2], c_feats[layer].shape[-1])
            region = resize(padding.pad_for_layers(resize(mask, hw), layers), feat_hw)
            loss = loss_cls.from_features([s_feats[k][layer]], [1.0], weight=region)
            terms.append((layer, loss, opts.style_weight * lw))
    return terms


def _initial(
    opts: GatysOptions, content_s: Tensor, hw: tuple[int, int], gen: torch.Generator, luminance: bool
) -> Tensor:
    channels = 1 if luminance else 3
    if isinstance(opts.init, str) and opts.init == "content":
        return content_s.clone()
    if isinstance(opts.init, str) and opts.init == "noise":
        # Drawn on the CPU from a seeded generator, so the start is identical on every device.
        return torch.rand(1, channels, *hw, generator=gen)
    image = to_tensor(opts.init, what="init")[None].to(content_s.device)
    if luminance:
        image = luma(image)
    return resize(image, hw)
