"""Writing a file so that its real name only ever holds a complete file: a temporary name, then a rename.

Every file the package writes (images, weights, configs, model cards, downloads, checkpoints) goes
through ``atomic_path``: an interrupted write leaves at most a hidden temporary file beside the target,
never a half-written file under the real name. ``replace=False`` never replaces an existing file either
(the new file is linked into place, which fails if the name is taken).
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "temporary_name", "fsync_dir"]

NAME_MAX = 255
"""Bytes in one file name on the common file systems (ext4, XFS, APFS, NTFS in UTF-16 units)."""


def temporary_name(path: Path, tag: str = "tmp") -> Path:
    """The hidden temporary file used while writing ``path``: ``.<name>.<tag>-<pid>`` in the same folder
    (the same file system, so the final rename is atomic). When that would be longer than a file name may
    be, the name is cut and a hash of it keeps it unique: a name that fits still gets written."""
    ending = f".{tag}-{os.getpid()}"
    name = f".{path.name}{ending}"
    if len(os.fsencode(name)) > NAME_MAX:
        digest = hashlib.sha1(os.fsencode(path.name)).hexdigest()[:12]
        room = NAME_MAX - len(os.fsencode(ending)) - len(digest) - 2
        head = os.fsencode(path.name)[:room].decode(errors="ignore")
        name = f".{head}~{digest}{ending}"
    return path.with_name(name)


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


def _link_new(tmp: Path, path: Path) -> None:
    """Give the file ``tmp`` the name ``path`` too, unless ``path`` exists (``FileExistsError``). A hard link
    never replaces anything; where the file system has no hard links, an existence check and a rename."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
        os.replace(tmp, path)


@contextmanager
def atomic_path(path: str | os.PathLike, *, durable: bool = False, tag: str = "tmp",
                replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on any failure it is removed.

    ``durable=True`` also fsyncs the file and its folder, so the new file survives a power cut (used
    for checkpoints, where losing the newest one costs hours). ``replace=False`` raises
    ``FileExistsError`` instead of replacing a file that exists when the write completes.
    """
    path = Path(path)
    tmp = temporary_name(path, tag)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
        if durable:
            fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
