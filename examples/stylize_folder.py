"""Stylize every picture of a folder with one style, through one ``adain.Stylizer``.

    python examples/stylize_folder.py photos/ starry_night.jpg -o styled/ --alpha 0.8

The style is encoded once; each picture then costs one encoder and one decoder pass. Existing outputs
are left alone unless ``--overwrite``. (``adain stylize photos/ styles/ -o out/`` does the same and more:
several styles, sub-folders, unique names.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import adain

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Stylize a folder of pictures with one style.")
    parser.add_argument("folder", type=Path, help="the pictures to stylize (not searched recursively)")
    parser.add_argument("style", help="the style image")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the folder to write PNGs into")
    parser.add_argument("--alpha", type=float, default=0.8, help="style strength in [0, 1] (default 0.8)")
    parser.add_argument(
        "--size", type=int, default=512, help="shorter side of each picture in pixels (default 512; 0 keeps the sizes)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace outputs that exist")
    parser.add_argument("--weights", help="anything adain.load_pretrained takes (default: the default weights)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: CUDA when available)")
    args = parser.parse_args(argv)

    pictures = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not pictures:
        parser.error(f"{args.folder}: no pictures ({', '.join(sorted(IMAGE_SUFFIXES))})")
    model = adain.load_pretrained(args.weights) if args.weights else adain.load_pretrained()
    stylizer = adain.Stylizer(model, device=args.device).set_style(args.style, style_size=args.size or None)

    args.output.mkdir(parents=True, exist_ok=True)
    for picture in pictures:
        target = args.output / f"{picture.stem}.png"
        if target.exists() and not args.overwrite:
            print(f"{target}: exists, skipped (--overwrite replaces it)")
            continue
        stylizer(picture, args.alpha, content_size=args.size or None).save(target)
        print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
