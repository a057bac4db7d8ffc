"""Images too large for the memory budget, stylized in overlapping tiles with exactly the untiled result.

AdaIN is local except for one thing: the content statistics (the channel means and standard deviations
of the relu4_1 features) are taken over the whole image. So a tiled image takes two passes:

1. **Encode.** Every tile is encoded once; each feature cell of the image is *owned* by exactly one tile,
   which keeps it in the image's feature store (``adain.inference._features``: in memory, or in a
   temporary file when the plan says it does not fit) and merges it into per-channel moments in float64
   (``adain.inference._transfer.Moments``); with a mask, per region. Only the cells that cover the image
   count for the statistics, as untiled (``adain.inference._transfer``).
2. **Decode.** Every tile's window of the stored feature grid (its owned cells and ``OVERLAP / 8`` cells
   around them) is AdaIN'd with those frozen statistics, blended with ``alpha`` and decoded; the pixels it
   owns are written into a CPU buffer of the whole output. No tile is encoded twice.

Both passes use only the engine's public tensor-level methods (``encode``, ``style_stats``,
``render_features``: the ``Stage`` protocol), so any backend behind them tiles too; the engine decides when
to tile, from its own budget (``Engine.run``, ``Engine.tile_plan``). The tiles, and why each gives exactly
the untiled pixels it owns: ``adain.inference._tile_grid``. Colour preservation is computed for the whole
image once (CORAL's colour statistics, the luma's mean and std). Memory: the content and the output as CPU
tensors, the features (32 bytes per pixel in float32) in memory or on disk, and one batch of tiles on the
device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from .._images import to_uint8
from .._runtime import to_device
from ..modeling._color import luma, replace_luma
from ..modeling._padding import MULTIPLE, feature_mask, pad_bottom_right, padded_side
from ._features import FeatureStore
from ._tile_grid import FEATURE_CHANNELS, Tile, TileGrid
from ._transfer import ContentStats, Moments, Stats, StatsHook, Style


class Stage(Protocol):
    """What tiling uses of the engine: its public tensor-level methods (``adain.inference.Engine`` has them).

    A protocol rather than an import of ``Engine``: the engine decides to tile (``Engine.run``) and so
    imports this module; tiling depends on nothing but this surface.
    """

    device: torch.device
    dtype: torch.dtype
    eps: float

    def encode(self, x: Tensor) -> Tensor: ...

    def style_stats(self, style: Style, content: Tensor) -> list[Stats]: ...

    def render_features(
        self,
        f_c: Tensor,
        style: Style,
        alpha: float,
        *,
        stats: Sequence[Stats] | None = None,
        cells: Tensor | None = None,
        content_stats: ContentStats | None = None,
    ) -> Tensor: ...


@dataclass(frozen=True)
class TileProgress:
    """What the ``callback`` of a tiled call receives after each batch of tiles.

    A [``Stylizer``][adain.Stylizer] call, [``adain.stylize``][adain.stylize] and
    [``Engine.run``][adain.inference.Engine.run] report it only for an image they stylize in tiles
    ([huge images](../guides/tiling.md)); ``done / total`` is the fraction of the work done.

    Attributes:
        done: tile steps done so far (each batch of tiles adds its size), up to ``total``.
        total: tile steps in all: each tile is encoded once (features and statistics), then decoded once,
            so ``2 * tiles``.
        tiles: tiles the image is cut into.
    """

    done: int  # steps done: each tile is encoded once (pass 1), then decoded once (pass 2)
    total: int  # 2 x tiles
    tiles: int  # tiles the image is cut into


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
    total, done = 2 * len(tiles.tiles), 0

    def report(count: int) -> None:
        nonlocal done
        done += count
        if callback is not None:
            callback(TileProgress(done, total, len(tiles.tiles)))

    rows, cols = tiles.feature_shape
    with FeatureStore(rows, cols, FEATURE_CHANNELS, engine.dtype, on_disk=tiles.features_on_disk) as store:
        c_stats = encode_tiles(engine, source, tiles, fg, store, report, gather=alpha > 0)
        s_stats = None
        if alpha > 0:
            assert c_stats is not None, "gathered with alpha > 0"
            c_stats = c_stats if hook is None else hook(*c_stats)
            s_stats = engine.style_stats(style, source)
        for batch, styled in _decoded(engine, style, alpha, tiles, store, fg, c_stats, s_stats):
            for tile, result in zip(batch, styled):
                rows_, cols_ = tile.owned_pixels()
                result = result[:, rows_, cols_].float()
                if source is not x:  # luminance: the stylized luma with the content's chroma, pixel by pixel
                    own = x[0, :, tile.own_top : tile.own_bottom, tile.own_left : tile.own_right]
                    result = replace_luma(own.to(result.device), luma(result))
                result = result.clamp_(0, 1)
                owned = (slice(None), slice(tile.own_top, tile.own_bottom), slice(tile.own_left, tile.own_right))
                out[owned] = to_uint8(result) if out.dtype == torch.uint8 else result
            report(len(batch))


def _decoded(
    engine: Stage,
    style: Style,
    alpha: float,
    tiles: TileGrid,
    store: FeatureStore,
    fg: Tensor | None,
    c_stats: ContentStats | None,
    s_stats: list[Stats] | None,
) -> Iterator[tuple[list[Tile], Tensor]]:
    """Pass 2: each batch of tiles with its decoded windows, ``(N, 3, h, w)`` in the tile's coordinates.

    The windows are read into one host buffer, allocated once for the largest batch and reused: a
    ``(N, r, c, 512)`` view of it is the ``(N, 512, r, c)`` channels-last batch the decoder takes.
    """
    height, width = tiles.height, tiles.width
    largest = max(_window_cells(t, height, width) for t in tiles.tiles)
    buffer = torch.empty(min(tiles.batch, len(tiles.tiles)) * largest * FEATURE_CHANNELS, dtype=store.dtype)
    for batch in _batches(tiles):
        windows = [t.cells(height, width) for t in batch]
        r, c = (windows[0][0].stop - windows[0][0].start), (windows[0][1].stop - windows[0][1].start)
        block = buffer[: len(batch) * r * c * FEATURE_CHANNELS].view(len(batch), r, c, FEATURE_CHANNELS)
        for i, (rows, cols) in enumerate(windows):
            store.read_into(block[i], rows, cols)
        masks = None if fg is None else torch.cat([fg[(...,) + w] for w in windows]).to(engine.device)
        feats = to_device(block.permute(0, 3, 1, 2), engine.device)
        yield batch, engine.render_features(feats, style, alpha, stats=s_stats, cells=masks, content_stats=c_stats)


def _window_cells(tile: Tile, height: int, width: int) -> int:
    rows, cols = tile.cells(height, width)
    return (rows.stop - rows.start) * (cols.stop - cols.start)


def encode_tiles(
    engine: Stage,
    source: Tensor,
    tiles: TileGrid,
    fg: Tensor | None,
    store: FeatureStore | None,
    report: Callable[[int], None] | None = None,
    *,
    gather: bool = True,
) -> ContentStats | None:
    """Pass 1: encode every tile once, keep the cells it owns in ``store`` and gather the image's statistics.

    Arguments:
        source: the ``(1, C, H, W)`` float32 image in [0, 1] (C = 3, or 1 for a luma, which is encoded as grey).
        tiles: its tile plan. fg: ``None``, or the mask on the image's padded feature grid
            (``adain.modeling._padding.feature_mask``), on the CPU.
        store: where the owned cells go (``Tile.kept_cells``), or ``None`` to keep nothing.
        report: called with the number of tiles after each batch.
        gather: gather the statistics (not needed with ``alpha=0``).
    Returns:
        What ``adain.inference._transfer.content_stats`` gives for the whole image to float rounding:
        ``(mean, std)`` ``(1, 512, 1, 1)`` float32, or with ``fg`` one per region (``None`` for a region
        without a cell); ``None`` when ``gather`` is false.
    """
    height, width = tiles.height, tiles.width
    moments = [Moments()] if fg is None else [Moments(), Moments()]
    for batch in _batches(tiles):
        x = _pixels(source, batch, engine.device)
        feats = engine.encode(pad_bottom_right(x, padded_side(x.shape[-2]), padded_side(x.shape[-1])))
        for tile, feat in zip(batch, feats):
            if store is not None:
                kept = feat[(slice(None),) + tile.kept_cells(height, width)]
                store.write(tile.own_top // MULTIPLE, tile.own_left // MULTIPLE, kept)
            if gather:
                _gather(moments, tile, feat, fg)
        if report is not None:
            report(len(batch))
    if not gather:
        return None
    stats = [m.stats(engine.eps) for m in moments]
    if fg is not None:
        return stats
    assert stats[0] is not None, "every image has valid cells"
    return stats[0]


def _gather(moments: list[Moments], tile: Tile, feat: Tensor, fg: Tensor | None) -> None:
    """Merge ``tile``'s owned cells that cover the image (of its features ``feat``) into ``moments``."""
    rows, cols = tile.owned_cells()
    cells = feat[:, rows, cols]
    if fg is None:
        moments[0].add(cells.reshape(cells.shape[0], -1))
        return
    top, left = tile.top // MULTIPLE, tile.left // MULTIPLE
    inside = fg[0, 0, rows.start + top : rows.stop + top, cols.start + left : cols.stop + left]
    inside = inside.to(cells.device)
    moments[0].add(cells[:, inside])
    moments[1].add(cells[:, ~inside])


def statistics(
    engine: Stage, source: Tensor, tiles: TileGrid, fg: Tensor | None, report: Callable[[int], None] | None = None
) -> ContentStats:
    """The content statistics of a whole image from its tiles' owned, valid feature cells (pass 1 keeping no
    features; arguments and result as ``encode_tiles``)."""
    stats = encode_tiles(engine, source, tiles, fg, None, report)
    assert stats is not None, "gather=True gives statistics"
    return stats
