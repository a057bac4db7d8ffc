"""The tiles of an image too large for the memory budget: their geometry, exact by construction, and the plan.

Exactness comes from the geometry: tiles start at multiples of 8 in the image, so their pooling grids are
the untiled one; a tile at the bottom/right edge is padded exactly as the whole image is; a tile at the
top/left edge sees the same reflection padding there as the whole image; and every interior edge is
``OVERLAP`` pixels away from the pixels the tile owns. The encoder and the decoder run in separate passes
(``adain.inference._tiling``: pass 1 encodes and keeps the features, pass 2 only decodes), so the overlap
has to cover each network's reach on its own, not their sum: a relu4_1 cell depends on pixels up to 30 px
beyond its own 8, and a cell moves decoded pixels up to 30 px beyond its own 8 (``measure_radius``). The
same tile serves both passes: pass 1 encodes its pixels, pass 2 decodes its window of the whole image's
feature grid (``Tile.cells``: the owned cells and 4 cells = 32 px around them). ``plan`` cuts an image
into such tiles, as large as the memory budget allows, and decides where the features are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

import torch

from ..errors import InputError
from ..model import AdaINModel
from ..modeling._padding import MULTIPLE, feature_side, padded_side

OVERLAP = 32
"""Pixels each tile computes beyond those it owns, at each edge inside the image: the smallest multiple of 8
(tiles start on the pooling grid) at least the reach of either network alone, measured as 30 px
(``measure_radius``). Pass 1 encodes the tile's pixels; pass 2 decodes the 4 cells (32 px) around its
owned cells, so in neither pass does padding at a cut reach what the tile owns. (Before the passes were
split, each tile was encoded and decoded in one go and needed both reaches added: 72 px.)"""

BUFFER_BYTES_PER_PIXEL = 28
"""CPU memory per image pixel a tiled call keeps besides its tiles and features: the content (float32, 12
bytes), the output (float32, 12), the luma for ``preserve_color="luminance"`` (4). Counted against the
budget when the tiles run on the CPU too."""

FEATURE_CHANNELS = 512
"""Channels of the relu4_1 features kept between the passes: ``512 * itemsize`` bytes per feature cell, a
cell per 8x8 pixels (32 bytes per pixel in float32: about 1.1 GB at 8K, 4.6 GB at 12000x12000)."""

MIN_STEP_IN_MEMORY = 512
"""The features are kept in memory when, besides them, tiles owning at least this many pixels a side (or
the whole image, if smaller) still fit the budget; otherwise they go to a temporary file and the tiles
get the memory. Smaller tiles would cost more in overlap than reading the features back from disk."""

MAX_TILE_BATCH = 16
"""Tiles of one shape encoded together at most, when several fit in the memory budget."""


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

    def kept_cells(self, height: int, width: int) -> tuple[slice, slice]:
        """The cells pass 1 keeps for pass 2, in the tile's feature grid: the owned cells, and at the image's
        bottom/right edge also the padding cells beyond it (the decoder reads them as the untiled one does).
        They go to ``(own_top // 8, own_left // 8)`` of the whole image's padded grid."""
        top, left = self.top // MULTIPLE, self.left // MULTIPLE
        bottom = padded_side(height) if self.own_bottom == height else self.own_bottom
        right = padded_side(width) if self.own_right == width else self.own_right
        return (
            slice(self.own_top // MULTIPLE - top, bottom // MULTIPLE - top),
            slice(self.own_left // MULTIPLE - left, right // MULTIPLE - left),
        )

    def cells(self, height: int, width: int) -> tuple[slice, slice]:
        """The tile's padded feature grid within the padded grid of the ``height x width`` image: also the
        window pass 2 decodes (its owned cells and ``OVERLAP / 8`` cells around them inside the image)."""
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
    features_on_disk: bool = False  # the relu4_1 features kept between the passes: in a temporary file, not in memory

    @property
    def feature_shape(self) -> tuple[int, int]:
        """Rows and columns of the whole image's padded relu4_1 grid (what the feature store holds)."""
        return padded_side(self.height) // MULTIPLE, padded_side(self.width) // MULTIPLE


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
    *,
    cell_bytes: int = FEATURE_CHANNELS * 4,
    host_limit: int | None = None,
) -> TileGrid | None:
    """The tiles for an ``height x width`` content image, or ``None`` to stylize it whole.

    Arguments:
        tile_size: ``None``: tiles only when the whole image does not fit in ``limit``, as large as fit;
            else the side of the pixels each tile owns (rounded up to a multiple of 8).
        limit: bytes a call may use on ``device`` (``None``: unknown, then nothing is tiled unless asked).
        per_pixel: bytes of one encode + decode per (padded) pixel.
        what: the image, in the message when even the smallest tiles do not fit.
        cell_bytes: bytes of one relu4_1 feature cell as kept between the passes (512 x the itemsize).
        host_limit: bytes of host memory a call may use, when ``device`` is not the CPU (the features are
            kept on the host); ``None``: unknown (they are kept in memory).
    Returns:
        The ``TileGrid``; its ``features_on_disk`` says whether the features go to a temporary file: on the
        CPU when, besides them, tiles owning ``MIN_STEP_IN_MEMORY`` px (or the whole image) would not fit.
    Raises ``InputError`` when not even the smallest tile fits, or a ``tile_size`` that does not.
    """
    whole = per_pixel * padded_side(height) * padded_side(width)
    if tile_size is None and (limit is None or whole <= limit):
        return None
    store = cell_bytes * (padded_side(height) // MULTIPLE) * (padded_side(width) // MULTIPLE)
    room, kept = limit, None  # kept: room for tiles with the features in memory (None: not counted there)
    if limit is not None and device.type == "cpu":
        room = limit - BUFFER_BYTES_PER_PIXEL * height * width
        kept = room - store
    host_needs = store + BUFFER_BYTES_PER_PIXEL * height * width  # off the CPU the features are kept on the host
    on_disk = host_limit is not None and device.type != "cpu" and host_needs > host_limit
    longest = MULTIPLE * -(-max(height, width) // MULTIPLE)
    if tile_size is None:  # the largest tiles that fit: fewest tiles, least overlap computed twice
        assert limit is not None and room is not None, "tile_size=None without a limit returned above"
        step = _largest_step(height, width, longest, per_pixel, room if kept is None else kept)
        if kept is not None and (step is None or step < min(MIN_STEP_IN_MEMORY, longest)):
            on_disk, step = True, _largest_step(height, width, longest, per_pixel, room)
        if step is None:
            _refuse(height, width, whole, limit, per_pixel, device, what)
    else:
        step = MULTIPLE * -(-tile_size // MULTIPLE)
        on_disk = on_disk or (kept is not None and per_pixel * _largest_tile(height, width, step) > kept)
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
    free = room if on_disk or kept is None else kept
    batch = 1 if free is None else max(1, min(MAX_TILE_BATCH, free // per_tile))
    return TileGrid(height, width, tiles, batch, on_disk)


def _largest_step(height: int, width: int, longest: int, per_pixel: int, room: int) -> int | None:
    """The largest owned side (a multiple of 8) whose tiles need at most ``room`` bytes; ``None`` if none."""
    fitting = (s for s in range(longest, 0, -MULTIPLE) if per_pixel * _largest_tile(height, width, s) <= room)
    return next(fitting, None)


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


@torch.inference_mode()
def measure_radius(model: AdaINModel, side: int = 160) -> int:
    """How far (pixels beyond a feature cell's own 8, in any direction) each network of ``model`` reaches: the
    larger of the encoder's (changing one input pixel, at each of the 8 offsets in its pooling cell, moves
    relu4_1 cells whose pixels lie this far away) and the decoder's (changing one feature cell moves output
    pixels this far beyond the cell's own). From random inputs of ``side`` x ``side`` pixels, on the model's
    device and dtype. What ``OVERLAP`` must cover, since the passes run the networks separately."""
    param = next(model.parameters())
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, side, side, generator=generator).to(param)
    centre, reach = side // 2 // MULTIPLE * MULTIPLE, 0
    base = model.encode(x)
    for offset in range(MULTIPLE):
        p = centre + offset
        moved = x.clone()
        moved[..., p, p] += 0.5
        lo, hi = _changed_span(model.encode(moved), base, side // MULTIPLE)
        reach = max(reach, p - (MULTIPLE * lo + MULTIPLE - 1), MULTIPLE * hi - p)
    cells = side // MULTIPLE
    f = torch.rand(1, FEATURE_CHANNELS, cells, cells, generator=generator).to(param)
    moved_f = f.clone()
    c = cells // 2
    moved_f[..., c, c] += 1.0
    lo, hi = _changed_span(model.decode(moved_f), model.decode(f), side)
    return max(reach, MULTIPLE * c - lo, hi - (MULTIPLE * c + MULTIPLE - 1))


def _changed_span(a: torch.Tensor, b: torch.Tensor, side: int) -> tuple[int, int]:
    """First and last row where ``(1, C, side, side)`` ``a`` and ``b`` differ (the probe is symmetric in rows
    and columns, so rows tell); ``ValueError`` when a change reaches the border."""
    rows, cols = ((a - b).abs().amax(dim=(0, 1)) > 0).nonzero(as_tuple=True)
    if min(rows.min(), cols.min()) == 0 or max(rows.max(), cols.max()) == side - 1:
        raise ValueError(f"measure_radius: a change reaches the border of the {side}px probe; use a larger side")
    return int(min(rows.min(), cols.min())), int(max(rows.max(), cols.max()))
