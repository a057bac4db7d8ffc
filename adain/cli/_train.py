"""``adain train`` (also ``python -m train``): flags and TOML config -> ``adain.training.train``.

Every flag is derived from a ``TrainConfig`` field, so defaults live only there. Precedence: the
defaults, then the checkpoint's config when resuming, then ``--config FILE.toml``, then flags.
``--check-data`` reads every image of both folders once and lists the bad ones instead of training.
The run directory is locked before its checkpoints are read, so a second run on the same ``--out`` is
refused at once. This module owns the progress bar and the messages; the engine only reports events.
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
from ..training._badfiles import FolderCheck, check_folder
from ..training._config import TrainConfig, config_from, read_toml, recipe_names
from ..training._lock import lock_run_dir
from ..training._loop import Interrupted, find_resume_state, train


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
    parser.add_argument("--check-data", action="store_true", default=False,
                        help="do not train: read every image of --content-dir and --style-dir once, list the "
                             "unreadable or too small ones and exit 0 if there are none, 1 otherwise")
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


def _warn(message: str) -> None:
    tqdm.write(f"adain train: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Train as ``args`` say; the exit code is 0 when done, 130 when interrupted (checkpoint saved).

    With ``--check-data``: check the folders instead (0 when every image is usable, 1 otherwise).
    """
    overrides = _overrides(args)
    if getattr(args, "check_data", False):
        return _check_data(config_from(TrainConfig(), overrides).validate())
    out = Path(overrides.get("out", TrainConfig().out))
    with lock_run_dir(out):  # before the checkpoints are read: a second run on this --out stops here
        config, state = _resolve(overrides, out)
        return _train(config, state)


def _resolve(overrides: dict[str, Any], out: Path) -> tuple[TrainConfig, dict | None]:
    """The run's config and, with ``--resume``, the newest valid checkpoint to continue from."""
    base, state = TrainConfig(), None
    if overrides.get("resume"):
        state = find_resume_state(out, lambda path, reason: _warn(f"checkpoint {path} is unusable ({reason}); "
                                                                   "trying the previous one"))
        if state is None:
            _warn(f"no valid checkpoint in {out}; starting a new run")
        else:
            base = config_from(base, {k: v for k, v in state["config"].items() if k != "resume"})
    elif (out / "checkpoints").is_dir() and any((out / "checkpoints").glob("step-*.pt")):
        raise InputError(f"{out} already holds checkpoints of a run: pass --resume to continue it, or another --out")
    return config_from(base, {**overrides, "out": str(out)}), state  # the directory locked and resumed


def _train(config: TrainConfig, state: dict | None) -> int:
    """``train`` with a progress bar and one line per event worth a line."""
    bar = None

    def on_event(event: str, info: dict) -> None:
        nonlocal bar
        if event == "start":
            bar = tqdm(total=info["max_iter"], initial=info["start_step"], unit="step", dynamic_ncols=True,
                       disable=None)
            _warn(f"{info['content_images']} content and {info['style_images']} style images; device "
                  f"{info['device']} x{info['world_size']}, {info['autocast']}; starting at step {info['start_step']}")
        elif event == "step" and bar is not None:
            bar.update(1)
        elif event == "log" and bar is not None:
            bar.set_postfix(loss=f"{info['loss']:.3g}", content=f"{info['content']:.3g}",
                            style=f"{info['style']:.3g}", img_s=f"{info['images_per_s']:.1f}", refresh=False)
        elif event == "bad_image":
            _warn(f"skipped {info['message']}")
        elif event == "done":
            if bar is not None:
                bar.close()
            _warn(f"done: final model in {info['final']} (skipped {info['nonfinite_skipped']} non-finite steps, "
                  f"{info['bad_images']} bad images)")
        elif event == "pushed":
            _warn(f"pushed to {info['repo']}: {info['url']}")

    rank = int(os.environ.get("RANK", "0"))
    try:
        train(config, on_event if rank == 0 else None, resume_state=state)
    except Interrupted as exc:
        _warn(str(exc))
        return 130
    finally:
        if bar is not None:
            bar.close()
    return 0


def _check_data(config: TrainConfig) -> int:
    """``--check-data``: one line per bad file of both folders (stdout), then a summary; 1 if any is bad."""
    checks = []
    for root in (config.content_dir, config.style_dir):
        with tqdm(desc=f"checking {root}", unit="img", dynamic_ncols=True, disable=None, leave=False) as bar:
            def progress(checked: int, total: int) -> None:
                bar.total = total
                bar.update(checked - bar.n)

            check = check_folder(root, min_side=config.min_image_side, fraction=config.max_bad_fraction,
                                 workers=config.workers, progress=progress)
        for message in check.bad:
            tqdm.write(message, file=sys.stdout)
        checks.append(check)
    print(_data_summary(checks))
    return 1 if any(check.bad for check in checks) else 0


def _data_summary(checks: list[FolderCheck]) -> str:
    """One line: how many files are bad in each folder, and whether a training run would stop."""
    if not any(check.bad for check in checks):
        return f"all {sum(c.total for c in checks)} images are usable (" + ", ".join(
            f"{c.total} in {c.root}" for c in checks) + ")"
    bad = sum(len(c.bad) for c in checks)
    line = f"{bad} bad file{'s' if bad != 1 else ''}: " + ", ".join(f"{len(c.bad)} of {c.total} in {c.root}"
                                                                     for c in checks)
    stops = [c.root for c in checks if c.stop_reason is not None]
    if stops:
        line += "; a run would stop on " + " and ".join(map(str, stops)) + " (too many bad files)"
    else:
        line += "; a run would skip them (listed in RUN_DIR/skipped.txt)"
    return line


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m train``): errors become one line on stderr and exit code 1."""
    parser = argparse.ArgumentParser(prog="python -m train", description="Train an AdaIN decoder.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    add_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("adain train: interrupted", file=sys.stderr)
        return 130
    except (AdaINError, OSError, ValueError, RuntimeError) as exc:
        if args.debug:
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"adain train: error: {message}", file=sys.stderr)
        return 1
