"""``adain video INPUT STYLE [STYLE ...] -o OUTPUT``: stylize a video or a folder of frames, with a progress bar.

Defaults come from the signature of ``adain.stylize_video``; the flags it shares with ``adain stylize``
(``--weights``, ``--style-weights``, ``--preserve-color``, ``--style-size``, ``--device``, ``--dtype``,
``--max-memory``) from ``common``. Several STYLE files are blended into one style. Ctrl-C or SIGTERM
stops at the end of the batch (``_signals``; the library's callback stops the run): the output is closed
properly and one line says how many frames it holds (exit status 130).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from .._arguments import check_alpha
from .._atomic import check_output, check_writable
from ..video import VideoInterrupted, VideoProgress, stylize_video
from . import EXIT_INTERRUPTED
from ._common import HelpFormatter, add_backend, add_shared, load_model, signature_defaults
from ._signals import StopRequests

_NOTES = {"--style-weights": "here several STYLE files are always blended, equally without this flag"}
_SHARED = ("--weights", "--style-weights", "--preserve-color", "--style-size", "--device", "--dtype", "--max-memory")


def register(subparsers) -> None:
    d = signature_defaults(stylize_video)
    p = subparsers.add_parser(
        "video", help="stylize a video (or a folder of frames) with AdaIN",
        description="Stylize every frame of INPUT with STYLE (several STYLE files are blended into one style). "
                    "A video keeps its frame rate, timestamps, size, rotation and audio.",
        formatter_class=HelpFormatter,
    )  # fmt: skip
    p.add_argument("input", metavar="INPUT", help="a video file (anything FFmpeg reads) or a folder of frames")
    p.add_argument("style", metavar="STYLE", nargs="+", help="style image(s)")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUTPUT",
        help="a .mp4, .m4v, .mov or .mkv file (H.264), or a folder for frame_000001.png, ...",
    )
    p.add_argument("--alpha", type=float, default=d["alpha"], help="style strength in [0, 1]")
    add_shared(p, d, only=_SHARED, notes=_NOTES)
    p.add_argument(
        "--smoothing",
        type=float,
        default=d["smoothing"],
        metavar="DECAY",
        help="moving average of the content statistics over frames (less flicker); 0 turns it off",
    )
    p.add_argument(
        "--cut-threshold",
        type=float,
        default=d["cut_threshold"],
        metavar="T",
        help="restart the average at scene cuts: where the colour histograms of consecutive frames differ by "
        "more than T (0 = same colours, 1 = none in common)",
    )
    p.add_argument("--fps", type=float, default=d["fps"], help="frame rate of a folder of frames (default: 25)")
    p.add_argument("--crf", type=int, default=d["crf"], help="H.264 quality, 0 (lossless) to 51; lower is better")
    p.add_argument(
        "--audio",
        action=argparse.BooleanOptionalAction,
        default=d["audio"],
        help="copy the input's audio streams unchanged",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument(
        "--batch-size",
        type=int,
        default=d["batch_size"],
        metavar="N",
        help="frames per batch (default: as many as the memory budget allows)",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        default=d["compile"],
        help="torch.compile the networks: a minute or more once, then faster frames (mostly on a GPU)",
    )
    add_backend(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    check_alpha(args.alpha)
    # The output's folder (a video file or a folder of frames is renamed into it), before any weights load.
    check_writable(Path(args.output).absolute().parent, "output")
    if args.weights is not None:  # the library checks the output too, but after the model given to it is loaded
        check_output(args.output, overwrite=args.overwrite, inputs=[args.input, *args.style])
    # The default model is loaded inside stylize_video, after the input and output are checked.
    model = load_model(args.weights) if args.weights is not None else None
    bar = None if args.quiet else tqdm(unit="frame", dynamic_ncols=True, disable=None, file=sys.stderr)
    total = None

    def progress(p: VideoProgress) -> bool:
        nonlocal total
        total = p.total
        if bar is not None:
            bar.total = p.total
            bar.update(p.frames - bar.n)
        return stop.requested

    try:
        with StopRequests() as stop:
            result = stylize_video(
                args.input, args.style if len(args.style) > 1 else args.style[0], args.output, alpha=args.alpha,
                model=model, style_size=args.style_size, style_weights=args.style_weights,
                preserve_color=args.preserve_color, smoothing=args.smoothing, cut_threshold=args.cut_threshold,
                fps=args.fps, crf=args.crf, audio=args.audio, overwrite=args.overwrite, device=args.device,
                dtype=args.dtype, max_memory=args.max_memory, batch_size=args.batch_size, callback=progress,
                compile=args.compile, backend=args.backend,
            )  # fmt: skip
        # Stopped by a signal: the same line as an interrupt, from the library's own wording.
        interrupted = VideoInterrupted(result.frames, total, result.output) if result.stopped else None
    except VideoInterrupted as exc:  # a second Ctrl-C (KeyboardInterrupt): the library closed the output too
        interrupted = exc
    finally:
        if bar is not None:
            bar.close()
    if interrupted is not None:
        print(f"adain: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0
