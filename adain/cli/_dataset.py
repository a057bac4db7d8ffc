"""``adain stylize-dataset``: stylize a whole dataset with one style per image, resumably and in shards.

The flags map one to one onto ``adain.datasets.stylize_dataset`` and ``DatasetConfig`` (defaults read from
their signatures); ``--preset`` starts from a named configuration, and the size, alpha and format flags given
with it change it. Exit status: 0 every image of this shard done, 1 some skipped (each with its reason in the
manifest) or an error, 2 a usage error (a changed configuration on an existing output folder included).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from tqdm import tqdm

from .._atomic import check_writable
from .._io import DEFAULT_MAX_PIXELS
from ..datasets import PRESETS, DatasetConfig, DatasetProgress, stylize_dataset
from ..datasets._config import FORMATS, LAYOUTS
from ._common import HelpFormatter, add_metadata, add_shared, load_model, parse_quality, parse_size, signature_defaults

# Flags that set DatasetConfig fields: they are None unless given, so that a preset keeps its own values.
_CONFIG_FLAGS = (
    "metadata",
    "seed",
    "alpha",
    "content_size",
    "content_crop",
    "style_size",
    "style_crop",
    "format",
    "quality",
    "layout",
    "samples_per_shard",
)


def register(subparsers) -> None:
    d = signature_defaults(stylize_dataset)
    p = subparsers.add_parser(
        "stylize-dataset",
        help="stylize a whole dataset, one style per image (resumable, sharded)",
        description="Stylize every image below CONTENT_ROOT with one style from STYLE_ROOT, chosen from the seed "
        "and the image's relative path; the class folders are mirrored in OUT (or written as WebDataset tar "
        "shards), with manifest.jsonl listing every image as done or skipped. Rerun the same command to resume.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("content_root", metavar="CONTENT_ROOT", help="folder of content images (searched recursively)")
    p.add_argument("style_root", metavar="STYLE_ROOT", help="folder of style images")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder (new, empty, or this dataset's)")
    p.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        help="start from a named configuration, e.g. "
        "stylized-imagenet: 256 then centre 224, style square 224, alpha 1, PNG",
    )
    _add_config_flags(p)
    p.add_argument(
        "--shard-index",
        type=int,
        default=d["shard_index"],
        metavar="I",
        help="this job's shard, 0 <= I < --num-shards (e.g. $SLURM_ARRAY_TASK_ID); under torchrun "
        "each shard is split again over the ranks",
    )
    p.add_argument("--num-shards", type=int, default=d["num_shards"], metavar="N", help="how many shards")
    p.add_argument(
        "--batch-size",
        type=int,
        default=d["batch_size"],
        metavar="N",
        help="images per loader batch (outputs do not depend on it)",
    )
    p.add_argument(
        "--workers", type=int, default=d["workers"], metavar="N", help="DataLoader processes decoding images"
    )
    p.add_argument(
        "--writer-threads",
        type=int,
        default=d["writer_threads"],
        metavar="N",
        help="threads encoding and writing outputs",
    )
    p.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help="refuse image files with more pixels (decompression bombs)",
    )
    add_shared(
        p,
        {"device": None, "dtype": None, "max_memory": None},
        only=("--weights", "--device", "--dtype", "--max-memory"),
    )
    p.set_defaults(func=run)


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    """The flags of ``DatasetConfig``'s fields (``None`` unless given, so that a preset keeps its values)."""
    c = {f.name: f.default for f in dataclasses.fields(DatasetConfig)}
    p.add_argument("--seed", type=int, help=f"chooses each image's style (default: {c['seed']})")
    p.add_argument("--alpha", type=float, help=f"style strength in [0, 1] (default: {c['alpha']})")
    p.add_argument(
        "--content-size",
        type=parse_size,
        metavar="N",
        default=argparse.SUPPRESS,
        help="resize the content's shorter side to N; 0 or 'none' keeps the original size (default: keep)",
    )
    p.add_argument(
        "--content-crop",
        type=parse_size,
        metavar="N",
        default=argparse.SUPPRESS,
        help="then keep the centre N x N square; 0 or 'none': no crop (default: none)",
    )
    p.add_argument(
        "--style-size",
        type=parse_size,
        metavar="N",
        default=argparse.SUPPRESS,
        help=f"resize each style's shorter side to N (default: {c['style_size']})",
    )
    p.add_argument("--style-crop", action="store_true", default=None, help="take each style's centre square")
    p.add_argument("--format", choices=tuple(FORMATS), help=f"output format (default: {c['format']})")
    p.add_argument("--quality", type=parse_quality, metavar="N", help=f"JPEG/WebP quality (default: {c['quality']})")
    add_metadata(p)
    p.add_argument(
        "--layout",
        choices=LAYOUTS,
        help=f"tree: mirrored folders; webdataset: tar shards and shards.json (default: {c['layout']})",
    )
    p.add_argument(
        "--samples-per-shard", type=int, metavar="N", help=f"images per tar (default: {c['samples_per_shard']})"
    )


def config_from(args) -> DatasetConfig:
    """The ``DatasetConfig`` of the flags: the preset's (or the defaults), changed by the flags given."""
    changes = {name: getattr(args, name) for name in _CONFIG_FLAGS if getattr(args, name, None) is not None}
    for name in ("content_size", "content_crop", "style_size"):  # 'none' (None) given explicitly is a change
        if name in vars(args):
            changes[name] = getattr(args, name)
    if args.preset is not None:
        return DatasetConfig.from_preset(args.preset, **changes)
    return DatasetConfig(**changes)


def run(args) -> int:
    config = config_from(args)
    check_writable(Path(args.output), "-o")  # before the weights load
    bar = tqdm(unit="img", dynamic_ncols=True, disable=None, file=sys.stderr, desc="stylize-dataset")

    def progress(p: DatasetProgress) -> None:
        bar.total = p.total
        bar.update(p.done + p.skipped - bar.n)

    try:
        result = stylize_dataset(
            args.content_root,
            args.style_root,
            args.output,
            config=config,
            model=load_model(args.weights),
            shard_index=args.shard_index,
            num_shards=args.num_shards,
            device=args.device,
            dtype=args.dtype,
            max_memory=args.max_memory,
            batch_size=args.batch_size,
            workers=args.workers,
            writer_threads=args.writer_threads,
            max_pixels=args.max_pixels,
            callback=progress,
        )
    finally:
        bar.close()
    for key, reason in {**result.styles_skipped, **result.skipped}.items():
        print(f"adain: skipped {key}: {reason}", file=sys.stderr)
    where = result.manifest if result.manifest is not None else "written by the last shard to finish"
    print(
        f"shard {result.shard_index + 1}/{result.num_shards}: {result.computed} stylized, {result.reused} already "
        f"done, {len(result.skipped)} skipped; manifest: {where}",
        file=sys.stderr,
    )
    return 1 if result.skipped else 0
