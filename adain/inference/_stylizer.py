"""The ``Stylizer``: an ``Engine`` with a style set, for images of every kind.

``Stylizer`` is the boundary between the caller's image-likes (paths, ``PIL.Image``, numpy arrays, tensors)
and the tensor-level ``Engine``: each call's arguments and images are checked once, up front
(``adain.inference._checks``: a file's header is read once), then decoded (``adain._images``) and handed to
the engine, and the result comes back as the caller asked (``output_type``). ``set_style`` encodes a style
once into an immutable ``Style``; any number of images or batches of video frames follow. The two steps
after the checks, ``load_style`` and ``stylize_one``, are also those of the one-call ``stylize``
(``adain.inference._one_call``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from .. import _images as images
from .._arguments import check_int, pop_deprecated
from .._images import ImageLike
from .._io import DEFAULT_MAX_PIXELS
from .._runtime import check_max_memory
from ..errors import InputError
from ..model import AdaINModel
from . import _checks as checks
from ._checks import CallOptions, CheckedImage, StyleInputs
from ._engine import Engine
from ._tiling import TileProgress
from ._transfer import StatsHook, Style

DEFAULT_SIZE = 512
"""Default shorter side of content and style images, as in the reference port's test script."""


class Stylizer:
    """An AdaIN model on a device, with the statistics of one style (or blend of styles) cached.

    Encode a style once with ``set_style``, then call the ``Stylizer`` on any number of pictures or batches of
    video frames; each call costs one encoder and one decoder pass. Guide:
    [Stylize and Stylizer](../guides/stylize.md#many-pictures-stylizer).

    Arguments:
        model: an [``AdaINModel``][adain.AdaINModel], never modified: the copy that runs (cast, channels-last,
            fused or compiled) is prepared once per model and setting and shared by every ``Stylizer`` of that
            model while its weights are unchanged; changes made to the model after this ``Stylizer`` was built
            need a new ``Stylizer``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``..., or a ``torch.device``; one this machine has
            (anything else is refused, listing what is available). ``None``: CUDA when available, else CPU.
        dtype: compute dtype of the convolutions: ``"float32"`` (reference parity up to float rounding),
            ``"bfloat16"``, ``"float16"`` (CUDA), or a ``torch.dtype``. ``None``: bfloat16 on a CUDA device that
            supports it and on a CPU with native bf16, float32 elsewhere. Feature statistics are always float32.
        max_memory: bytes one call may use for activations; ``None``: 80% of the memory free on the device at
            each call. Larger inputs are split into smaller batches, a single image too large alone is
            stylized in overlapping tiles with the same result ([huge images](../guides/tiling.md)), and one
            too large even for those is refused with ``InputError`` before anything is allocated.
        compile: ``torch.compile`` the encoder and decoder (opt-in): ``True`` (a mode chosen for the device),
            a mode name (``"max-autotune"``...) or a mapping of ``torch.compile`` keyword arguments; ``False``
            or ``None``: not compiled. Graphs are compiled once per shape bucket (seconds to minutes each) and
            listed in ``compile_stats``; see [speed](../guides/speed.md#compiling).
        backend: what runs the encoder and decoder: ``None`` or ``"torch"`` (PyTorch, every device and dtype);
            ``"onnxruntime"``: onnxruntime on the CPU in float32 (the same results to float rounding, faster
            on CPUs measured; needs ``pip install 'adain[export]'``; the graphs are exported once per set of
            weights, about 10 s, and kept in the package cache); ``"onnxruntime-int8"``: its int8 quantisation
            (quantised and measured once per set of weights, a minute or two; refused with ``InputError`` where
            it was not at least 1.5x faster than ``"onnxruntime"`` or not within 30 dB of float32). With
            either, ``device`` and ``dtype`` default to ``"cpu"`` and ``"float32"`` and accept nothing else.
            See [speed](../guides/speed.md#onnxruntime).

    Attributes:
        engine: the tensor-level [``Engine``][adain.inference.Engine] it runs on
            (``stylizer.engine.run(x, stylizer.style)``).

    Examples:
        ```python
        stylizer = Stylizer(model).set_style("style.jpg")
        frames_out = stylizer(frames, alpha=0.8)          # (N, 3, H, W) in [0, 1] -> same shape
        picture = stylizer("photo.jpg")                   # PIL.Image of the photo's exact size
        array = stylizer("photo.jpg", output_type="np")   # H x W x 3 uint8
        ```
    """

    def __init__(
        self,
        model: AdaINModel,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        *,
        max_memory: int | None = None,
        compile: bool | str | Mapping | None = False,
        backend: str | None = None,
    ) -> None:
        checks.check_model(model)
        device, dtype, max_memory, options, backend = checks.check_runtime(device, dtype, max_memory, compile, backend)
        self.engine = Engine(model, device, dtype, max_memory=max_memory, compile=options, backend=backend)
        self._style: Style | None = None

    @property
    def device(self) -> torch.device:
        """The device it computes on."""
        return self.engine.device

    @property
    def dtype(self) -> torch.dtype:
        """The compute dtype of the convolutions."""
        return self.engine.dtype

    @property
    def backend(self) -> str:
        """What runs the encoder and decoder: ``"torch"``, ``"onnxruntime"`` or ``"onnxruntime-int8"``."""
        return self.engine.backend

    @property
    def max_memory(self) -> int | None:
        """Bytes one call may use for activations (``None``: 80% of the free memory at each call)."""
        return self.engine.max_memory

    @max_memory.setter
    def max_memory(self, value: int | None) -> None:
        self.engine.max_memory = check_max_memory(value)

    @property
    def model(self):
        """The prepared model the engine runs (shared by every ``Stylizer`` of the model and setting)."""
        return self.engine.model

    @model.setter
    def model(self, model) -> None:
        self.engine.model = model

    @property
    def compile_stats(self):
        """With ``compile``, the compilations so far, shared by every ``Stylizer`` of the model and setting: its
        ``compiles`` lists ``(graph, input shape, seconds)`` per compiled shape bucket, ``count`` and ``seconds``
        sum them up. ``None`` when not compiled."""
        return self.engine.compile_stats

    @property
    def style(self) -> Style | None:
        """The [``Style``][adain.inference.Style] that ``set_style`` made, or ``None`` before."""
        return self._style

    # ---- style ---------------------------------------------------------------------------------------

    def set_style(
        self,
        style: ImageLike | Sequence[ImageLike],
        *,
        style_size: int | None = DEFAULT_SIZE,
        crop: bool = False,
        style_weights: Sequence[float] | None = None,
        mask: ImageLike | None = None,
        preserve_color: bool | str | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        **deprecated: Any,
    ) -> Stylizer:
        """Load, encode and cache a style. Returns ``self`` so calls can be chained.

        Arguments:
            style: one image (a path, ``PIL.Image``, HxWxC numpy array (uint8, uint16, or float in [0, 1]) or
                CxHxW tensor in [0, 1]), or a list of them: a blend (``style_weights``), or two styles placed by
                ``mask``.
            style_size: new shorter side of each style image in pixels (aspect kept), default 512; ``None`` keeps
                its size.
            crop: take the centre square of each style image (after resizing).
            style_weights: one non-negative weight per style for the blend, normalised to sum 1; ``None``:
                equal weights.
            mask: with exactly two styles: an image (the same kinds as ``style``) whose foreground (luma >= 0.5)
                gets the first style and whose background gets the second; each region's content statistics
                are its own. Any resolution with the content's aspect ratio (checked at each call, resized to
                the content). ``None``: no mask. See [masks and colour](../guides/masks-and-colour.md).
            preserve_color: ``None`` or ``False``: the style's colours; ``"coral"`` (or ``True``) recolours each
                style image to the content first (CORAL, as the reference); ``"luminance"`` transfers style to
                the luminance only and keeps the content's chroma. Both depend on the content, so with either
                the style is re-encoded for every image.
            max_pixels: style and mask files with more pixels than this are refused before decoding
                (decompression bombs); the default, 178956970 (Pillow's threshold), lets a 12000x12000 photo
                through.
            **deprecated: ``weights=``, the first version's name of ``style_weights`` (a ``DeprecationWarning``).

        Returns:
            The ``Stylizer`` itself, so that calls can be chained: ``Stylizer(model).set_style("style.jpg")``.
        """
        style_weights = pop_deprecated(deprecated, "weights", "style_weights", style_weights, "set_style")
        if deprecated:
            raise InputError(f"set_style: unexpected argument(s) {sorted(deprecated)}")
        max_pixels = checks.check_max_pixels(max_pixels)
        given = checks.check_styles(
            style,
            style_size=style_size,
            style_weights=style_weights,
            mask=mask,
            preserve_color=preserve_color,
            max_pixels=max_pixels,
        )
        self._style = load_style(self.engine, given, bool(crop), max_pixels)
        return self

    # ---- content -------------------------------------------------------------------------------------

    def __call__(
        self,
        content: ImageLike | Sequence[ImageLike],
        alpha: float = 1.0,
        *,
        content_size: int | None = None,
        crop: bool = False,
        content_stats: StatsHook | None = None,
        tile_size: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        callback: Callable[[TileProgress], None] | None = None,
        output_type: str | None = None,
    ) -> Any:  # PIL.Image, ndarray, Tensor or a list: output_type
        """Stylize one image, a list of images, or a batch with the cached style.

        Arguments:
            content: an ``(N, C, H, W)`` tensor batch (float in [0, 1] or uint8; e.g. video frames), a
                ``(C, H, W)`` tensor, a path, ``PIL.Image``, HxWxC numpy array, or a list of these.
            alpha: style strength in [0, 1]; 0 reproduces the content through the decoder.
            content_size: new shorter side in pixels (aspect kept); ``None`` (the default here) keeps each
                image's size.
            crop: take the centre square of the content (after resizing); a mask is cut as the content is.
            content_stats: ``None``, or a function ``(mean, std) -> (mean, std)``, given each batch's relu4_1
                content statistics (float32, ``(N, 512, 1, 1)``, frames in order) and returning those AdaIN
                normalises with (e.g. smoothed over video frames, as ``adain.stylize_video`` does). Not with a
                mask.
            tile_size: ``None``: only an image too large for ``max_memory`` is stylized in overlapping tiles,
                with the untiled result ([huge images](../guides/tiling.md)); an integer: tiles owning about
                that many output pixels a side, whatever the budget.
            max_pixels: a content file with more pixels than this is refused before decoding (decompression
                bomb); default 178956970, Pillow's threshold.
            callback: ``None``, or a function that receives a [``TileProgress``][adain.TileProgress] after each
                batch of tiles of a tiled image (never called for an image stylized whole).
            output_type: ``"pil"`` (RGB ``PIL.Image``; a batch gives a list), ``"np"`` (``H x W x 3`` uint8;
                a batch ``N x H x W x 3``), ``"pt"`` (float32 in [0, 1], ``(3, H, W)`` or ``(N, 3, H, W)``, on
                a tensor's own device, else the CPU); ``None``: ``"pt"`` for tensors, ``"pil"`` for the rest.

        Returns:
            One result per image of ``content`` (a list gives a list), of the (resized) content size exactly.
        """
        style = self._require_style()
        call = checks.check_call(
            alpha=alpha,
            content_size=content_size,
            crop=crop,
            tile_size=tile_size,
            max_pixels=max_pixels,
            output_type=output_type,
        )
        checks.check_hook(content_stats, style.mask)
        items = checks.check_contents(content, max_pixels=call.max_pixels)
        for item in items:  # every image checked before the first is decoded
            checks.check_resized(item, call.content_size, call.max_pixels, "content_size")
            if style.mask is not None:
                images.check_mask_aspect((int(style.mask.shape[-2]), int(style.mask.shape[-1])), item.size)
        outs = [stylize_one(self.engine, style, item, call, content_stats, callback) for item in items]
        return outs if isinstance(content, (list, tuple)) else outs[0]

    def stylize_tensor(
        self,
        content: Tensor,
        alpha: float = 1.0,
        *,
        content_size: int | None = None,
        crop: bool = False,
        content_stats: StatsHook | None = None,
        tile_size: int | None = None,
        callback: Callable[[TileProgress], None] | None = None,
    ) -> Tensor:
        """Tensor in, tensor out: ``__call__`` for one tensor, with ``output_type="pt"`` and no PIL on the way.

        Arguments:
            content: ``(N, C, H, W)`` frames or one ``(C, H, W)`` image, float in [0, 1] or uint8 (0-255), C in
                1, 3, 4 (grey, RGB, RGBA over white), on any device. The style's mask, if any, must have its
                aspect ratio.
            alpha: style strength in [0, 1], as in ``__call__``.
            content_size: new shorter side in pixels; ``None`` keeps the size, as in ``__call__``.
            crop: take the centre square, as in ``__call__``.
            content_stats: the content statistics hook, as in ``__call__``.
            tile_size: ``None`` (tiles only when needed) or the side of the tiles, as in ``__call__``.
            callback: receives a [``TileProgress``][adain.TileProgress] per batch of tiles, as in ``__call__``.

        Returns:
            ``(N, 3, H', W')`` / ``(3, H', W')`` float32 in [0, 1] on ``content``'s device, ``H', W'`` the
            (resized, cropped) content size exactly.
        """
        if not isinstance(content, Tensor):
            raise InputError(
                f"content: stylize_tensor takes a (C, H, W) or (N, C, H, W) tensor, got "
                f"{type(content).__name__}; call the Stylizer itself for images and lists"
            )
        return self(
            content,
            alpha,
            content_size=content_size,
            crop=crop,
            content_stats=content_stats,
            tile_size=tile_size,
            callback=callback,
            output_type="pt",
        )

    def frames_per_batch(self, height: int, width: int, *, what: str = "content") -> int:
        """How many ``height x width`` frames one forward pass takes within ``max_memory``.

        As many as fit the budget, at most 8, and on the CPU about a megapixel per batch (larger batches
        measured slower per frame); 1 for frames too large to stylize whole (they are tiled).
        [``adain.stylize_video``][adain.stylize_video] sizes its batches with it.

        Arguments:
            height: frame height in pixels, after any resizing.
            width: frame width in pixels, after any resizing.
            what: how the frames are named in the error message (e.g. the video's path).

        Returns:
            The number of frames per forward pass, at least 1.

        Raises:
            InputError: not even the smallest tiles of such a frame fit the budget.
        """
        height, width = check_int(height, "height"), check_int(width, "width")
        return self.engine.frames_per_batch(height, width, what=what)

    def _require_style(self) -> Style:
        if self._style is None:
            raise InputError("no style set: call set_style(...) first")
        return self._style


def load_style(engine: Engine, given: StyleInputs, crop: bool, max_pixels: int) -> Style:
    """The ``Style`` of checked style inputs: each image checked against the memory budget, then decoded."""
    for image in given.styles:
        checks.check_fits(engine, *checks.target_size(image.size, given.style_size, crop), what=image.what)
    mask = None if given.mask is None else images.decode_mask(given.mask.source, max_pixels=max_pixels)
    tensors = [
        images.decode(s.source, size=given.style_size, crop=crop, what=s.what, max_pixels=max_pixels)[None]
        for s in given.styles
    ]
    return engine.style(tensors, given.weights, mask=mask, color=given.color)


def stylize_one(
    engine: Engine,
    style: Style,
    item: CheckedImage,
    call: CallOptions,
    hook: StatsHook | None,
    callback: Callable[[TileProgress], None] | None,
):
    """One checked content (an image or a batch) through the engine, returned as ``call.output_type`` says.
    A mask's aspect ratio was checked against it already; here it is only cropped as the content is."""
    if style.mask is not None and call.crop:
        style = replace(style, mask=images.centre_square(style.mask))
    h, w = checks.target_size(item.size, call.content_size, call.crop)
    engine.tile_plan(h, w, call.tile_size)  # refuses what cannot fit even in tiles, before reading any pixel
    if item.batch:
        x = images.decode_batch(item.source, size=call.content_size, crop=call.crop, what=item.what)
    else:
        x = images.decode(
            item.source, size=call.content_size, crop=call.crop, what=item.what, max_pixels=call.max_pixels
        )[None]
    output_type = call.output_type or ("pt" if isinstance(item.source, Tensor) else "pil")
    out = engine.run(
        x,
        style,
        call.alpha,
        content_stats=hook,
        tile_size=call.tile_size,
        callback=callback,
        as_uint8=output_type != "pt",
    )
    return images.to_output(out, output_type, batch=item.batch)
