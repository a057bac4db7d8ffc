"""``adain gatys CONTENT STYLE [STYLE ...] -o OUT``: optimisation-based style transfer with a progress bar.

Every option and its default comes from ``adain.gatys``'s signature, so the command line and the
library cannot disagree.
"""

from __future__ import annotations

import argparse
import inspect

from tqdm import tqdm

from ..errors import InputError
from ..io import save_image
from ..model import AdaINModel, load_pretrained
from ..optimization.api import gatys
from ..optimization.options import CHOICES, LAYER_WEIGHTINGS
from ..weights.legacy import read_legacy_vgg

__all__ = ["register"]

# Options not offered on the command line (Python objects) or given their own flags below.
_SPECIAL = {"content", "style", "model", "callback", "mask", "masks", "init", "layer_weights", "style_weights",
            "content_layers", "style_layers", "device", "dtype", "preserve_color"}
# Options whose default is None but which take a number on the command line.
_NUMERIC_NONE = {"coarse_iterations": int, "content_size": int, "style_size": int, "lr": float, "average_decay": float, "max_memory": int}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def register(subparsers) -> None:
    params = inspect.signature(gatys).parameters
    default = {name: p.default for name, p in params.items()}
    parser = subparsers.add_parser(
        "gatys", help="stylize by optimising the image (Gatys et al.; slow, reference quality)",
        description="Optimise an image so its VGG features match the content's and the style(s)' statistics.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("content", help="content image")
    parser.add_argument("styles", nargs="+", metavar="STYLE", help="style image(s)")
    parser.add_argument("-o", "--output", required=True, help="output image path (.png, .jpg, ...)")
    parser.add_argument("--vgg", default=None, help="use the encoder from a legacy vgg_normalised.pth instead of --model")
    parser.add_argument("--masks", nargs="+", default=None, help="one region mask per style (white = that style)")
    parser.add_argument("--init", default=default["init"], help="'content', 'noise' or an image path")
    parser.add_argument("--layer-weights", nargs="+", default=[default["layer_weights"]],
                        help=f"one of {', '.join(LAYER_WEIGHTINGS)}, or one number per style layer")
    parser.add_argument("--style-weights", nargs="+", type=float, default=default["style_weights"],
                        help="one blend weight per style")
    parser.add_argument("--mask", default=None, help="with two styles: the first where the mask is white, the second elsewhere")
    parser.add_argument("--content-layers", nargs="+", default=list(default["content_layers"]))
    parser.add_argument("--style-layers", nargs="+", default=list(default["style_layers"]))
    parser.add_argument("--device", default=default["device"], help="e.g. cpu, cuda, cuda:1 (default: CUDA if available)")
    parser.add_argument("--dtype", default=default["dtype"], choices=["float32", "bfloat16"],
                        help="encoder precision (default: bf16 on CUDA, float32 on CPU)")
    parser.add_argument("--preserve-color", default=default["preserve_color"],
                        choices=[c for c in CHOICES["preserve_color"] if c])
    parser.add_argument("--weights", default="default", help="model weights: a name, a directory or a Hub repo")
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
    parser.set_defaults(func=_run, _option_names=[n for n in default if n not in ("content", "style", "model", "callback")])


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


def _load_model(args):
    if args.vgg is not None:
        model = AdaINModel()
        model.encoder.load_state_dict(read_legacy_vgg(args.vgg))
        return model.eval()
    return load_pretrained(args.weights)


def _run(args) -> int:
    options = {name: getattr(args, name) for name in args._option_names}
    options["layer_weights"] = _layer_weights(args.layer_weights)
    options["content_layers"] = tuple(args.content_layers)
    options["style_layers"] = tuple(args.style_layers)
    if options["style_weights"] is not None:
        options["style_weights"] = tuple(options["style_weights"])
    model = _load_model(args)
    bar = None

    def progress(p) -> None:
        nonlocal bar
        if args.quiet:
            return
        if p.step == 1:  # one bar per pyramid scale
            if bar is not None:
                bar.close()
            bar = tqdm(total=p.steps, unit="step", dynamic_ncols=True,
                       desc=f"scale {p.scale + 1}/{p.scales} {p.size[1]}x{p.size[0]}")
        bar.set_postfix(loss=f"{p.losses['total']:.4g}", mem=f"{p.peak_memory / 2**20:.0f}MiB", refresh=False)
        bar.update(1)

    try:
        image = gatys(args.content, args.styles if len(args.styles) > 1 else args.styles[0],
                      model=model, callback=progress, **options)
    finally:
        if bar is not None:
            bar.close()
    save_image(image, args.output)
    return 0
