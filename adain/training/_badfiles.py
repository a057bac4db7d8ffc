"""Bad training images: what makes a file unusable, how many a run tolerates, and checking whole folders.

A file is bad when it cannot be decoded (empty, truncated, not an image, a decompression bomb) or its
shorter side is under ``min_image_side``. A run skips bad files as it meets them (``_data.ImageStream``)
and lists them in ``RUN_DIR/skipped.txt``; it stops only when a folder holds more bad files than
``bad_files_tolerated``: ``max_bad_fraction`` of the folder, but always at least ``MIN_TOLERATED`` and
never more than half the folder (a folder that is mostly not pictures is the wrong folder). ``check_folder``
reads every file of a folder once, without training (the command line's ``--check-data``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from .._io import IMAGE_EXTENSIONS, list_images, read_image
from ..errors import ImageReadError, InputError
from ._errors import Setting

MIN_TOLERATED = 3
"""Bad files a run always tolerates per folder, whatever ``max_bad_fraction`` says (up to half the folder)."""


def find_images(root: str | os.PathLike) -> tuple[list[Path], list[str]]:
    """The images below ``root`` (recursive, sorted) and one message per entry that could not be read.

    Raises ``InputError`` when ``root`` is not a folder or holds no image.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a directory of images")
    problems: list[str] = []
    # Entries list_images cannot read (a sub-folder it cannot list, a file without read permission) are
    # reported here, and from here into skipped.txt and check_folder, never dropped silently.
    paths = list_images(root, on_error=lambda path, reason: problems.append(f"{path}: cannot be read ({reason})"))
    if not paths:
        raise InputError(f"{root}: no images found (looked recursively for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return paths, problems


def open_usable(path: Path, min_side: int) -> Image.Image:
    """The picture at ``path`` as RGB; ``ImageReadError`` when it is unreadable or smaller than ``min_side``."""
    img = read_image(path)
    w, h = img.size
    if min(w, h) < min_side:
        raise ImageReadError(f"{path}: {w}x{h} is too small (shorter side under {min_side} px)")
    return img


def failure_message(path: Path, exc: Exception) -> str:
    """One line naming ``path`` and why it cannot be used (``exc`` raised while opening it)."""
    if isinstance(exc, ImageReadError):
        return str(exc)
    # A malformed file can fail deep in a decoder with any exception.
    return f"{path}: cannot read image ({type(exc).__name__}: {exc})"


def bad_files_tolerated(n: int, fraction: float) -> int:
    """How many of a folder's ``n`` images may be bad before a run stops: ``fraction * n`` (rounded down)
    but at least ``MIN_TOLERATED``, and never more than half of them."""
    return min(max(MIN_TOLERATED, int(fraction * n)), n // 2)


def count_under(root: Path, messages) -> int:
    """How many of ``messages`` (each starting with a path) name a file below ``root``."""
    prefix = str(root).rstrip(os.sep) + os.sep
    return sum(1 for m in messages if m.startswith(prefix))


def too_many_bad(root: Path, bad: int, n: int, fraction: float) -> tuple[str | Setting, ...] | None:
    """Why a run must stop when ``bad`` of the ``n`` images below ``root`` are bad, as the parts of a message
    (``adain.training._errors``); ``None``: it goes on."""
    tolerated = bad_files_tolerated(n, fraction)
    if bad <= tolerated:
        return None
    return (
        f"{root}: {bad} of {n} images are unreadable or too small, more than the {tolerated} a run tolerates (",
        Setting("max_bad_fraction", fraction),
        f", at least {MIN_TOLERATED}, at most half the folder); is it the right folder?",
    )


@dataclass
class FolderCheck:
    """What ``check_folder`` found: ``bad`` holds one message per unusable file (or unreadable entry)."""

    root: Path
    total: int
    fraction: float
    bad: list[str] = field(default_factory=list)

    @property
    def stop_reason(self) -> tuple[str | Setting, ...] | None:
        """Why a training run on this folder would stop, as message parts (``None``: it would train)."""
        return too_many_bad(self.root, len(self.bad), self.total, self.fraction)


class _Probe(torch.utils.data.Dataset):
    """Item ``i``: ``""`` when ``paths[i]`` is usable, else the message saying why not."""

    def __init__(self, paths: list[Path], min_side: int) -> None:
        self.paths, self.min_side = paths, min_side

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> str:
        path = self.paths[index]
        try:
            open_usable(path, self.min_side)
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 -- every failure makes the file bad, reported
            return failure_message(path, exc)
        return ""


def check_folder(
    root: str | os.PathLike,
    *,
    min_side: int,
    fraction: float,
    workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> FolderCheck:
    """Open every image below ``root`` once (``workers`` processes) and report the bad ones, in file order.

    ``progress(checked, total)`` is called after each file.
    """
    paths, problems = find_images(root)
    result = FolderCheck(Path(root), len(paths), fraction, list(problems))
    loader = torch.utils.data.DataLoader(_Probe(paths, min_side), batch_size=None, num_workers=workers)
    for checked, message in enumerate(loader, 1):
        if message:
            result.bad.append(message)
        if progress is not None:
            progress(checked, len(paths))
    return result
