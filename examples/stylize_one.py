"""Stylize one picture in one call: ``adain.stylize``.

    python examples/stylize_one.py photo.jpg starry_night.jpg -o photo_starry.png --alpha 0.8

Without ``--weights`` the default weights are downloaded once (``adain.load_pretrained()``).
"""

from __future__ import annotations

import argparse
import sys

import adain


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Stylize one picture with AdaIN.")
    parser.add_argument("content", help="the photo (any image file)")
    parser.add_argument("style", nargs="+", help="one style image, or several to blend")
    parser.add_argument("-o", "--output", required=True, help="the picture to write (.png, .jpg, ...)")
    parser.add_argument("--alpha", type=float, default=0.8, help="style strength in [0, 1] (default 0.8)")
    parser.add_argument(
        "--size",
        type=int,
        default=512,
        help="shorter side of content and style in pixels (default 512; 0 keeps the sizes)",
    )
    parser.add_argument("--preserve-color", choices=["coral", "luminance"], help="keep the photo's colours")
    parser.add_argument("--weights", help="anything adain.load_pretrained takes (default: the default weights)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: CUDA when available)")
    args = parser.parse_args(argv)

    size = args.size or None
    model = adain.load_pretrained(args.weights) if args.weights else adain.load_pretrained()
    picture = adain.stylize(
        args.content,
        args.style,
        alpha=args.alpha,
        model=model,
        content_size=size,
        style_size=size,
        preserve_color=args.preserve_color,
        device=args.device,
    )
    picture.save(args.output)
    print(f"{args.output}: {picture.width}x{picture.height}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
