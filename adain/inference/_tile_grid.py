"""The tiles of an image too large for the memory budget: their geometry, exact by construction, and the plan.

Exactness comes from the geometry: tiles start at multiples of 8 in the image, so their pooling grids are
the untiled one; a tile at the bottom/right edge is padded exactly as the whole image is; a tile at the
top/left edge sees the same reflection padding there as the whole image; and every interior edge is
``OVERLAP`` pixels away from the pixels the tile owns, more than an input pixel can move an output pixel
through the encoder and decoder (``measure_radius``), so padding at a cut never reaches them. ``plan`` cuts
an image into such tiles, as large as the memory budget allows; the two passes that stylize them are
``adain.inference._tiling``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

import torch

from ..errors import InputError
from ..model import AdaINModel
from ..modeling._padding import MULTIPLE, feature_side, padded_side

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
