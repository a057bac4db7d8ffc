"""``adain gatys CONTENT STYLE [STYLE ...] -o OUT``: optimisation-based style transfer with a progress bar.

The flags shared with ``adain stylize`` (``--weights``, ``--style-weights``, ``--preserve-color``, sizes,
``--device``, ``--dtype``, ``--max-memory``, ``--mask``) come from ``common`` and folder mode from
``folders``; every other option is generated from ``adain.gatys``'s signature, so the command line and
the library cannot disagree; all of them are checked before the weights are loaded. Old spellings
(``--model``, ``--style-blend``, ``--memory-limit``, ``--preserve-color match``) still work and print a
one-line notice naming the new one.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from tqdm import tqdm

from .._io import read_image
from ..errors import InputError
from ..model import AdaINModel
from ..optimization._api import gatys
from ..optimization._options import CHOICES, LAYER_WEIGHTINGS, GatysOptions
from ..weights._legacy import read_legacy_vgg
from ._common import SHARED_OPTIONS, HelpFormatter, add_inputs, add_renamed, add_shared, load_model, signature_defaults
from ._folders import plan_pairs, run_pairs

# Options not offered on the command line (Python objects), shared (``common``) or given their own flags below.
_SPECIAL = {
    "content",
    "style",
    "model",
    "callback",
    "masks",
    "init",
    "layer_weights",
    "content_layers",
    "style_layers",
    *SHARED_OPTIONS,
}
# Options whose default is None but which take a number on the command line.
_NUMERIC_NONE = {"coarse_iterations": int, "lr": float, "average_decay": float}
_RENAMED = {"--model": "--weights", "--style-blend": "--style-weights", "--memory-limit": "--max-memory"}
_NOTES = {
    "--style-size": "in gatys, 0 or 'none' (the default) means --style-scale x the content's shorter side instead",
    "--mask": "or --masks, one guide per style",
    "--dtype": "float16 is refused (it overflows in VGG)",
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def register(subparsers) -> None:
    default = signature_defaults(gatys)
    parser = subparsers.add_parser(
        "gatys",
        help="stylize by optimising the image (Gatys et al.; slow, reference quality)",
        description="Optimise an image so its VGG features match the content's and the style(s)' statistics.",
        formatter_class=HelpFormatter,
    )
    add_inputs(parser)
    add_shared(parser, default, notes=_NOTES, old_colors=("match",))
    add_renamed(parser, default, _RENAMED)
    parser.add_argument(
        "--vgg", default=None, help="use the encoder of a legacy vgg_normalised.pth instead of --weights"
    )
    parser.add_argument("--masks", nargs="+", default=None, help="one region mask per style (white = that style)")
    parser.add_argument("--init", default=default["init"], help="'content', 'noise' or an image path")
    parser.add_argument(
        "--layer-weights",
        nargs="+",
        default=[default["layer_weights"]],
        help=f"one of {', '.join(LAYER_WEIGHTINGS)}, or one number per style layer",
    )
    parser.add_argument("--content-layers", nargs="+", default=list(default["content_layers"]))
    parser.add_argument("--style-layers", nargs="+", default=list(default["style_layers"]))
    for name, value in default.items():
        if name in _SPECIAL:
            continue
        if isinstance(value, bool):
            parser.add_argument(_flag(name), default=value, action=argparse.BooleanOptionalAction)
        elif name in _NUMERIC_NONE:
            parser.add_argument(_flag(name), type=_NUMERIC_NONE[name], default=value)
        elif name in CHOICES:
            parser.add_argument(_flag(name), default=value, choices=CHOICES[name])
        else:
            parser.add_argument(_flag(name), type=type(value), default=value)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(
        func=_run, _option_names=[n for n in default if n not in ("content", "style", "model", "callback")]
    )


def _layer_weights(values: list[str]):
    if len(values) == 1 and not _is_number(values[0]):
        return values[0]
    if not all(_is_number(v) for v in values):
        raise InputError(f"--layer-weights: give one name or numbers only, got {values}")
    return tuple(float(v) for v in values)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _load_model(args) -> AdaINModel:
    if args.vgg is not None:
        model = AdaINModel()
        model.encoder.load_state_dict(read_legacy_vgg(args.vgg))
        return model.eval()
    return load_model(args.weights)


def _options(args) -> dict:
    options = {name: getattr(args, name) for name in args._option_names}
    options["layer_weights"] = _layer_weights(args.layer_weights)
    options["content_layers"] = tuple(args.content_layers)
    options["style_layers"] = tuple(args.style_layers)
    if options["style_weights"] is not None:
        options["style_weights"] = tuple(options["style_weights"])
    return options


class _Bars:
    """One tqdm bar per pyramid scale (none with ``--quiet`` or when stderr is not a terminal)."""

    def __init__(self, quiet: bool, label: str) -> None:
        self.quiet, self.label = quiet, label
        self.bar: tqdm[NoReturn] | None = None

    def __call__(self, p) -> None:
        if self.quiet:
            return
        if p.step == 1:
            self.close()
            self.bar = tqdm(
                total=p.steps,
                unit="step",
                dynamic_ncols=True,
                disable=None,
                desc=f"{self.label}scale {p.scale + 1}/{p.scales} {p.size[1]}x{p.size[0]}",
            )
        assert self.bar is not None, "made at step 1 of each scale, the first progress of a scale"
        self.bar.set_postfix(loss=f"{p.losses['total']:.4g}", mem=f"{p.peak_memory / 2**20:.0f}MiB", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _check(args, options: dict) -> None:
    """Every argument, before any image is read or weights are loaded."""
    if args.vgg is not None and args.weights is not None:
        raise InputError("--vgg and --weights: give only one (the encoder comes from either)")
    if args.masks is not None and len(args.masks) != len(args.style):
        raise InputError(f"masks: {len(args.masks)} masks for {len(args.style)} style images; give one per style")
    if args.mask is not None and args.masks is not None:
        raise InputError("mask: give --mask (two styles) or --masks (one per style), not both")
    GatysOptions(**options)  # checks every option (sizes, layers, dtype, init, ...)


def _run(args) -> int:
    options = _options(args)
    _check(args, options)
    combine = args.style_weights is not None or args.mask is not None or args.masks is not None
    init = [args.init] if args.init not in ("content", "noise") else []
    plan = plan_pairs(args, combine=combine, inputs=[*(args.masks or []), *init, args.vgg])
    if not plan.pending:  # every output exists: nothing to compute, no weights to load
        return run_pairs(plan, None, None, bar=False)
    model = _load_model(args)

    def prepare(style):  # read once per style, not once per content
        images = [read_image(path) for path in style.sources]
        return images if len(images) > 1 else images[0]

    def render(content, style, styles):
        bars = _Bars(args.quiet, f"{content.name} x {style.label}: " if plan.total > 1 else "")
        try:
            return gatys(str(content), styles, model=model, callback=bars, **options)
        finally:
            bars.close()

    return run_pairs(plan, prepare, render, bar=False)
