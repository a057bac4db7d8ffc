"""Images too large for the memory budget, stylized in overlapping tiles with exactly the untiled result.

AdaIN is local except for one thing: the content statistics (the channel means and standard deviations
of the relu4_1 features) are taken over the whole image. So a tiled image takes two passes:

1. **Statistics.** Every tile is encoded; each feature cell of the image is *owned* by exactly one tile,
   and the owned cells are merged into per-channel moments in float64 (``adain.inference._transfer.Moments``); with
   a mask, per region. Only the cells that cover the image count, as untiled (``adain.inference._transfer``).
2. **Output.** Every tile is encoded again, AdaIN'd with those frozen statistics, blended with ``alpha``,
   decoded, and the pixels it owns are written into a CPU buffer of the whole output.

Both passes use only the engine's public tensor-level methods (``encode``, ``style_stats``, ``render``: the
``Stage`` protocol); the engine decides when to tile, from its own budget (``Engine.run``, ``Engine.tile_plan``).

Exactness comes from the geometry: tiles start at multiples of 8 in the image, so their pooling grids are
the untiled one; a tile at the bottom/right edge is padded exactly as the whole image is; a tile at the
top/left edge sees the same reflection padding there as the whole image; and every interior edge is
``OVERLAP`` pixels away from the pixels the tile owns, more than an input pixel can move an output pixel
through the encoder and decoder (``measure_radius``), so padding at a cut never reaches them. Colour
preservation is computed for the whole image once (CORAL's colour statistics, the luma's mean and std).
Memory: the content and the output as CPU tensors, and one batch of tiles on the device; never the
features of the whole image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NoReturn, Protocol

import torch
from torch import Tensor

from .._images import to_uint8
from ..errors import InputError
from ..model import AdaINModel
from ..modeling._color import luma, replace_luma
from ..modeling._padding import MULTIPLE, feature_mask, feature_side, pad_bottom_right, padded_side
from ._transfer import ContentStats, Moments, Stats, StatsHook, Style

OVERLAP = 72
"""Pixels each tile computes beyond those it owns, at each edge inside the image: a multiple of 8 at least
the radius of influence of encoder (to relu4_1) and decoder, measured as 67 px (``measure_radius``: a
pixel at offset 2 or 5 in its 8-pixel cell moves outputs 67 px away; encoder 30 px either side of a
cell, decoder 30-37 px)."""

BUFFER_BYTES_PER_PIXEL = 28
"""CPU memory per image pixel a tiled call keeps besides its tiles: the content (float32, 12 bytes), the
output (float32, 12), the luma for ``preserve_color="luminance"`` (4). Counted against the
budget when the tiles run on the CPU too."""

MAX_TILE_BATCH = 16
"""Tiles of one shape encoded together at most, when several fit in the memory budget."""


class Stage(Protocol):
    """What tiling uses of the engine: its public tensor-level methods (``adain.inference.Engine`` has them).

    A protocol rather than an import of ``Engine``: the engine decides to tile (``Engine.run``) and so
    imports this module; tiling depends on nothing but this surface.
    """

    device: torch.device
    eps: float

    def encode(self, x: Tensor) -> Tensor: ...

    def style_stats(self, style: Style, content: Tensor) -> list[Stats]: ...

    def render(
        self,
        x: Tensor,
        style: Style,
        alpha: float,
        *,
        stats: Sequence[Stats] | None = None,
        cells: Tensor | None = None,
        content_stats: ContentStats | None = None,
        hook: StatsHook | None = None,
    ) -> Tensor: ...


@dataclass(frozen=True)
class TileProgress:
    """What the ``callback`` of a tiled call receives after each batch of tiles.

    A [``Stylizer``][adain.Stylizer] call, [``adain.stylize``][adain.stylize] and
    [``Engine.run``][adain.inference.Engine.run] report it only for an image they stylize in tiles
    ([huge images](../guides/tiling.md)); ``done / total`` is the fraction of the work done.

    Attributes:
        done: tile passes done so far (each batch of tiles adds its size), up to ``total``.
        total: tile passes in all: each tile is encoded once for the image's statistics, then once more for
            the output, so ``2 * tiles`` (``tiles`` with ``alpha=0``, which needs no statistics).
        tiles: tiles the image is cut into.
    """

    done: int  # steps done: each tile is encoded once for the statistics, then once for the output
    total: int  # 2 x tiles (tiles alone with alpha 0: no statistics are needed)
    tiles: int  # tiles the image is cut into


@dataclass(frozen=True)
class Tile:
    """A tile: the pixels it computes, ``[top, bottom) x [left, right)`` in the image, and the pixels it owns
    (writes to the output), ``[own_top, own_bottom) x [own_left, own_right)``; all multiples of 8 but the
    image's bottom and right edges."""

    top: int
    bottom: int
    left: int
    right: int
    own_top: int
    own_bottom: int
    own_left: int
    own_right: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.bottom - self.top, self.right - self.left

    def owned_pixels(self) -> tuple[slice, slice]:
        """The owned pixels, in the tile's coordinates."""
        return (
            slice(self.own_top - self.top, self.own_bottom - self.top),
            slice(self.own_left - self.left, self.own_right - self.left),
        )

    def owned_cells(self) -> tuple[slice, slice]:
        """The owned relu4_1 cells (those covering owned pixels), in the tile's feature grid."""
        top, left = self.top // MULTIPLE, self.left // MULTIPLE
        return (
            slice(self.own_top // MULTIPLE - top, feature_side(self.own_bottom) - top),
            slice(self.own_left // MULTIPLE - left, feature_side(self.own_right) - left),
        )

    def cells(self, height: int, width: int) -> tuple[slice, slice]:
        """The tile's padded feature grid within the padded grid of the ``height x width`` image."""
        bottom = padded_side(height) if self.bottom == height else self.bottom
        right = padded_side(width) if self.right == width else self.right
        return slice(self.top // MULTIPLE, bottom // MULTIPLE), slice(self.left // MULTIPLE, right // MULTIPLE)


@dataclass(frozen=True)
class TileGrid:
    """The tiles of an ``height x width`` image, in raster order, and how many run at once."""

    height: int
    width: int
    tiles: list[Tile]
    batch: int  # tiles of one shape per forward pass


def _spans(length: int, step: int) -> list[tuple[int, int, int, int]]:
    """``(start, stop, own_start, own_stop)`` along one side: owned runs of at most ``step`` (a multiple of
    8), evened out, each computed with ``OVERLAP`` pixels more on either side inside the image."""
    count = -(-length // step)
    step = MULTIPLE * -(-length // (MULTIPLE * count))
    return [
        (max(0, a - OVERLAP), min(length, a + step + OVERLAP), a, min(length, a + step)) for a in range(0, length, step)
    ]


def grid(height: int, width: int, step: int) -> list[Tile]:
    """The tiles of an ``height x width`` image owning runs of at most ``step`` pixels a side (a multiple of 8),
    in raster order: owned pixels cover the image once, every tile starts on the pooling grid, and every
    edge inside the image is at least ``OVERLAP`` pixels from the pixels its tile owns."""
    return [
        Tile(top, bottom, left, right, own_top, own_bottom, own_left, own_right)
        for top, bottom, own_top, own_bottom in _spans(height, step)
        for left, right, own_left, own_right in _spans(width, step)
    ]


def _largest_tile(height: int, width: int, step: int) -> int:
    """Padded pixels of the largest tile of ``grid(height, width, step)``."""
    rows = max(padded_side(stop - start) for start, stop, _, _ in _spans(height, step))
    cols = max(padded_side(stop - start) for start, stop, _, _ in _spans(width, step))
    return rows * cols


def plan(
    height: int,
    width: int,
    tile_size: int | None,
    limit: int | None,
    per_pixel: int,
    device: torch.device,
    what: str = "content",
) -> TileGrid | None:
    """The tiles for an ``height x width`` content image, or ``None`` to stylize it whole.

    Arguments:
        tile_size: ``None``: tiles only when the whole image does not fit in ``limit``, as large as fit;
            else the side of the pixels each tile owns (rounded up to a multiple of 8).
        limit: bytes a call may use on ``device`` (``None``: unknown, then nothing is tiled unless asked).
        per_pixel: bytes of one encode + decode per (padded) pixel.
        what: the image, in the message when even the smallest tiles do not fit.
    Raises ``InputError`` when not even the smallest tile fits, or a ``tile_size`` that does not.
    """
    whole = per_pixel * padded_side(height) * padded_side(width)
    if tile_size is None and (limit is None or whole <= limit):
        return None
    room = limit
    if limit is not None and device.type == "cpu":
        room = limit - BUFFER_BYTES_PER_PIXEL * height * width
    if tile_size is None:  # the largest tiles that fit: fewest tiles, least overlap computed twice
        assert limit is not None and room is not None, "tile_size=None without a limit returned above"
        longest = MULTIPLE * -(-max(height, width) // MULTIPLE)
        fitting = (s for s in range(longest, 0, -MULTIPLE) if per_pixel * _largest_tile(height, width, s) <= room)
        step = next(fitting, None)
        if step is None:
            _refuse(height, width, whole, limit, per_pixel, device, what)
    else:
        step = MULTIPLE * -(-tile_size // MULTIPLE)
    tiles = grid(height, width, step)
    if len(tiles) == 1 and (limit is None or whole <= limit):
        return None  # one tile is the whole image: nothing to split
    per_tile = per_pixel * _largest_tile(height, width, step)
    if room is not None and per_tile > room:
        raise InputError(
            f"tile_size: tiles of {step} px (with their overlap up to {step + 2 * OVERLAP} px) need "
            f"about {per_tile / 2**30:.2f} GiB on {device}, over the {max(room, 0) / 2**30:.2f} GiB "
            "left of max_memory; pass a smaller tile_size, or None to choose it from max_memory"
        )
    batch = 1 if room is None else max(1, min(MAX_TILE_BATCH, room // per_tile))
    return TileGrid(height, width, tiles, batch)


def _refuse(
    height: int, width: int, whole: int, limit: int, per_pixel: int, device: torch.device, what: str
) -> NoReturn:
    smallest = per_pixel * _largest_tile(height, width, MULTIPLE)
    buffers = (
        f" besides {BUFFER_BYTES_PER_PIXEL * height * width / 2**30:.1f} GiB for the whole image"
        if device.type == "cpu"
        else ""
    )
    raise InputError(
        f"{what}: a {width}x{height} image needs about {whole / 2**30:.1f} GiB on {device} at once, and even in "
        f"the smallest tiles about {smallest / 2**30:.2f} GiB{buffers}, over the "
        f"limit of {limit / 2**30:.2f} GiB; raise max_memory if the memory really is there, or pass a smaller "
        "content_size"
    )


def _batches(grid: TileGrid) -> Iterator[list[Tile]]:
    """Consecutive tiles of one shape, at most ``grid.batch`` at a time."""
    batch: list[Tile] = []
    for tile in grid.tiles:
        if batch and (len(batch) == grid.batch or tile.shape != batch[0].shape):
            yield batch
            batch = []
        batch.append(tile)
    yield batch


def _pixels(source: Tensor, batch: list[Tile], device: torch.device) -> Tensor:
    """The tiles' pixels of ``(1, C, H, W)`` ``source`` as one ``(N, 3, h, w)`` batch on ``device``."""
    parts = [source[..., t.top : t.bottom, t.left : t.right] for t in batch]
    return torch.cat(parts).to(device).expand(-1, 3, -1, -1)


def stylize(
    engine: Stage,
    style: Style,
    image: Tensor,
    alpha: float,
    tiles: TileGrid,
    *,
    hook: StatsHook | None = None,
    callback: Callable[[TileProgress], None] | None = None,
    as_uint8: bool = False,
) -> Tensor:
    """One image stylized tile by tile, with the result ``engine`` gives for it whole (``Engine.run``).

    Arguments:
        engine: the engine (``adain.inference.Engine``); only its public methods are used.
        style: the ``Style``; its mask, if any, covers ``image`` (any resolution, the image's aspect ratio).
        image: ``(3, H, W)`` float32 in [0, 1] (kept where it is; tiles go to ``engine.device``).
        alpha: style strength in [0, 1].
        tiles: the plan for an ``H x W`` image (``plan``, ``Engine.tile_plan``).
        hook: ``content_stats`` as ``Engine.run`` takes it: called once, with the whole image's statistics.
        callback: receives a ``TileProgress`` after each batch of tiles.
        as_uint8: return uint8 0-255 (rounded as ``adain._images.to_uint8``) instead of float32: 3 bytes per
            pixel of output rather than 12. Its layout is channels-last (``.permute(1, 2, 0)`` is contiguous).
    Returns:
        ``(3, H, W)`` float32 in [0, 1], or uint8, on the CPU: an ordinary tensor (allocated outside inference
        mode), which the caller may change in place.
    """
    height, width = image.shape[-2:]
    if as_uint8:
        out = torch.empty((height, width, 3), dtype=torch.uint8).permute(2, 0, 1)
    else:
        out = torch.empty((3, height, width), dtype=torch.float32)
    with torch.inference_mode():
        _stylize_into(out, engine, style, image, alpha, tiles, hook, callback)
    return out


def _stylize_into(
    out: Tensor,
    engine: Stage,
    style: Style,
    image: Tensor,
    alpha: float,
    tiles: TileGrid,
    hook: StatsHook | None,
    callback: Callable[[TileProgress], None] | None,
) -> None:
    """``stylize``'s two passes, writing each tile's owned pixels into ``out``."""
    height, width = image.shape[-2:]
    x = image[None]
    source = luma(x) if style.color == "luminance" else x
    fg = None if style.mask is None else feature_mask(style.mask, height, width).cpu()
    total = len(tiles.tiles) * (2 if alpha > 0 else 1)
    done = 0

    def report(count: int) -> None:
        nonlocal done
        done += count
        if callback is not None:
            callback(TileProgress(done, total, len(tiles.tiles)))

    c_stats, s_stats = None, None
    if alpha > 0:
        c_stats = statistics(engine, source, tiles, fg, report)
        c_stats = c_stats if hook is None else hook(*c_stats)
        s_stats = engine.style_stats(style, source)
    for batch in _batches(tiles):
        masks = None if fg is None else torch.cat([fg[(...,) + t.cells(height, width)] for t in batch])
        masks = None if masks is None else masks.to(engine.device)
        styled = engine.render(
            _pixels(source, batch, engine.device), style, alpha, stats=s_stats, cells=masks, content_stats=c_stats
        )
        for tile, result in zip(batch, styled):
            rows, cols = tile.owned_pixels()
            result = result[:, rows, cols]
            if source is not x:  # luminance: the stylized luma with the content's chroma, pixel by pixel
                own = x[0, :, tile.own_top : tile.own_bottom, tile.own_left : tile.own_right]
                result = replace_luma(own.to(result.device), luma(result))
            result = result.clamp_(0, 1)
            owned = (slice(None), slice(tile.own_top, tile.own_bottom), slice(tile.own_left, tile.own_right))
            out[owned] = to_uint8(result) if out.dtype == torch.uint8 else result
        report(len(batch))


def statistics(
    engine: Stage, source: Tensor, tiles: TileGrid, fg: Tensor | None, report: Callable[[int], None] | None = None
) -> ContentStats:
    """Pass 1: the content statistics of a whole image from its tiles' owned, valid feature cells.

    Arguments:
        source: the ``(1, C, H, W)`` float32 image in [0, 1] (C = 3, or 1 for a luma, which is encoded as grey).
        tiles: its tile plan. fg: ``None``, or the mask on the image's padded feature grid
            (``adain.modeling._padding.feature_mask``), on the CPU.
        report: called with the number of tiles after each batch.
    Returns:
        What ``adain.inference._transfer.content_stats`` gives for the whole image to float rounding:
        ``(mean, std)`` ``(1, 512, 1, 1)`` float32, or with ``fg`` one per region (``None`` for a region
        without a cell).
    """
    moments = [Moments()] if fg is None else [Moments(), Moments()]
    for batch in _batches(tiles):
        x = _pixels(source, batch, engine.device)
        feats = engine.encode(pad_bottom_right(x, padded_side(x.shape[-2]), padded_side(x.shape[-1])))
        for tile, feat in zip(batch, feats):
            rows, cols = tile.owned_cells()
            cells = feat[:, rows, cols]
            if fg is None:
                moments[0].add(cells.reshape(cells.shape[0], -1))
                continue
            top, left = tile.top // MULTIPLE, tile.left // MULTIPLE
            inside = fg[0, 0, rows.start + top : rows.stop + top, cols.start + left : cols.stop + left]
            inside = inside.to(cells.device)
            moments[0].add(cells[:, inside])
            moments[1].add(cells[:, ~inside])
        if report is not None:
            report(len(batch))
    stats = [m.stats(engine.eps) for m in moments]
    if fg is not None:
        return stats
    assert stats[0] is not None, "every image has valid cells"
    return stats[0]


@torch.inference_mode()
def measure_radius(model: AdaINModel, side: int = 160) -> int:
    """How far (pixels, in any direction) changing one input pixel moves the output of ``model``'s encoder
    (to relu4_1) and decoder: the largest over the 8 positions of the pixel in its pooling cell, from a
    ``side`` x ``side`` random image, on the model's device and dtype. What ``OVERLAP`` must cover."""
    param = next(model.parameters())
    x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0)).to(param)
    base = model.decode(model.encode(x))
    centre, radius = side // 2 // MULTIPLE * MULTIPLE, 0
    for offset in range(MULTIPLE):
        p = centre + offset
        moved = x.clone()
        moved[..., p, p] += 0.5
        changed = (model.decode(model.encode(moved)) - base).abs().amax(dim=(0, 1)) > 0
        rows, cols = changed.nonzero(as_tuple=True)
        if min(rows.min(), cols.min()) == 0 or max(rows.max(), cols.max()) == side - 1:
            raise ValueError(f"measure_radius: a change reaches the border of the {side}px probe; use a larger side")
        radius = max(radius, p - int(rows.min()), int(rows.max()) - p, p - int(cols.min()), int(cols.max()) - p)
    return radius
