"""``adain train`` (also ``python -m train``): flags and TOML config -> ``adain.training.train``.

Every flag is derived from a ``TrainConfig`` field, so defaults live only there. Precedence: the
defaults, then the checkpoint's config when resuming, then ``--config FILE.toml``, then flags.
This module owns the progress bar and the messages; the engine only reports events.
"""

from __future__ import annotations

import argparse
import os
import sys
import typing
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..errors import AdaINError, InputError
from ..training.config import TrainConfig, config_from, read_toml, recipe_names
from ..training.loop import Interrupted, find_resume_state, train

__all__ = ["register", "add_arguments", "run", "main"]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per ``TrainConfig`` field (defaults suppressed, so only given flags override)."""
    hints = typing.get_type_hints(TrainConfig)
    parser.add_argument("--config", metavar="RECIPE", help=f"read options from a recipe ({', '.join(recipe_names())}) "
                        "or a TOML file; flags override it")
    for f in fields(TrainConfig):
        default = f.default if f.default is not MISSING else None
        kind = hints[f.name]
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = f.metadata.get("help", "") + (f" (default: {shown})" if default not in ("", None) else "")
        if kind is bool:
            parser.add_argument(_flag(f.name), action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                                help=help_text)
        elif f.name == "style_layer_weights":
            parser.add_argument(_flag(f.name), type=_floats, default=argparse.SUPPRESS, metavar="W1,W2,W3,W4",
                                help=help_text)
        else:
            parser.add_argument(_flag(f.name), type=kind, default=argparse.SUPPRESS, help=help_text)


def register(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train a decoder on folders of content and style images",
                                   description="Train an AdaIN decoder. See README: Training a decoder.")
    add_arguments(parser)
    parser.set_defaults(func=run)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = {f.name for f in fields(TrainConfig)}
    values = read_toml(args.config) if getattr(args, "config", None) else {}
    values.update({k: v for k, v in vars(args).items() if k in names})
    return values


def run(args: argparse.Namespace) -> int:
    """Train as ``args`` say; the exit code is 0 when done, 130 when interrupted (checkpoint saved)."""
    overrides = _overrides(args)
    base = TrainConfig()
    out = Path(overrides.get("out", base.out))
    state = None

    def warn(message: str) -> None:
        tqdm.write(f"adain train: {message}", file=sys.stderr)

    if overrides.get("resume"):
        state = find_resume_state(out, lambda path, reason: warn(f"checkpoint {path} is unusable ({reason}); "
                                                                  "trying the previous one"))
        if state is None:
            warn(f"no valid checkpoint in {out}; starting a new run")
        else:
            base = config_from(base, {k: v for k, v in state["config"].items() if k != "resume"})
    elif (out / "checkpoints").is_dir() and any((out / "checkpoints").glob("step-*.pt")):
        raise InputError(f"{out} already holds checkpoints of a run: pass --resume to continue it, or another --out")
    config = config_from(base, overrides)

    bar = None

    def on_event(event: str, info: dict) -> None:
        nonlocal bar
        if event == "start":
            bar = tqdm(total=info["max_iter"], initial=info["start_step"], unit="step", dynamic_ncols=True,
                       disable=None)
            warn(f"{info['content_images']} content and {info['style_images']} style images; device "
                 f"{info['device']} x{info['world_size']}, {info['autocast']}; starting at step {info['start_step']}")
        elif event == "step" and bar is not None:
            bar.update(1)
        elif event == "log" and bar is not None:
            bar.set_postfix(loss=f"{info['loss']:.3g}", content=f"{info['content']:.3g}",
                            style=f"{info['style']:.3g}", img_s=f"{info['images_per_s']:.1f}", refresh=False)
        elif event == "bad_image":
            warn(f"skipped {info['message']}")
        elif event == "done":
            warn(f"done: final model in {info['final']} (skipped {info['nonfinite_skipped']} non-finite steps, "
                 f"{info['bad_images']} bad images)")

    rank = int(os.environ.get("RANK", "0"))
    try:
        train(config, on_event if rank == 0 else None, resume_state=state)
    except Interrupted as exc:
        warn(str(exc))
        return 130
    finally:
        if bar is not None:
            bar.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m train``): errors become one line on stderr and exit code 1."""
    parser = argparse.ArgumentParser(prog="python -m train", description="Train an AdaIN decoder.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    add_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except (AdaINError, OSError, ValueError, RuntimeError) as exc:
        if args.debug:
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"adain train: error: {message}", file=sys.stderr)
        return 1
