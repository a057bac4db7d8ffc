"""The engine: a prepared AdaIN model on a device, in a compute dtype, within a memory budget; tensors only.

``Engine`` is the tensor-level stage everything else is built on: the ``Stylizer`` (image-likes and the
checks of a call), tiling, video and the benchmarks, as segment-anything's mask generator is built on
its predictor's public methods. It receives resolved values (a ``torch.device``, a ``torch.dtype``,
integers), checks no argument, reads no file and knows no PIL. A ``Style`` (``adain.inference._transfer``)
is what ``Engine.style`` makes of style images; it is immutable and can serve any number of contents.

``run`` decides how to compute from the engine's own memory budget, as diffusers' ``AutoencoderKL``
decides to decode in tiles from its own limits: a batch goes through in forward passes of
``frames_per_batch`` frames, and an image too large for the budget (or any, with ``tile_size``) is
stylized in tiles (``adain.inference._tiling``) with the untiled result. The memory arithmetic is here
and nowhere else: the bytes per pixel, the batch policy, the tile plan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from .._images import to_uint8
from .._runtime import host_allocator, memory_budget, to_device, to_host
from ..model import AdaINModel
from ..modeling import _padding as padding
from ..modeling._color import luma, match_luma, replace_luma
from ..modeling._ops import calc_mean_std, coral
from . import _tile_grid as tile_grid
from . import _tiling as tiling
from . import _transfer as transfer
from ._prepared import prepare
from ._tile_grid import TileGrid
from ._tiling import TileProgress
from ._transfer import ContentStats, Stats, StatsHook, Style

BYTES_PER_PIXEL = 1200
"""Peak memory per content pixel of one float32 encode + decode, in bytes (measured on CPU at 1024^2:
about 1070; the full-resolution 64-channel convs and their reflection-padded copies dominate). Half
precision needs half of it. Used to refuse images that cannot fit before allocating anything."""

MAX_BATCH = 8
"""Most frames stylized in one forward pass: enough to keep a GPU busy; more only adds latency and memory."""

CPU_BATCH_PIXELS = 2**20
"""On the CPU a batch stops growing at about one megapixel: larger batches measured slower per frame."""


class Engine:
    """An ``AdaINModel`` prepared to run on one device in one compute dtype, within a memory budget.

    The tensor-level stage under the [``Stylizer``][adain.Stylizer], for building pipelines on tensors: it
    takes resolved values, checks no argument, reads no file and knows no PIL. ``style`` encodes style images
    once into an immutable [``Style``][adain.inference.Style]; ``run`` stylizes a batch with it, choosing
    forward passes or tiles from the budget; ``encode``, ``style_stats`` and ``render`` are the steps it is
    made of.

    Arguments:
        model: an [``AdaINModel``][adain.AdaINModel], never modified: the copy that runs is prepared once per
            model and setting and shared while the model's weights are unchanged.
        device: where it runs, resolved: a ``torch.device`` (``torch.device("cpu")``,
            ``torch.device("cuda", 0)``...).
        dtype: compute dtype of the convolutions (``torch.float32``, ``torch.bfloat16``, ``torch.float16``);
            feature statistics are float32 whatever it is.
        max_memory: bytes one call may use for activations; ``None``: 80% of the memory free on the device at
            each call, no limit where the platform cannot tell.
        compile: ``None`` (not compiled), or the keyword arguments of ``torch.compile`` for the encoder and
            decoder (e.g. ``{"mode": "max-autotune"}``); graphs are compiled once per shape bucket.
        backend: ``"torch"``, or ``"onnxruntime"`` / ``"onnxruntime-int8"`` (CPU and float32 only, as the
            caller checked): ``model.encode``/``decode`` then run onnxruntime sessions on graphs exported once
            per set of weights and kept in the package cache; everything else is unchanged.

    Attributes:
        source: the ``AdaINModel`` given (what the engine's results are identified by, e.g. a style bank's
            ``model_id``).
        model: the prepared model (``encode``/``decode``); shared, so treat it as read-only.
        device: the ``torch.device``, as given.
        dtype: the compute ``torch.dtype``, as given.
        max_memory: the budget in bytes, as given (``None``: 80% of the free memory at each call); may be
            changed.
        eps: the model's variance epsilon (``ModelConfig.eps``).
        backend: what runs the networks, as given.
        compile_stats: when compiled, the compilations so far, shared by every engine of the model and setting
            (``compiles``: ``(graph, input shape, seconds)`` per shape bucket; ``count``, ``seconds``); else
            ``None``.
    """

    def __init__(
        self,
        model: AdaINModel,
        device: torch.device,
        dtype: torch.dtype,
        *,
        max_memory: int | None = None,
        compile: Mapping | None = None,
        backend: str = "torch",
    ) -> None:
        self.device, self.dtype, self.max_memory, self.backend = device, dtype, max_memory, backend
        # channels_last: measured faster on CPU (about 25% at 1024^2 with oneDNN) and the layout tensor
        # cores want on CUDA; it changes no value beyond float summation order. onnxruntime takes NCHW
        # arrays: a channels-last tensor would only be copied back.
        self.memory_format = torch.channels_last if backend == "torch" else torch.contiguous_format
        self.source = model
        self.model = prepare(model, device, dtype, self.memory_format, compile=compile, backend=backend)
        self.eps = model.config.eps
        self.compile_stats = getattr(self.model, "stats", None)

    # ---- the networks --------------------------------------------------------------------------------

    @torch.inference_mode()
    def encode(self, x: Tensor) -> Tensor:
        """``(N, 3, H, W)`` float in [0, 1] on the device -> ``(N, 512, ceil(H/8), ceil(W/8))`` relu4_1 features
        in the compute dtype. ``H`` and ``W`` must be sides the encoder takes (a content image is padded to a
        multiple of 8, at least 16, first; ``render`` does that)."""
        return self.model.encode(x.to(self.dtype).contiguous(memory_format=self.memory_format))

    @torch.inference_mode()
    def feature_stats(self, image: Tensor) -> Stats:
        """``(N, 3, h, w)`` float32 images in [0, 1] on the device, any size -> float32 ``(mean, std)``, each
        ``(N, 512, 1, 1)``, of their relu4_1 features (the image padded only as much as the encoder needs, and
        only the feature cells over the image counted)."""
        h, w = image.shape[-2:]
        feat = self.encode(padding.min_encodable(image))
        return calc_mean_std(feat[..., : padding.feature_side(h), : padding.feature_side(w)], self.eps)

    # ---- styles --------------------------------------------------------------------------------------

    @torch.inference_mode()
    def style(
        self,
        images: Sequence[Tensor],
        weights: Sequence[float],
        *,
        mask: Tensor | None = None,
        color: str | None = None,
    ) -> Style:
        """Encode style images once into a ``Style``.

        Arguments:
            images: one ``(1, 3, h, w)`` float32 tensor in [0, 1] per style, on any device, any size.
            weights: one blend weight per style, summing to 1.
            mask: ``None``, or with two styles an ``(H, W)`` bool tensor, True where the first style goes, at
                any resolution with the contents' aspect ratio.
            color: ``None``, ``"coral"`` or ``"luminance"`` (``Style.color``); with a colour mode the statistics
                depend on each content, so the images are kept (copied to the device) instead of encoded.

        Returns:
            The immutable ``Style``.
        """
        if color is not None:
            kept = tuple(img.to(self.device, copy=True) for img in images)  # the caller's tensors may change
            stats = None
        else:
            kept, stats = (), tuple(self.feature_stats(img.to(self.device)) for img in images)
        mask = None if mask is None else mask.to(self.device, copy=True)
        return Style(tuple(float(w) for w in weights), stats, kept, mask, color)

    @torch.inference_mode()
    def style_stats(self, style: Style, content: Tensor) -> list[Stats]:
        """Each style's float32 ``(mean, std)``, each ``(1, 512, 1, 1)``, for one content image.

        ``style.stats`` when they do not depend on the content. With ``"coral"`` ``content`` is the
        ``(1, 3, H, W)`` image in [0, 1] and each style image is recoloured to it before encoding; with
        ``"luminance"`` it is the content's luma ``(1, 1, H, W)``, and each style's luma, matched to its mean
        and std, is encoded as grey.
        """
        if style.stats is not None:
            return list(style.stats)
        if style.color == "coral":
            # Reference: the style image is recoloured to the content before encoding, not clamped.
            return [self.feature_stats(coral(img[0], content[0])[None]) for img in style.images]
        return [self.feature_stats(match_luma(luma(img), content).expand(-1, 3, -1, -1)) for img in style.images]

    # ---- rendering -----------------------------------------------------------------------------------

    @torch.inference_mode()
    def render(
        self,
        x: Tensor,
        style: Style,
        alpha: float | Tensor,
        *,
        stats: Sequence[Stats] | None = None,
        cells: Tensor | None = None,
        content_stats: ContentStats | None = None,
        hook: StatsHook | None = None,
    ) -> Tensor:
        """The core pipeline on a batch: pad, encode, AdaIN with ``alpha``, decode, crop.

        Arguments:
            x: ``(N, 3, H, W)`` float32 in [0, 1] on the device, any size (padded here by reflection at the
                bottom and right to a multiple of 8, at least 16).
            style: the ``Style`` (its blend weights).
            alpha: style strength in [0, 1]; 0 decodes the content features. Or one strength per image: an
                ``(N,)`` float32 tensor on the device (``adain.augment`` draws them per sample).
            stats: the styles' statistics for this content (``style_stats``); default ``style.stats``. Each
                ``(mean, std)`` may be ``(N, 512, 1, 1)``: one style per image.
            cells: ``None``, or the mask on ``x``'s padded relu4_1 grid, bool ``(N or 1, 1, h, w)`` (``h``, ``w``:
                the padded sides / 8), True where the first style goes; each region has its own statistics.
            content_stats: the content statistics to normalise with, frozen beforehand (for a tile, those of
                the whole image): ``(mean, std)``, each ``(N, 512, 1, 1)`` float32, or with ``cells`` one such
                pair (or ``None``) per region. Default: those of ``x``'s feature cells over the image, passed
                through ``hook``.
            hook: ``None``, or ``(mean, std) -> (mean, std)`` applied to the content statistics computed here
                (not to ``content_stats`` given), as ``content_stats`` of ``run``.

        Returns:
            ``(N, 3, H, W)`` float32, not clamped (the decoder's output range is about [0, 1]).
        """
        h, w = x.shape[-2:]
        f_c = self.encode(padding.pad_bottom_right(x, padding.padded_side(h), padding.padded_side(w)))
        if (isinstance(alpha, Tensor) or alpha > 0) and content_stats is None:
            content_stats = transfer.content_stats(f_c, cells, (h, w), self.eps)
            content_stats = content_stats if hook is None else hook(*content_stats)
        out = self.render_features(f_c, style, alpha, stats=stats, cells=cells, content_stats=content_stats)
        return out[..., :h, :w].float().contiguous()

    @torch.inference_mode()
    def render_features(
        self,
        f_c: Tensor,
        style: Style,
        alpha: float | Tensor,
        *,
        stats: Sequence[Stats] | None = None,
        cells: Tensor | None = None,
        content_stats: ContentStats | None = None,
    ) -> Tensor:
        """The second half of ``render``: AdaIN with ``alpha`` on content features, then decode.

        Arguments:
            f_c: ``(N, 512, h, w)`` relu4_1 features on the device (``encode``'s, or any window of an image's
                padded feature grid, as tiling reads them back), any float dtype.
            style: the ``Style``, as ``render``.
            alpha: style strength in [0, 1]; 0 decodes ``f_c`` as it is. Or one per image, as ``render``.
            stats: the styles' statistics, as ``render``.
            cells: ``None``, or the mask on ``f_c``'s grid, as ``render``.
            content_stats: the content statistics to normalise with, required when ``alpha > 0``.

        Returns:
            ``(N, 3, 8h, 8w)`` in the compute dtype, not clamped, not cropped.
        """
        if isinstance(alpha, Tensor) or alpha > 0:
            stats = style.stats if stats is None else stats
            if stats is None or content_stats is None:
                raise ValueError("render_features: alpha > 0 needs the style's stats (style_stats) and content_stats")
            t = transfer.adain(f_c, content_stats, stats, style.weights, cells)
            # Same order of operations as the reference: t * alpha + f_c * (1 - alpha).
            if isinstance(alpha, Tensor):  # one strength per image
                a = alpha.view(-1, 1, 1, 1)
                f_c = t * a + f_c.float() * (1 - a)
            else:
                f_c = t if alpha == 1 else t * alpha + f_c.float() * (1 - alpha)
        return self.decode(f_c)

    @torch.inference_mode()
    def decode(self, feat: Tensor) -> Tensor:
        """``(N, 512, h, w)`` features on the device, any float dtype -> ``(N, 3, 8h, 8w)`` image in the compute
        dtype, unclamped (about [0, 1])."""
        return self.model.decode(feat.to(self.dtype).contiguous(memory_format=self.memory_format))

    def run(
        self,
        x: Tensor,
        style: Style,
        alpha: float = 1.0,
        *,
        content_stats: StatsHook | None = None,
        tile_size: int | None = None,
        callback: Callable[[TileProgress], None] | None = None,
        as_uint8: bool = False,
    ) -> Tensor:
        """Stylize a batch, choosing from the budget: forward passes of ``frames_per_batch`` frames, or each
        frame in tiles when it is too large for the budget (``tile_plan``), with the same result.

        Arguments:
            x: ``(N, 3, H, W)`` float32 in [0, 1] on any device (moved to the engine's pass by pass).
            style: the ``Style``; its mask, if any, covers ``x`` (any resolution with ``x``'s aspect ratio).
            alpha: style strength in [0, 1].
            content_stats: ``(mean, std) -> (mean, std)``, given the content statistics of each forward pass
                (float32 ``(n, 512, 1, 1)``, frames in order; a tiled frame's whole-frame statistics) and
                returning those AdaIN normalises with (e.g. smoothed over video frames). Not with a mask.
            tile_size: ``None`` tiles only frames over the budget; an integer: tiles owning about that many
                pixels a side.
            callback: receives a ``TileProgress`` after each batch of tiles of a tiled frame.
            as_uint8: return uint8 0-255 (rounded to nearest) instead of float32: a tiled frame then keeps 3
                bytes per pixel of output on the host rather than 12.

        Returns:
            ``(N, 3, H, W)`` float32 in [0, 1] (or uint8) on ``x``'s device: an ordinary tensor (made outside
            inference mode), which the caller may change in place.

        Raises:
            InputError: not even the smallest tiles of a frame fit the budget (before anything is allocated).
        """
        n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
        tiles = self.tile_plan(h, w, tile_size)
        with host_allocator(self.frame_bytes(h, w) * n):  # heap reuse inside large calls, trimmed after
            return self._run(x, style, alpha, content_stats, tiles, callback, as_uint8)

    def _run(
        self,
        x: Tensor,
        style: Style,
        alpha: float,
        content_stats: StatsHook | None,
        tiles: TileGrid | None,
        callback: Callable[[TileProgress], None] | None,
        as_uint8: bool,
    ) -> Tensor:
        """``run`` with its plan made."""
        n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
        if tiles is not None:
            frames = [
                tiling.stylize(
                    self, style, frame, alpha, tiles, hook=content_stats, callback=callback, as_uint8=as_uint8
                )
                for frame in x
            ]
            return (frames[0][None] if n == 1 else torch.stack(frames)).to(x.device)
        out = torch.empty((n, 3, h, w), dtype=torch.uint8 if as_uint8 else torch.float32, device=self.device)
        with torch.inference_mode():
            cells = None if style.mask is None else padding.feature_mask(style.mask.to(self.device), h, w)
            step = self.frames_per_batch(h, w)
            for start in range(0, n, step):
                part = to_device(x[start : start + step], self.device)
                part = self._stylize(part, style, alpha, cells, content_stats)
                out[start : start + step] = to_uint8(part) if as_uint8 else part
        return to_host(out, x.device)

    def _stylize(self, x: Tensor, style: Style, alpha: float, cells: Tensor | None, hook: StatsHook | None) -> Tensor:
        """``render`` on a batch on the device, with the colour modes; clamped to [0, 1]."""
        if style.color is None:
            return self.render(x, style, alpha, cells=cells, hook=hook).clamp_(0, 1)
        # The style depends on each content image: one image at a time.
        return torch.cat([self._dependent(frame[None], style, alpha, cells, hook) for frame in x]).clamp_(0, 1)

    def _dependent(self, x: Tensor, style: Style, alpha: float, cells: Tensor | None, hook: StatsHook | None) -> Tensor:
        if style.color == "coral":
            return self.render(
                x, style, alpha, stats=self.style_stats(style, x) if alpha > 0 else None, cells=cells, hook=hook
            )
        # Luminance only (Gatys et al. 2017, "Controlling perceptual factors"): stylize the luma as a
        # gray image, with the style's luma mean/std matched to the content's, then put the content's
        # chroma back. YIQ keeps luma and chroma separable with a fixed linear map.
        y_c = luma(x)
        out = self.render(
            y_c.expand(-1, 3, -1, -1),
            style,
            alpha,
            stats=self.style_stats(style, y_c) if alpha > 0 else None,
            cells=cells,
            hook=hook,
        )
        return replace_luma(x, luma(out))

    # ---- memory --------------------------------------------------------------------------------------

    @property
    def bytes_per_pixel(self) -> int:
        """Peak bytes per padded content pixel of one encode + decode in the compute dtype."""
        return BYTES_PER_PIXEL * torch.finfo(self.dtype).bits // 32

    def budget(self) -> int | None:
        """Bytes a call may use on the device now (``max_memory``, else 80% of the free memory); ``None`` when
        the platform cannot tell (then nothing is refused)."""
        return memory_budget(self.device, self.max_memory)

    def frame_bytes(self, height: int, width: int) -> int:
        """Bytes one ``height x width`` image needs in one forward pass (padded to a multiple of 8, at least 16)."""
        return self.bytes_per_pixel * padding.padded_side(height) * padding.padded_side(width)

    def frames_per_batch(self, height: int, width: int, *, what: str = "content") -> int:
        """How many ``height x width`` frames ``run`` stylizes per forward pass: as many as fit the budget, at
        most 8, and on the CPU about one megapixel per pass (larger batches measured slower per frame); 1 for a
        frame too large to stylize whole (it goes alone, in tiles). ``InputError`` (naming ``what``) if not
        even its smallest tiles fit."""
        limit = self.budget()
        per_frame = self.frame_bytes(height, width)
        if limit is not None and per_frame > limit:
            self.tile_plan(height, width, what=what)  # refuses when even the smallest tiles do not fit
            return 1
        fits = MAX_BATCH if limit is None else min(MAX_BATCH, limit // per_frame)
        if self.device.type == "cpu":
            fits = min(fits, CPU_BATCH_PIXELS // (height * width))
        return int(max(1, fits))

    def tile_plan(
        self, height: int, width: int, tile_size: int | None = None, *, what: str = "content"
    ) -> TileGrid | None:
        """The tile grid ``run`` cuts a ``height x width`` image into (from this engine's budget, or tiles
        owning about ``tile_size`` pixels a side), or ``None`` when it is stylized whole. ``InputError``
        (naming ``what``) when not even the smallest tiles fit, or ``tile_size`` tiles do not."""
        host = None if self.device.type == "cpu" else memory_budget(torch.device("cpu"))  # features kept there
        cell_bytes = tile_grid.FEATURE_CHANNELS * torch.finfo(self.dtype).bits // 8
        args = (height, width, tile_size, self.budget(), self.bytes_per_pixel, self.device, what)
        return tile_grid.plan(*args, cell_bytes=cell_bytes, host_limit=host)
