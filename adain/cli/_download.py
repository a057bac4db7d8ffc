"""``adain download``: fetch, verify and convert pretrained weights now (e.g. before going offline).

adain download                 # the default weights
adain download user/my-decoder --revision <commit>
adain download --list
"""

from __future__ import annotations

import inspect
import sys

from tqdm import tqdm

from .._atomic import check_writable
from ..model import load_pretrained
from ..weights._cache import cache_root
from ..weights._resolve import list_pretrained, pretrained_info


def register(subparsers) -> None:
    defaults = inspect.signature(load_pretrained).parameters
    parser = subparsers.add_parser(
        "download",
        help="download, verify and cache pretrained weights",
        description="Fetch weights into the cache so later loads (and HF_HUB_OFFLINE=1) need no network.",
    )
    parser.add_argument(
        "name", nargs="?", default=defaults["name"].default, help="registered name, Hub repo id or folder"
    )
    parser.add_argument("--revision", default=defaults["revision"].default, help="Hub branch, tag or commit")
    parser.add_argument(
        "--cache-dir",
        default=defaults["cache_dir"].default,
        help="cache root (default: $ADAIN_CACHE, else $XDG_CACHE_HOME/adain or ~/.cache/adain)",
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="list the registered names, each with its sources in the order tried, and exit",
    )
    parser.set_defaults(func=_run)


class _Bars:
    """One tqdm bar per file, fed by the library's progress callback."""

    def __init__(self) -> None:
        self.bars: dict = {}

    def __call__(self, report) -> None:
        bar = self.bars.get(report.filename)
        if bar is None:
            bar = self.bars[report.filename] = tqdm(
                total=report.total_bytes, desc=report.filename, unit="B", unit_scale=True, file=sys.stderr, leave=False
            )
        bar.update(report.done_bytes - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _run(args) -> int:
    if args.list:
        for name in list_pretrained():
            info = pretrained_info(name)
            print(f"{name}\t{info.license}\t{info.description}")
            for number, source in enumerate(info.sources, 1):  # in the order they are tried
                print(f"  {number}. {source.describe()}")
        return 0

    # The cache must take the files before anything is fetched (not only after a long download).
    check_writable(cache_root(args.cache_dir), "cache_dir")
    bars = _Bars()
    try:  # a failure goes to adain.cli.main: the message's few lines, every source's error with --debug
        model = load_pretrained(args.name, revision=args.revision, cache_dir=args.cache_dir, progress=bars)
    finally:
        bars.close()
    print(f"ok: {args.name} ({model.config.description or 'adain model'})", file=sys.stderr)
    return 0
