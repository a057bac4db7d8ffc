"""Which images a dataset has, which style each gets, where each output goes and which shard does it: all
decided from the sorted relative paths, the seed and the shard count, never from a process, worker or batch."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .._io import list_images
from ..errors import InputError
from ._config import DatasetConfig


def style_index(seed: int, key: str, count: int) -> int:
    """The style of the content image ``key`` (its path relative to the content root, with ``/``): an index in
    ``[0, count)`` from the first 8 bytes of ``sha256(f"{seed}:{key}")``, so that it depends on the seed and
    the path only (the modulo bias, below ``count / 2**64``, is negligible).

    Arguments:
        seed: the dataset's seed (any integer).
        key: the relative path, e.g. ``"n01440764/n01440764_10026.JPEG"``.
        count: the number of styles (at least 1).

    Returns:
        The index of the style in the style bank's sorted keys.
    """
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True)
class Item:
    """One content image of the dataset.

    Attributes:
        position: its index in the sorted content keys.
        key: its path relative to the content root, with ``/``.
        path: the file.
        output: the output's path relative to the output folder (``"tree"``), or its WebDataset sample key.
        style: the index of its style in the bank.
    """

    position: int
    key: str
    path: Path
    output: str
    style: int


def relative_key(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` with ``/`` separators (the root itself when it is a file: its name)."""
    return path.name if path == root else PurePosixPath(*path.relative_to(root).parts).as_posix()


def list_contents(root: Path, output: Path) -> list[tuple[str, Path]]:
    """``(key, path)`` of every image below ``root`` (the output folder left out), sorted by key.

    Raises:
        ImageReadError: ``root`` does not exist.
    """
    files = list_images(root, exclude=[output])
    return sorted((relative_key(p, root), p) for p in files)


def output_name(key: str, config: DatasetConfig) -> str:
    """Where ``key``'s output goes: the same relative path with the format's extension (``"tree"``), or a
    WebDataset sample key (the path without its extension, the other dots of the file name made ``_``, since
    WebDataset splits a member's name at the first dot of its file name)."""
    path = PurePosixPath(key)
    if config.layout == "tree":
        return path.with_suffix(config.extension).as_posix()
    return path.with_name(path.stem.replace(".", "_")).as_posix()


def plan(contents: Sequence[tuple[str, Path]], config: DatasetConfig, styles: int) -> list[Item]:
    """Every content image as an ``Item``, in key order.

    Raises:
        InputError: two images would have the same output (``a.jpg`` and ``a.png`` in one folder).
    """
    items: list[Item] = []
    taken: dict[str, str] = {}
    for position, (key, path) in enumerate(contents):
        out = output_name(key, config)
        folded = os.path.normcase(out)
        if folded in taken:
            raise InputError(
                f"{path}: its output {out} would also be that of {taken[folded]}; rename one of the two files"
            )
        taken[folded] = key
        items.append(Item(position, key, path, out, style_index(config.seed, key, styles)))
    return items


def shard_of(item: Item, config: DatasetConfig, num_shards: int) -> int:
    """The shard (rank, array task) that computes ``item``: round robin over the images (``"tree"``) or over
    the tar files (``"webdataset"``, so that each tar is written by one shard)."""
    unit = item.position if config.layout == "tree" else tar_index(item, config)
    return unit % num_shards


def tar_index(item: Item, config: DatasetConfig) -> int:
    """The tar file ``item`` goes into: images in key order, ``samples_per_shard`` per tar."""
    return item.position // config.samples_per_shard


def tar_name(index: int) -> str:
    """The file name of tar number ``index``: ``shard-000000.tar``."""
    return f"shard-{index:06d}.tar"


def check_shard(shard_index: int, num_shards: int) -> None:
    """``InputError`` unless ``0 <= shard_index < num_shards``."""
    for value, name in ((num_shards, "num_shards"), (shard_index, "shard_index")):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{name}: expected an integer, got {value!r}")
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise InputError(
            f"shard_index: expected 0 <= shard_index < num_shards, got shard_index={shard_index}, "
            f"num_shards={num_shards}"
        )
