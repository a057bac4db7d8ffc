"""``adain stylize``: stylize files or whole folders from the command line.

Defaults come from the signature of ``adain.stylize`` (one source of truth). The flags shared with
``adain gatys`` live in ``common``, folder mode (``-o`` a file for one pair, else a folder of
``<content>_stylized_<style>.<ext>``, sub-folders mirrored, existing outputs skipped, failures counted)
in ``folders``. An image too large for the memory budget (or any image, with ``--tile-size``) is stylized in
tiles, with a progress bar of its tiles.
"""

from __future__ import annotations

import sys
from typing import NoReturn

from tqdm import tqdm

from .._runtime import resolve_device, resolve_dtype
from ..errors import InputError
from ..inference import Stylizer, TileProgress
from ..inference._checks import check_call
from ..inference._tile_grid import OVERLAP
from ..methods import stylize
from ._common import HelpFormatter, add_backend, add_inputs, add_shared, load_model, parse_size, signature_defaults
from ._folders import plan_pairs, run_pairs


def register(subparsers) -> None:
    d = signature_defaults(stylize)
    p = subparsers.add_parser(
        "stylize",
        help="stylize images with AdaIN",
        description="Stylize CONTENT (a file or a folder) with each STYLE (files or folders).",
        formatter_class=HelpFormatter,
    )
    add_inputs(p)
    p.add_argument("--alpha", type=float, default=d["alpha"], help="style strength in [0, 1]")
    p.add_argument("--crop", action="store_true", default=d["crop"], help="centre square crop of content and style")
    add_shared(p, d)
    p.add_argument(
        "--tile-size",
        type=parse_size,
        metavar="N",
        default=d["tile_size"],
        help="stylize in tiles of about N x N output pixels (each computed with "
        f"{OVERLAP} px more context per side), with the untiled result; 0 or 'none': only images "
        "too large for --max-memory are tiled, as large as fit",
    )
    p.add_argument(
        "--max-pixels",
        type=int,
        metavar="N",
        default=d["max_pixels"],
        help="refuse image files with more pixels (decompression bombs); raise it for trusted huge files",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        default=signature_defaults(Stylizer)["compile"],
        help="torch.compile the networks (once per size bucket, seconds to minutes; pays off over many "
        "images of a few sizes, mostly on a GPU)",
    )
    add_backend(p)
    p.set_defaults(func=run)


def run(args) -> int:
    # Every option of the call checked before the weights load (the library would check them after).
    check_call(
        alpha=args.alpha,
        content_size=args.content_size,
        crop=args.crop,
        tile_size=args.tile_size,
        max_pixels=args.max_pixels,
        output_type=None,
    )
    resolve_dtype(args.dtype, resolve_device(args.device))
    if args.mask is not None and args.style_weights is not None:
        raise InputError("style_weights: cannot be combined with a mask (each region takes one style)")
    plan = plan_pairs(args, combine=args.style_weights is not None or args.mask is not None)
    if not plan.pending:  # every output exists: nothing to compute, no weights to load
        return run_pairs(plan, None, None)
    stylizer = Stylizer(
        load_model(args.weights),
        args.device,
        args.dtype,
        max_memory=args.max_memory,
        compile=args.compile,
        backend=args.backend,
    )

    def prepare(style):
        return stylizer.set_style(
            style.argument,
            style_size=args.style_size,
            crop=args.crop,
            style_weights=args.style_weights,
            mask=args.mask,
            preserve_color=args.preserve_color,
            max_pixels=args.max_pixels,
        )

    def render(content, style, prepared):
        bar = _TileBar(content.name)
        try:
            return prepared(
                str(content),
                args.alpha,
                content_size=args.content_size,
                crop=args.crop,
                tile_size=args.tile_size,
                max_pixels=args.max_pixels,
                callback=bar,
            )
        finally:
            bar.close()

    return run_pairs(plan, prepare, render)


class _TileBar:
    """A tqdm bar for the tiles of one image, shown once a tiled image reports (none when stderr is not a
    terminal); each tile counts twice: encoded, then decoded."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.bar: tqdm[NoReturn] | None = None

    def __call__(self, p: TileProgress) -> None:
        if self.bar is None:
            self.bar = tqdm(
                total=p.total,
                unit="step",
                dynamic_ncols=True,
                disable=None,
                leave=False,
                file=sys.stderr,
                desc=f"{self.name}: {p.tiles} tiles",
            )
        self.bar.update(p.done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
