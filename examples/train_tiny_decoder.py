"""Train a decoder for a few steps on two folders of images: ``adain.training.train``.

    python examples/train_tiny_decoder.py --content-dir photos/ --style-dir paintings/ --out runs/tiny

The defaults are tiny (50 steps of 2 pairs at 64 px) so that it runs in about a minute on a CPU; a real
decoder takes the paper's 160k steps (``adain train``, ``TrainConfig()``'s defaults). ``--vgg`` is the
encoder: a named weight, a folder written by ``save_pretrained``, or the reference port's
``vgg_normalised.pth``. The run directory ends with ``final/``, which ``adain.load_pretrained`` reads.
"""

from __future__ import annotations

import argparse
import sys

import adain
from adain.training import TrainConfig, train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train a tiny AdaIN decoder.")
    parser.add_argument("--content-dir", required=True, help="folder of content images (searched recursively)")
    parser.add_argument("--style-dir", required=True, help="folder of style images (searched recursively)")
    parser.add_argument("--out", required=True, help="the run directory (checkpoints, log.csv, final/)")
    parser.add_argument("--vgg", default="default", help="encoder weights (default: the default weights)")
    parser.add_argument("--steps", type=int, default=50, help="optimisation steps (default 50)")
    parser.add_argument("--batch-size", type=int, default=2, help="image pairs per step (default 2)")
    parser.add_argument("--image-size", type=int, default=64, help="shorter side after resizing (default 64)")
    parser.add_argument("--crop-size", type=int, default=64, help="random square crop, a multiple of 8 (default 64)")
    parser.add_argument("--device", default="auto", help='"auto" (CUDA when available), "cpu", "cuda", ...')
    args = parser.parse_args(argv)

    config = TrainConfig(
        content_dir=args.content_dir,
        style_dir=args.style_dir,
        vgg=args.vgg,
        out=args.out,
        max_iter=args.steps,
        batch_size=args.batch_size,
        image_size=args.image_size,
        crop_size=args.crop_size,
        min_image_side=min(64, args.crop_size),
        save_every=args.steps,
        sample_every=0,
        log_every=1,
        workers=0,
        device=args.device,
    )
    final = train(config)
    model = adain.load_pretrained(final)
    print(f"{final}: a decoder trained for {args.steps} steps ({type(model).__name__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
