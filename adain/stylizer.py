"""Stylizing images with a trained AdaIN model: style caching, exact output sizes, devices, memory.

``Stylizer`` encodes a style once (``set_style``) and then stylizes many content images or batches of
video frames; ``stylize`` is the one-call wrapper. Everything that is not a pure tensor operation of
the model (where tensors live, their dtype, exact output sizes, memory limits) is decided here;
shared argument checks live in ``adain.arguments``, the checks of a whole call before any work in
``adain.preflight``, devices/dtypes/memory in ``adain.runtime``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from . import images, preflight, prepared
from .arguments import check_alpha, check_size, pop_deprecated
from .color import luma, match_luma, replace_luma
from .compiled import CompiledModel, CompileStats, compile_options
from .errors import InputError
from .model import AdaINModel, load_pretrained
from .modeling import padding
from .modeling.ops import blend_stats, calc_mean_std, coral, masked_mean_std
from .optimization.api import gatys
from .runtime import check_max_memory, memory_budget, resolve_device, resolve_dtype, to_device, to_host

__all__ = ["Stylizer", "stylize", "METHODS", "BYTES_PER_PIXEL"]

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

# ---- feature statistics over the valid region ------------------------------------------------------


def _apply_stats(feat: Tensor, c_stats, s_stats) -> Tensor:
    """``s_std * (feat - c_mean) / c_std + s_mean``, computed in float32, returned as float32."""
    (c_mean, c_std), (s_mean, s_std) = c_stats, s_stats
    scale = s_std / c_std
    return feat.float() * scale + (s_mean - c_mean * scale)


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
        model: an ``AdaINModel``, never modified: the copy that runs (on the device, in the dtype, with fused
            CPU kernels) is prepared once per model and setting and shared (``adain.prepared``), so a second
            ``Stylizer`` of an unchanged model costs nothing; changes to ``model`` after this point are seen
            by a new ``Stylizer``, not by this one.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; default CUDA when available, else CPU.
        dtype: compute dtype of the convolutions: ``"float32"`` (reference parity up to float rounding),
            ``"bfloat16"``, ``"float16"`` (CUDA); ``None`` = bf16 on CUDA and on CPUs with native bf16,
            float32 elsewhere (``adain.runtime.resolve_dtype``). Feature statistics are always float32.
        max_memory: bytes one call may use for activations; ``None`` = 80% of the memory available on
            the device when called. Larger inputs are split into smaller batches, and a single image
            too large even alone is refused with ``InputError`` before anything is allocated.
        compile: ``torch.compile`` the encoder and decoder (opt-in; ``adain.compiled``): ``True``, a mode
            name, or a dict of ``torch.compile`` arguments. Sizes are padded to shape buckets, compiled
            once each (``compile_stats``); worth it for many frames of few sizes.

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
        options = None if compile is False or compile is None else compile_options(compile, self.device)
        self.model = prepared.prepare(model, self.device, self.dtype, self.memory_format, compile=options)
        self._style: _StyleSpec | None = None

    @property
    def compile_stats(self) -> CompileStats | None:
        """With ``compile``: the compilations so far of this model's compiled copy (shared by the Stylizers
        of the same model and settings): graph, input shape and seconds of each; else ``None``."""
        return self.model.stats if isinstance(self.model, CompiledModel) else None

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
        """
        style_weights = pop_deprecated(deprecated, "weights", "style_weights", style_weights, "set_style")
        if deprecated:
            raise InputError(f"set_style: unexpected argument(s) {sorted(deprecated)}")
        given = preflight.check_styles(style, style_size=style_size, style_weights=style_weights, mask=mask,
                                       preserve_color=preserve_color)
        for size, name in zip(given.sizes, given.names):
            self._frames_per_chunk(*preflight.target_size(size, given.style_size, crop), 1, what=name)
        mask_t = None if mask is None else images.to_mask(mask).to(self.device)
        tensors = [
            images.to_tensor(s, size=given.style_size, crop=crop, what=name).to(self.device, copy=True)[None]
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
                 content_stats: StatsHook | None = None):
        """Stylize one image, a list of images, or a batch with the cached style.

        Arguments:
            content: an ``(N, C, H, W)`` tensor batch (float in [0, 1] or uint8; e.g. video frames), a
                ``(C, H, W)`` tensor, a path, ``PIL.Image``, numpy array, or a list of these.
            alpha: style strength in [0, 1]; 0 reproduces the content through the decoder.
            content_size: new shorter side; ``None`` (default) keeps each image's size.
            crop: centre square crop of the content.
            content_stats: ``(mean, std) -> (mean, std)``, given each batch's relu4_1 content statistics
                (float32, ``(N, C, 1, 1)``, frames in order) and returning those AdaIN normalises with
                (e.g. smoothed over video frames, ``adain.video.temporal``). Not with a mask.
        Returns:
            Tensors in, tensors out: ``(N, 3, H', W')`` / ``(3, H', W')`` float32 in [0, 1] on the
            input's device; anything else gives a ``PIL.Image`` (a list gives a list). ``H', W'`` is the
            (resized) content size exactly.
        """
        if self._style is None:
            raise InputError("no style set: call set_style(...) first")
        alpha = check_alpha(alpha)
        content_size = check_size(content_size, "content_size")
        if content_stats is not None and self._style.mask is not None:
            raise InputError("content_stats: cannot be combined with a mask (each region has its own statistics)")
        if isinstance(content, (list, tuple)):
            return [self(c, alpha, content_size=content_size, crop=crop, content_stats=content_stats)
                    for c in content]
        size = images.image_size(content, what="content")
        mask = None if self._style.mask is None else images.fit_mask(self._style.mask, size, crop=crop)
        h, w = preflight.target_size(size, content_size, crop)
        n = content.shape[0] if isinstance(content, Tensor) and content.dim() == 4 else 1
        chunk = self._frames_per_chunk(h, w, n)  # refuses before any large allocation
        if isinstance(content, Tensor) and content.dim() == 4:
            batch = images.to_batch(content, size=content_size, crop=crop, what="content")
            parts = batch.split(chunk)
            out = torch.cat([self._run(to_device(part, self.device), alpha, mask, content_stats) for part in parts])
            return to_host(out, content.device)
        image = images.to_tensor(content, size=content_size, crop=crop, what="content")
        out = self._run(to_device(image, self.device)[None], alpha, mask, content_stats)[0]
        out = to_host(out, content.device if isinstance(content, Tensor) else torch.device("cpu"))
        return out if isinstance(content, Tensor) else images.tensor_to_pil(out)

    @torch.inference_mode()
    def _run(self, x: Tensor, alpha: float, mask: Tensor | None, hook: StatsHook | None = None) -> Tensor:
        """``(N, 3, H, W)`` float32 in [0, 1] on the device -> stylized, same shape, clamped to [0, 1]."""
        spec = self._style
        if spec.color is None:
            return self._stylize(x, spec.images, spec.stats, alpha, mask, hook).clamp_(0, 1)
        # The style depends on each content image: one image at a time.
        return torch.cat([self._stylize_dependent(frame[None], alpha, mask, hook) for frame in x]).clamp_(0, 1)

    def _stylize_dependent(self, x: Tensor, alpha: float, mask: Tensor | None,
                           hook: StatsHook | None) -> Tensor:
        spec = self._style
        if spec.color == "coral":
            # Reference: the style image is recoloured to the content before encoding, not clamped.
            styles = [coral(img[0], x[0])[None] for img in spec.images]
            return self._stylize(x, styles, None, alpha, mask, hook)
        # Luminance only (Gatys et al. 2017, "Controlling perceptual factors"): stylize the luma as a
        # gray image, with the style's luma mean/std matched to the content's, then put the content's
        # chroma back. YIQ keeps luma and chroma separable with a fixed linear map.
        y_c = luma(x)
        styles = [match_luma(luma(img), y_c).expand(-1, 3, -1, -1) for img in spec.images]
        out = self._stylize(y_c.expand(-1, 3, -1, -1), styles, None, alpha, mask, hook)
        return replace_luma(x, luma(out))

    def _stylize(self, x: Tensor, styles: list[Tensor], stats, alpha: float, mask: Tensor | None,
                 hook: StatsHook | None) -> Tensor:
        """Core pipeline on an ``(N, 3, H, W)`` batch: pad, encode, AdaIN, decode, crop (unclamped); ``mask``
        (fitted to the content) places the two styles."""
        spec = self._style
        h, w = x.shape[-2:]
        f_c = self._encode(padding.pad_bottom_right(x, padding.padded_side(h), padding.padded_side(w)))
        if alpha > 0:
            if stats is None:
                stats = [self._encode_stats(img) for img in styles]
            t = self._transfer(f_c, stats, spec.style_weights, mask, (h, w), hook)
            # Same order of operations as the reference: t * alpha + f_c * (1 - alpha).
            feat = t if alpha == 1 else t * alpha + f_c.float() * (1 - alpha)
        else:
            feat = f_c
        out = self.model.decode(feat.to(self.dtype).contiguous(memory_format=self.memory_format))
        return out[..., :h, :w].float().contiguous()

    def _transfer(self, f_c: Tensor, stats, weights, mask: Tensor | None, size: tuple[int, int],
                  hook: StatsHook | None = None) -> Tensor:
        """AdaIN on padded content features with content statistics over the *valid* region only.

        The padded border repeats content near the bottom/right edges; counting it would bias the
        statistics towards those edges. On multiples of 8 (no padding) this is exactly the reference.
        """
        hv, wv = padding.feature_side(size[0]), padding.feature_side(size[1])
        if mask is None:
            valid = f_c[..., :hv, :wv] if hv * wv > 1 else f_c  # a lone position has no spread
            c_stats = calc_mean_std(valid, self.eps)
            if hook is not None:
                c_stats = hook(*c_stats)
            s_stats = blend_stats([m for m, _ in stats], [s for _, s in stats], weights)
            return _apply_stats(f_c, c_stats, s_stats)
        # Binarised at full resolution, then nearest-resized to the valid feature grid (as the original
        # resizes the mask to the feature map), then extended over the padding like the image.
        fg = F.interpolate(mask[None, None].float(), size=(hv, wv), mode="nearest")
        fg = padding.pad_bottom_right(fg, f_c.shape[-2], f_c.shape[-1]) >= 0.5
        valid = torch.zeros_like(fg)
        valid[..., :hv, :wv] = True
        out = torch.zeros(f_c.shape, dtype=torch.float32, device=f_c.device)
        for region, s_stats in ((fg, stats[0]), (~fg, stats[1])):
            cells = region & valid
            styled = _apply_stats(f_c, masked_mean_std(f_c.float(), cells, self.eps), s_stats)
            # A region without valid cells stays 0 (its statistics are undefined); decided on the device,
            # without the host waiting for it.
            out = torch.where(region & cells.any(), styled, out)
        return out

    # ---- memory --------------------------------------------------------------------------------------

    def _frames_per_chunk(self, h: int, w: int, n: int, what: str = "content") -> int:
        """How many ``h x w`` frames fit in one forward pass; ``InputError`` if not even one does."""
        limit = memory_budget(self.device, self.max_memory)
        if limit is None:
            return n
        per_pixel = BYTES_PER_PIXEL * torch.finfo(self.dtype).bits // 32
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
        max_memory: bytes the call may use (default 80% of the free memory); see ``adain.runtime``.
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
                              device=device, dtype=dtype, max_memory=max_memory, **gatys_options)
    if gatys_options:
        raise InputError(f"unexpected argument(s) {sorted(gatys_options)} for method='adain'")
    # Everything is checked (files: their headers) before weights are loaded, let alone downloaded.
    size = preflight.check_content(content, content_size=content_size)
    preflight.check_styles(style, style_size=style_size, style_weights=style_weights, mask=mask,
                           preserve_color=preserve_color, content_hw=size)
    resolve_dtype(dtype, resolve_device(device))
    check_max_memory(max_memory)
    stylizer = Stylizer(model if model is not None else load_pretrained(), device, dtype, max_memory=max_memory)
    stylizer.set_style(style, style_size=style_size, crop=crop, style_weights=style_weights, mask=mask,
                       preserve_color=preserve_color)
    result = stylizer(content, alpha, content_size=content_size, crop=crop)
    return result if isinstance(result, Image.Image) else images.tensor_to_pil(result)


def _stylize_gatys(content, style, alpha: float, *, crop: bool, content_size, style_size, mask, **options):
    """``stylize(method="gatys")``: stylize's arguments handed to ``adain.gatys`` (which checks them all
    before loading weights); it has no alpha, and no crop of its own: the inputs are cropped first."""
    if alpha != 1:
        raise InputError(
            f"alpha: method='gatys' has no alpha (got {alpha}); pass style_weight= (or content_weight=) instead"
        )
    if crop:
        content, style, mask = preflight.square_crop(content, style, mask, content_size, style_size)
        content_size = style_size = None
    return gatys(content, style, content_size=content_size, style_size=style_size, mask=mask, **options)
