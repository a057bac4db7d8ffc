"""``adain stylize``: stylize files or whole folders from the command line.

Defaults come from the signature of ``adain.stylize`` (one source of truth). A single content and a
single style (or a blend of styles) with ``-o file.ext`` writes that file; otherwise ``-o`` is a
directory and every content x style pair is written as ``<content>_stylized_<style>.<ext>``, mirroring
the content folder's sub-folders. An unreadable content file is reported and skipped; the exit code
says whether everything succeeded.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .. import io
from ..arguments import check_alpha
from ..errors import AdaINError, InputError
from ..model import load_pretrained
from ..stylizer import Stylizer, stylize

__all__ = ["register"]


def _defaults() -> dict:
    return {
        name: p.default for name, p in inspect.signature(stylize).parameters.items() if p.default is not p.empty
    }


def _size(text: str) -> int | None:
    if text.lower() in ("0", "none"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, 0 or 'none', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, 0 or 'none', got {text!r}")
    return value


def _weights(text: str) -> list[float]:
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 1,2, got {text!r}") from None


def _show(value) -> str:
    return "keep" if value is None else str(value)


def register(subparsers) -> None:
    d = _defaults()
    p = subparsers.add_parser(
        "stylize",
        help="stylize images with AdaIN",
        description="Stylize CONTENT (a file or a folder) with each STYLE (files or folders).",
    )
    p.add_argument("content", metavar="CONTENT", help="content image or folder (searched recursively)")
    p.add_argument("style", metavar="STYLE", nargs="+", help="style image(s) or folder(s)")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output file (one content, one style or blend) or folder")
    p.add_argument("--alpha", type=float, default=d["alpha"], help=f"style strength in [0, 1] (default {d['alpha']})")
    p.add_argument("--content-size", type=_size, default=d["content_size"], metavar="N",
                   help=f"resize content so its shorter side is N; 0 or 'none' keeps it (default {_show(d['content_size'])})")
    p.add_argument("--style-size", type=_size, default=d["style_size"], metavar="N",
                   help=f"resize styles so their shorter side is N; 0 or 'none' keeps it (default {_show(d['style_size'])})")
    p.add_argument("--crop", action="store_true", default=d["crop"], help="centre square crop of content and style")
    p.add_argument("--preserve-color", nargs="?", const="coral", default=d["preserve_color"],
                   choices=("coral", "luminance"), help="keep the content's colours (default mode: coral)")
    p.add_argument("--style-weights", type=_weights, default=d["style_weights"], metavar="W,W",
                   help="blend the STYLE files with these weights into one style")
    p.add_argument("--mask", default=d["mask"], metavar="M",
                   help="mask image: first STYLE where it is white, second where black")
    p.add_argument("--weights", default=None, metavar="NAME_OR_PATH",
                   help="model weights: a directory written by save_pretrained, or a name (default: the default model)")
    p.add_argument("--device", default=d["device"], help="cpu, cuda, cuda:1... (default: CUDA when available)")
    p.add_argument("--dtype", default=d["dtype"], choices=("float32", "bfloat16", "float16"),
                   help="compute dtype (default float32)")
    p.add_argument("--ext", default=None, help="output extension in folder mode (default: the content's)")
    p.set_defaults(func=run)  # fmt: skip


@dataclass
class _Style:
    label: str  # goes into output names
    sources: list[Path]  # one file, or several blended


def _styles(args) -> list[_Style]:
    if args.style_weights is not None or args.mask is not None:
        files = [Path(s) for s in args.style]
        return [_Style("+".join(f.stem for f in files), files)]
    styles = []
    for entry in map(Path, args.style):
        root = entry if entry.is_dir() else entry.parent
        for f in io.list_images(entry):
            label = "_".join(f.relative_to(root).with_suffix("").parts)
            styles.append(_Style(label, [f]))
    return styles


def run(args) -> int:
    check_alpha(args.alpha)
    content_root = Path(args.content)
    contents = io.list_images(content_root)
    styles = _styles(args)
    if not contents or not styles:
        raise InputError(f"no images found in {content_root if not contents else ' '.join(args.style)}")
    out = Path(args.output)
    single = len(contents) == 1 and len(styles) == 1 and content_root.is_file()
    to_file = single and out.suffix.lower() in io.IMAGE_EXTENSIONS
    if not to_file and (out.is_file() or (out.suffix.lower() in io.IMAGE_EXTENSIONS and not out.is_dir())):
        raise InputError(
            f"{out}: {len(contents) * len(styles)} content x style pairs need an output directory, not a file"
        )

    model = load_pretrained(args.weights) if args.weights is not None else load_pretrained()
    stylizer = Stylizer(model, args.device, args.dtype)
    failures = 0
    progress = _progress(len(contents) * len(styles))
    for style in styles:
        try:
            stylizer.set_style(
                [str(s) for s in style.sources] if len(style.sources) > 1 else str(style.sources[0]),
                style_size=args.style_size, crop=args.crop, style_weights=args.style_weights, mask=args.mask,
                preserve_color=args.preserve_color or False,
            )  # fmt: skip
        except AdaINError as exc:
            if single:
                raise
            failures += 1
            _report(exc)
            progress.update(len(contents))
            continue
        for content in contents:
            target = out if to_file else _output_path(out, content_root, content, style.label, args.ext)
            try:
                io.save_image(stylizer(str(content), args.alpha, content_size=args.content_size, crop=args.crop), target)
            except AdaINError as exc:
                if single:
                    raise
                failures += 1
                _report(exc)
            progress.update(1)
    progress.close()
    if failures:
        print(f"adain: {failures} of {len(contents) * len(styles)} outputs failed", file=sys.stderr)
        return 1
    return 0


def _output_path(out: Path, root: Path, content: Path, style_label: str, ext: str | None) -> Path:
    relative = content.relative_to(root).parent if root.is_dir() else Path()
    suffix = ext if ext is None or ext.startswith(".") else f".{ext}"
    return out / relative / f"{content.stem}_stylized_{style_label}{(suffix or content.suffix).lower()}"


def _report(exc: BaseException) -> None:
    print(f"adain: error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)


def _progress(total: int):
    # disable=None: a bar on a terminal, nothing when stderr is a pipe or a file.
    return tqdm(total=total, unit="image", disable=None if total > 1 else True, file=sys.stderr)
