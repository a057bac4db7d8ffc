"""Stylize a video file (or a folder of frames) with one style: ``adain.stylize_video``.

    pip install -e ".[video]"     # PyAV, for video files
    python examples/stylize_video.py clip.mp4 starry_night.jpg -o clip_starry.mp4 --alpha 0.8

The audio, frame rate, timestamps, rotation and colour tags of the input are kept. ``--max-frames N``
stops after about N frames (the callback returns True after the batch that reaches N), which
still writes a playable video.
"""

from __future__ import annotations

import argparse
import sys

import adain


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Stylize a video with AdaIN.")
    parser.add_argument("input", help="a video file FFmpeg reads, or a folder of frames")
    parser.add_argument("style", help="the style image")
    parser.add_argument("-o", "--output", required=True, help=".mp4/.m4v/.mov/.mkv, or a folder for PNG frames")
    parser.add_argument("--alpha", type=float, default=0.8, help="style strength in [0, 1] (default 0.8)")
    parser.add_argument("--style-size", type=int, default=512, help="shorter side of the style (default 512)")
    parser.add_argument("--max-frames", type=int, help="stop after about this many frames")
    parser.add_argument("--batch-size", type=int, help="frames per batch (default: from the memory budget)")
    parser.add_argument("--overwrite", action="store_true", help="replace the output if it exists")
    parser.add_argument("--weights", help="anything adain.load_pretrained takes (default: the default weights)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: CUDA when available)")
    args = parser.parse_args(argv)

    def progress(p: adain.VideoProgress) -> bool:
        total = f"/{p.total}" if p.total else ""
        print(f"\r{p.frames}{total} frames, {p.fps:.2f} frames/s", end="", flush=True)
        return args.max_frames is not None and p.frames >= args.max_frames  # True stops the run

    model = adain.load_pretrained(args.weights) if args.weights else adain.load_pretrained()
    result = adain.stylize_video(
        args.input,
        args.style,
        args.output,
        alpha=args.alpha,
        model=model,
        style_size=args.style_size,
        overwrite=args.overwrite,
        device=args.device,
        batch_size=args.batch_size,
        callback=progress,
    )
    print(
        f"\n{result.output}: {result.frames} frames in {result.seconds:.1f} s"
        + (" (stopped early)" if result.stopped else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
