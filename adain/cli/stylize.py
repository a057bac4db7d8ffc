"""``adain stylize``: stylize files or whole folders from the command line.

Defaults come from the signature of ``adain.stylize`` (one source of truth). The flags shared with
``adain gatys`` live in ``common``, folder mode (``-o`` a file for one pair, else a folder of
``<content>_stylized_<style>.<ext>``, sub-folders mirrored, existing outputs skipped, failures counted)
in ``folders``.
"""

from __future__ import annotations

from ..arguments import check_alpha
from ..errors import InputError
from ..runtime import resolve_device, resolve_dtype
from ..stylizer import Stylizer, stylize
from .common import HelpFormatter, add_inputs, add_shared, load_model, signature_defaults
from .folders import plan_pairs, run_pairs

__all__ = ["register"]


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
    p.add_argument("--compile", action="store_true", default=signature_defaults(Stylizer)["compile"],
                   help="torch.compile the networks (once per size bucket, seconds to minutes; pays off over many "
                        "images of a few sizes, mostly on a GPU)")
    p.set_defaults(func=run)


def run(args) -> int:
    check_alpha(args.alpha)
    resolve_dtype(args.dtype, resolve_device(args.device))
    if args.mask is not None and args.style_weights is not None:
        raise InputError("style_weights: cannot be combined with a mask (each region takes one style)")
    plan = plan_pairs(args, combine=args.style_weights is not None or args.mask is not None)
    if not plan.pending:  # every output exists: nothing to compute, no weights to load
        return run_pairs(plan, None, None)
    stylizer = Stylizer(load_model(args.weights), args.device, args.dtype, max_memory=args.max_memory,
                        compile=args.compile)

    def prepare(style):
        return stylizer.set_style(style.argument, style_size=args.style_size, crop=args.crop,
                                  style_weights=args.style_weights, mask=args.mask,
                                  preserve_color=args.preserve_color)

    def render(content, style, prepared):
        return prepared(str(content), args.alpha, content_size=args.content_size, crop=args.crop)

    return run_pairs(plan, prepare, render)
