"""Writing a file so that its real name only ever holds a complete file: a temporary name, then a rename.

Every file the package writes (images, weights, configs, model cards, downloads, checkpoints) goes
through ``atomic_path``: an interrupted write leaves at most a hidden temporary file beside the target,
never a half-written file under the real name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "temporary_name", "fsync_dir"]


def temporary_name(path: Path, tag: str = "tmp") -> Path:
    """The hidden temporary file used while writing ``path``: ``.<name>.<tag>-<pid>`` in the same folder
    (the same file system, so the final rename is atomic)."""
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}")


def fsync_dir(directory: Path) -> None:
    """Make a rename inside ``directory`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, *, durable: bool = False, tag: str = "tmp") -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on any failure it is removed.

    ``durable=True`` also fsyncs the file and its folder, so the new file survives a power cut (used
    for checkpoints, where losing the newest one costs hours).
    """
    path = Path(path)
    tmp = temporary_name(path, tag)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
