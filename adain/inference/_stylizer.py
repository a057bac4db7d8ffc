"""Stylizing images with a trained AdaIN model: style caching, exact output sizes, devices, memory.

``Stylizer`` encodes a style once (``set_style``) and then stylizes many content images or batches of
video frames; ``stylize`` is the one-call wrapper. Everything that is not a pure tensor operation of
the model (where tensors live, their dtype, exact output sizes, memory limits) is decided here;
shared argument checks live in ``adain._arguments``, the checks of a whole call before any work in
``adain.inference._checks``, devices/dtypes/memory in ``adain._runtime``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from PIL import Image
from torch import Tensor

from .. import _images as images
from . import _checks as preflight, _prepared as prepared, _tiling as tiling, _transfer as transfer
from .._arguments import check_alpha, check_int, check_size, pop_deprecated
from ..modeling._color import luma, match_luma, replace_luma
from ..errors import InputError
from .._io import DEFAULT_MAX_PIXELS
from ..model import AdaINModel, load_pretrained
from ..modeling import _padding as padding
from ..modeling._ops import calc_mean_std, coral
from ..optimization._api import gatys
from .._runtime import check_max_memory, memory_budget, resolve_device, resolve_dtype, to_device, to_host
from ._tiling import TileProgress

DEFAULT_SIZE = 512
"""Default shorter side of content and style images, as in the reference port's test script."""

METHODS = ("adain", "gatys")
"""Values accepted by ``stylize(method=...)``."""

StatsHook = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
"""``(mean, std) -> (mean, std)`` of content features: see ``Stylizer.__call__(content_stats=...)``."""

BYTES_PER_PIXEL = 1200
"""Peak memory per content pixel of one float32 encode + decode, in bytes (measured on CPU at 1024^2:
about 1070; the full-resolution 64-channel convs and their reflection-padded copies dominate). Half
precision needs half of it. Used to refuse images that cannot fit before allocating anything."""

@dataclass
class _StyleSpec:
    """What ``set_style`` prepared. ``stats`` is cached unless the style depends on the content."""

    images: list[Tensor]  # (1, 3, h, w) float32 in [0, 1] on the device, for content-dependent modes
    style_weights: list[float]
    mask: Tensor | None  # (H, W) bool on the device, True = first style
    color: str | None  # None, "coral" or "luminance"
    stats: list[tuple[Tensor, Tensor]] | None


class Stylizer:
    """An AdaIN model on a device, with the statistics of one style (or blend of styles) cached.

    Arguments:
        model: an ``AdaINModel``, never modified: the copy that runs is prepared once per model and setting
            and shared while the model is unchanged (``adain.inference._prepared``); later changes need a new ``Stylizer``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; default CUDA when available, else CPU.
        dtype: compute dtype of the convolutions: ``"float32"`` (reference parity up to float rounding),
            ``"bfloat16"``, ``"float16"`` (CUDA); ``None`` = bf16 on CUDA and on CPUs with native bf16,
            float32 elsewhere (``adain._runtime.resolve_dtype``). Feature statistics are always float32.
        max_memory: bytes one call may use for activations; ``None`` = 80% of the memory available on
            the device when called. Larger inputs are split into smaller batches, a single image too large
            alone is stylized in tiles (``adain.inference._tiling``, the same result), and one too large even for those is
            refused with ``InputError`` before anything is allocated.
        compile: ``torch.compile`` the networks (opt-in, ``adain.inference._compiled``): ``True``, a mode, or ``torch.compile``
            arguments; once per shape bucket, listed in the ``compile_stats`` attribute (else ``None``).

    Usage::

        stylizer = Stylizer(model).set_style("style.jpg")
        frames_out = stylizer(frames, alpha=0.8)   # (N, 3, H, W) in [0, 1] -> same shape
        picture = stylizer("photo.jpg")            # PIL.Image of the photo's exact size
    """

    def __init__(
        self,
        model: AdaINModel,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        *,
        max_memory: int | None = None,
        compile: bool | str | Mapping | None = False,
    ) -> None:
        if not isinstance(model, AdaINModel):
            raise InputError(f"model: expected an adain.AdaINModel, got {type(model).__name__}")
        max_memory = check_max_memory(max_memory)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.max_memory = max_memory
        self.eps = model.config.eps
        # channels_last: measured faster on CPU (about 25% at 1024^2 with oneDNN) and the layout tensor
        # cores want on CUDA; it changes no value beyond float summation order.
        self.memory_format = torch.channels_last
        self.model = prepared.prepare(model, self.device, self.dtype, self.memory_format, compile=compile)
        self.compile_stats = getattr(self.model, "stats", None)  # adain.inference._compiled.CompileStats, shared by model
        self._style: _StyleSpec | None = None

    # ---- style ---------------------------------------------------------------------------------------

    @torch.inference_mode()
    def set_style(
        self,
        style,
        *,
        style_size: int | None = DEFAULT_SIZE,
        crop: bool = False,
        style_weights: Sequence[float] | None = None,
        mask=None,
        preserve_color: bool | str | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        **deprecated,
    ) -> Stylizer:
        """Load, encode and cache a style. Returns ``self`` so calls can be chained.

        Arguments:
            style: one image (path, ``PIL.Image``, HxWxC numpy array, CxHxW tensor in [0, 1]) or a list.
            style_size: new shorter side of each style image; ``None`` keeps its size.
            crop: centre square crop of each style image.
            style_weights: one weight per style for interpolation, normalised to sum 1; default equal.
            mask: with exactly two styles: an image, foreground (luma >= 0.5) gets the first style,
                background the second; each region's content statistics are its own. Its aspect ratio must
                be the content's (checked at each call; any resolution, resized to the content).
            preserve_color: ``False``; ``True``/``"coral"`` recolours each style image to the content
                (CORAL, as the reference); ``"luminance"`` transfers style to luminance only and keeps
                the content's chroma. Both depend on the content, so the style is re-encoded per image.
            max_pixels: style and mask files with more pixels are refused (decompression bombs).
        """
        style_weights = pop_deprecated(deprecated, "weights", "style_weights", style_weights, "set_style")
        if deprecated:
            raise InputError(f"set_style: unexpected argument(s) {sorted(deprecated)}")
        given = preflight.check_styles(style, style_size=style_size, style_weights=style_weights, mask=mask,
                                       preserve_color=preserve_color, max_pixels=max_pixels)
        for size, name in zip(given.sizes, given.names):
            self._frames_per_chunk(*preflight.target_size(size, given.style_size, crop), 1, what=name)
        mask_t = None if mask is None else images.to_mask(mask, max_pixels=max_pixels).to(self.device)
        tensors = [
            images.to_tensor(s, size=given.style_size, crop=crop, what=name, max_pixels=max_pixels
                             ).to(self.device, copy=True)[None]
            for s, name in zip(given.styles, given.names)
        ]
        stats = None if given.color else [self._encode_stats(img) for img in tensors]
        self._style = _StyleSpec(tensors, given.weights, mask_t, given.color, stats)
        return self

    def _encode_stats(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """``(1, 3, h, w)`` style image -> float32 (mean, std) of its relu4_1 features."""
        h, w = image.shape[-2:]
        feat = self._encode(padding.min_encodable(image))
        return calc_mean_std(feat[..., : padding.feature_side(h), : padding.feature_side(w)], self.eps)

    def _encode(self, x: Tensor) -> Tensor:
        x = x.to(self.dtype).contiguous(memory_format=self.memory_format)
        return self.model.encode(x)

    # ---- content -------------------------------------------------------------------------------------

    def __call__(self, content, alpha: float = 1.0, *, content_size: int | None = None, crop: bool = False,
                 content_stats: StatsHook | None = None, tile_size: int | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS, callback: Callable[[TileProgress], None] | None = None):
        """Stylize one image, a list of images, or a batch with the cached style.

        Arguments:
            content: an ``(N, C, H, W)`` tensor batch (float in [0, 1] or uint8; e.g. video frames), a
                ``(C, H, W)`` tensor, a path, ``PIL.Image``, numpy array, or a list of these.
            alpha: style strength in [0, 1]; 0 reproduces the content through the decoder.
            content_size: new shorter side; ``None`` (default) keeps each image's size.
            crop: centre square crop of the content.
            content_stats: ``(mean, std) -> (mean, std)``, given each batch's relu4_1 content statistics
                (float32, ``(N, C, 1, 1)``, frames in order) and returning those AdaIN normalises with
                (e.g. smoothed over video frames, ``adain.video._temporal``). Not with a mask.
            tile_size: ``None``: an image too large for ``max_memory`` is stylized in overlapping tiles with
                the untiled result (``adain.inference._tiling``); an integer: tiles of about that many output pixels a side.
            max_pixels: a content file with more pixels is refused (decompression bomb).
            callback: receives a ``TileProgress`` after each step of a tiled image.
        Returns:
            Tensors in, tensors out: ``(N, 3, H', W')`` / ``(3, H', W')`` float32 in [0, 1] on the
            input's device; anything else gives a ``PIL.Image`` (a list gives a list). ``H', W'`` is the
            (resized) content size exactly.
        """
        if self._style is None:
            raise InputError("no style set: call set_style(...) first")
        alpha = check_alpha(alpha)
        content_size = check_size(content_size, "content_size")
        tile_size = check_int(tile_size, "tile_size", allow_none=True, hint=" (None = only when needed)")
        if content_stats is not None and self._style.mask is not None:
            raise InputError("content_stats: cannot be combined with a mask (each region has its own statistics)")
        if isinstance(content, (list, tuple)):
            options = dict(content_size=content_size, crop=crop, content_stats=content_stats, tile_size=tile_size,
                           max_pixels=max_pixels, callback=callback)
            return [self(c, alpha, **options) for c in content]
        size = preflight.check_content(content, content_size=content_size, max_pixels=max_pixels)
        mask = None if self._style.mask is None else images.fit_mask(self._style.mask, size, crop=crop)
        h, w = preflight.target_size(size, content_size, crop)
        tiles = tiling.plan(h, w, tile_size, *self._budget(), self.device)  # refuses before any large allocation
        tiled = (self, alpha, mask, content_stats, tiles, callback)
        if isinstance(content, Tensor) and content.dim() == 4:
            batch = images.to_batch(content, size=content_size, crop=crop, what="content")
            if tiles is not None:
                return torch.stack([tiling.stylize(*tiled, frame) for frame in batch]).to(content.device)
            parts = batch.split(self._frames_per_chunk(h, w, batch.shape[0]))
            out = torch.cat([self._run(to_device(part, self.device), alpha, mask, content_stats) for part in parts])
            return to_host(out, content.device)
        image = images.to_tensor(content, size=content_size, crop=crop, what="content", max_pixels=max_pixels)
        if tiles is not None:
            out = tiling.stylize(*tiled, image, as_uint8=not isinstance(content, Tensor))
            return out.to(content.device) if isinstance(content, Tensor) else Image.fromarray(out.numpy(), mode="RGB")
        out = self._run(to_device(image, self.device)[None], alpha, mask, content_stats)[0]
        return to_host(out, content.device) if isinstance(content, Tensor) else images.tensor_to_pil(out)

    @torch.inference_mode()
    def _run(self, x: Tensor, alpha: float, mask: Tensor | None, hook: StatsHook | None = None) -> Tensor:
        """``(N, 3, H, W)`` float32 in [0, 1] on the device -> stylized, same shape, clamped to [0, 1]."""
        spec = self._style
        if spec.color is None:
            return self._stylize(x, spec.stats, alpha, mask, hook).clamp_(0, 1)
        # The style depends on each content image: one image at a time.
        return torch.cat([self._stylize_dependent(frame[None], alpha, mask, hook) for frame in x]).clamp_(0, 1)

    def _style_stats(self, x: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Each style's (mean, std) for the content ``x``: ``(1, 3, H, W)``, or its luma ``(1, 1, H, W)``
        with ``preserve_color="luminance"`` (the cached statistics without colour preservation)."""
        spec = self._style
        if spec.color is None:
            return spec.stats
        if spec.color == "coral":
            # Reference: the style image is recoloured to the content before encoding, not clamped.
            return [self._encode_stats(coral(img[0], x[0])[None]) for img in spec.images]
        return [self._encode_stats(match_luma(luma(img), x).expand(-1, 3, -1, -1)) for img in spec.images]

    def _stylize_dependent(self, x: Tensor, alpha: float, mask: Tensor | None,
                           hook: StatsHook | None) -> Tensor:
        if self._style.color == "coral":
            return self._stylize(x, self._style_stats(x) if alpha > 0 else None, alpha, mask, hook)
        # Luminance only (Gatys et al. 2017, "Controlling perceptual factors"): stylize the luma as a
        # gray image, with the style's luma mean/std matched to the content's, then put the content's
        # chroma back. YIQ keeps luma and chroma separable with a fixed linear map.
        y_c = luma(x)
        out = self._stylize(y_c.expand(-1, 3, -1, -1), self._style_stats(y_c) if alpha > 0 else None, alpha, mask, hook)
        return replace_luma(x, luma(out))

    def _stylize(self, x: Tensor, stats, alpha: float, mask: Tensor | None, hook: StatsHook | None,
                 frozen=None) -> Tensor:
        """Core pipeline on an ``(N, 3, H, W)`` batch: pad, encode, AdaIN with the styles' ``stats``, decode,
        crop (unclamped); ``mask`` (fitted to the content) places the two styles. ``frozen``: see ``_transfer``."""
        h, w = x.shape[-2:]
        f_c = self._encode(padding.pad_bottom_right(x, padding.padded_side(h), padding.padded_side(w)))
        if alpha > 0:
            t = self._transfer(f_c, stats, mask, (h, w), hook, frozen)
            # Same order of operations as the reference: t * alpha + f_c * (1 - alpha).
            feat = t if alpha == 1 else t * alpha + f_c.float() * (1 - alpha)
        else:
            feat = f_c
        out = self.model.decode(feat.to(self.dtype).contiguous(memory_format=self.memory_format))
        return out[..., :h, :w].float().contiguous()

    def _transfer(self, f_c: Tensor, stats, mask: Tensor | None, size: tuple[int, int], hook: StatsHook | None = None,
                  frozen=None) -> Tensor:
        """AdaIN on the padded content features of a ``size`` image, with the content statistics of its valid
        cells only (``adain.inference._transfer``). ``frozen``: the statistics measured beforehand over the whole image
        of which ``f_c`` is a tile (``adain.inference._tiling``); ``mask`` is then on the tile's feature grid already."""
        fg = mask if mask is None or frozen is not None else padding.feature_mask(mask, *size)
        if frozen is None:
            frozen = transfer.content_stats(f_c, fg, size, self.eps)
            frozen = frozen if hook is None else hook(*frozen)
        return transfer.adain(f_c, frozen, stats, self._style.style_weights, fg)

    # ---- memory --------------------------------------------------------------------------------------

    def _budget(self) -> tuple[int | None, int]:
        """Bytes a call may use on the device (``None``: unknown) and the bytes per pixel it needs."""
        return memory_budget(self.device, self.max_memory), BYTES_PER_PIXEL * torch.finfo(self.dtype).bits // 32

    def _frames_per_chunk(self, h: int, w: int, n: int, what: str = "content") -> int:
        """How many ``h x w`` frames fit in one forward pass; ``InputError`` if not even one does."""
        limit, per_pixel = self._budget()
        if limit is None:
            return n
        per_frame = per_pixel * padding.padded_side(h) * padding.padded_side(w)
        if per_frame > limit:
            fits = int(math.sqrt(limit / per_pixel * min(h, w) / max(h, w)))
            raise InputError(
                f"{what}: a {w}x{h} image needs about {per_frame / 2**30:.1f} GiB on {self.device}, over the "
                f"limit of {limit / 2**30:.1f} GiB; pass a smaller {what.split('[')[0]}_size (at most about {fits}), "
                "or raise max_memory if the memory really is there"
            )
        return max(1, min(n, limit // per_frame))


def stylize(
    content,
    style,
    alpha: float = 1.0,
    *,
    model: AdaINModel | None = None,
    content_size: int | None = DEFAULT_SIZE,
    style_size: int | None = DEFAULT_SIZE,
    crop: bool = False,
    preserve_color: bool | str | None = None,
    style_weights: Sequence[float] | None = None,
    mask=None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    method: str = "adain",
    max_memory: int | None = None,
    tile_size: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    callback: Callable | None = None,
    **gatys_options,
) -> Image.Image:
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
    Returns:
        An RGB ``PIL.Image`` of exactly the (resized, cropped) content size.
    """
    check_alpha(alpha)
    style_weights = pop_deprecated(gatys_options, "weights", "style_weights", style_weights, "stylize")
    if isinstance(content, Tensor) and content.dim() == 4 and content.shape[0] != 1:
        raise InputError(
            f"content: stylize takes one image, got a batch of shape {tuple(content.shape)}; use a Stylizer"
        )
    if method not in METHODS:
        raise InputError(f"method: expected one of {list(METHODS)}, got {method!r}")
    # The single place where a backend is chosen; further methods are added here.
    if method == "gatys":
        return _stylize_gatys(content, style, alpha, model=model, content_size=content_size, style_size=style_size,
                              crop=crop, preserve_color=preserve_color, style_weights=style_weights, mask=mask,
                              device=device, dtype=dtype, max_memory=max_memory, callback=callback,
                              adain_only=[name for name, given in (("tile_size", tile_size is not None),
                                          ("max_pixels", max_pixels != DEFAULT_MAX_PIXELS)) if given], **gatys_options)
    if gatys_options:
        raise InputError(f"unexpected argument(s) {sorted(gatys_options)} for method='adain'")
    # Everything is checked (files: their headers) before weights are loaded, let alone downloaded.
    size = preflight.check_content(content, content_size=content_size, max_pixels=max_pixels)
    preflight.check_styles(style, style_size=style_size, style_weights=style_weights, mask=mask,
                           preserve_color=preserve_color, content_hw=size, max_pixels=max_pixels)
    resolve_dtype(dtype, resolve_device(device))
    check_max_memory(max_memory)
    stylizer = Stylizer(model if model is not None else load_pretrained(), device, dtype, max_memory=max_memory)
    stylizer.set_style(style, style_size=style_size, crop=crop, style_weights=style_weights, mask=mask,
                       preserve_color=preserve_color, max_pixels=max_pixels)
    result = stylizer(content, alpha, content_size=content_size, crop=crop, tile_size=tile_size, max_pixels=max_pixels,
                      callback=callback)
    return result if isinstance(result, Image.Image) else images.tensor_to_pil(result)


def _stylize_gatys(content, style, alpha: float, *, crop: bool, content_size, style_size, mask, adain_only,
                   **options):
    """``stylize(method="gatys")``: stylize's arguments handed to ``adain.gatys`` (which checks them all
    before loading weights); it has no alpha, and no crop of its own: the inputs are cropped first."""
    if adain_only:
        raise InputError(f"{', '.join(adain_only)}: only for method='adain' (gatys reads and sizes images its own way)")
    if alpha != 1:
        raise InputError(
            f"alpha: method='gatys' has no alpha (got {alpha}); pass style_weight= (or content_weight=) instead"
        )
    if crop:
        content, style, mask = preflight.square_crop(content, style, mask, content_size, style_size)
        content_size = style_size = None
    return gatys(content, style, content_size=content_size, style_size=style_size, mask=mask, **options)
