"""Writing a file so that its real name only ever holds a complete file: a temporary name, then a rename.

Every file the package writes (images, weights, configs, model cards, downloads, checkpoints) goes through
``atomic_path`` (a whole folder, such as a converted model in the cache, through ``atomic_dir``): an
interrupted write leaves at most a hidden temporary beside the target, never a half-written file under the
real name (``replace=False`` never replaces an existing file either: the new file is linked into place, which
fails if the name is taken). A full disk (``ENOSPC``, ``EDQUOT``) becomes a one-line ``DiskFullError`` naming
the file and the bytes it needed, and the temporary is removed. Temporaries left behind by a process that died
are recognised by their name and removed by ``remove_stale_temporaries`` once a day old.

Whether a file may be written at all is ``check_output``, the one output policy of every writer (images,
video sinks, ONNX export, the command line): an output that is one of the inputs (the same file through
any link or letter case) is ``OutputIsInputError``, even with ``overwrite``; an output that exists without
``overwrite`` is ``OutputExistsError``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import DiskFullError, OutputExistsError, OutputIsInputError, OutputNotWritableError

STALE_AFTER_S = 24 * 3600
"""A temporary older than this (a day) belongs to no live write and may be removed."""

NAME_MAX = 255
"""Bytes in one file name on the common file systems (ext4, XFS, APFS, NTFS in UTF-16 units)."""

_TEMPORARY = re.compile(r"\..+\.(?:tmp|part)-[0-9]+")  # what temporary_name makes with the tags in use
_FULL = {errno.ENOSPC} | ({errno.EDQUOT} if hasattr(errno, "EDQUOT") else set())


# ---- the output policy -------------------------------------------------------------------------


class InputFiles:
    """Files that are never written, recognised by identity (device and inode): the same file is found
    through a symbolic or hard link and, where the file system ignores case, through any letter case.
    Built once (one ``stat`` per input) to check many outputs (one ``stat`` each).

    Arguments:
        paths: input files or folders; a folder stands for itself and the files directly inside it (a
            model folder, a folder of video frames). Paths that do not exist are left out.
    """

    def __init__(self, paths: Iterable[str | os.PathLike] = ()) -> None:
        self.ids: dict[tuple[int, int], Path] = {}
        for path in map(Path, paths):
            self._add(path)
            if path.is_dir():
                for entry in path.iterdir():
                    if entry.is_file():
                        self._add(entry)

    def _add(self, path: Path) -> None:
        key = file_id(path)
        if key is not None:
            self.ids.setdefault(key, path)

    def find(self, path: str | os.PathLike) -> Path | None:
        """The input that ``path`` is (as given to the constructor), or ``None``."""
        key = file_id(path) if self.ids else None
        return self.ids.get(key) if key is not None else None


def file_id(path: str | os.PathLike) -> tuple[int, int] | None:
    """What identifies a file or folder whatever the names leading to it (links, letter case): its device and
    inode; ``None`` when it cannot be examined (missing, no permission)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def check_output(
    path: str | os.PathLike, *, overwrite: bool = False, inputs: Iterable[str | os.PathLike] | InputFiles = ()
) -> None:
    """Refuse an output before anything is computed or written.

    Arguments:
        path: the file (or folder) about to be written.
        overwrite: whether an existing ``path`` may be replaced.
        inputs: the inputs of the same job (files or folders, see ``InputFiles``; pass an ``InputFiles``
            to check many outputs against the same inputs).
    Raises:
        OutputIsInputError: ``path`` is one of ``inputs`` (the same file through any link or letter case),
            whatever ``overwrite`` says.
        OutputExistsError: ``path`` exists (a file, a folder or a link, even a broken one) and not ``overwrite``.
    """
    path = Path(path)
    found = (inputs if isinstance(inputs, InputFiles) else InputFiles(inputs)).find(path)
    if found is not None:
        error = OutputIsInputError(
            f"{path}: this output is the input {found}; inputs are never overwritten, choose another output"
        )
        error.filename, error.input = str(path), str(found)
        raise error
    if not overwrite and os.path.lexists(path):
        raise exists_error(path)


def exists_error(path: str | os.PathLike, reason: str = "exists") -> OutputExistsError:
    """The one-line ``OutputExistsError`` for ``path`` (``filename`` set); ``reason`` says how it was found
    (e.g. a file that appeared while the output was being written)."""
    error = OutputExistsError(f"{path}: {reason}; pass overwrite=True to replace it")
    error.filename = str(path)
    return error


# ---- writing -------------------------------------------------------------------------------------


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


def publish(tmp: Path, path: Path, *, replace: bool = True) -> None:
    """Give the finished file ``tmp`` the name ``path``. ``replace=False`` never replaces a file that exists
    (``FileExistsError``): a hard link, then the temporary name removed; where the file system has no hard
    links, an existence check and a rename."""
    if replace:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
        os.replace(tmp, path)
        return
    tmp.unlink()


@contextmanager
def atomic_path(
    path: str | os.PathLike,
    *,
    durable: bool = False,
    tag: str = "tmp",
    expected_bytes: int | None = None,
    replace: bool = True,
) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on any failure it is removed.

    ``durable=True`` also fsyncs the file and its folder, so the new file survives a power cut (used
    for checkpoints, where losing the newest one costs hours). ``expected_bytes``: the file's size when
    known, named in the ``DiskFullError`` raised when the disk or quota is full. ``replace=False`` raises
    ``FileExistsError`` instead of replacing a file that exists when the write completes.
    """
    path = Path(path)
    tmp = temporary_name(path, tag)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        publish(tmp, path, replace=replace)
        if durable:
            fsync_dir(path.parent)
    except OSError as exc:
        if exc.errno in _FULL and not isinstance(exc, DiskFullError):
            raise disk_full_error(path, exc, expected_bytes) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | os.PathLike, *, tag: str = "tmp") -> Iterator[Path]:
    """Yield a new temporary folder to fill; on success it is renamed to ``path``, on failure removed.

    ``path`` must not exist when the rename happens (``OSError`` otherwise: the caller decides what to
    do with a folder that is already there); other processes never see a half-filled ``path``.
    """
    path = Path(path)
    tmp = temporary_name(path, tag)
    shutil.rmtree(tmp, ignore_errors=True)  # left by a dead process that had this pid
    tmp.mkdir(parents=True)
    try:
        yield tmp
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def disk_full_error(path: Path, exc: OSError, expected_bytes: int | None = None) -> DiskFullError:
    """The one-line error for ``exc`` (ENOSPC or EDQUOT) while writing ``path``."""
    what = "disk quota exceeded" if exc.errno != errno.ENOSPC else "no space left on the device"
    needed = f"; it needs {_size(expected_bytes)}" if expected_bytes else ""
    try:
        free = f", {_size(shutil.disk_usage(path.parent).free)} free there"
    except OSError:
        free = ""
    error = DiskFullError(f"{path}: cannot write it, {what}{needed}{free}; nothing was written under that name")
    error.errno, error.filename = exc.errno, str(path)
    return error


def _size(n: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit} ({n} bytes)"
    return f"{n} bytes"


def remove_stale_temporaries(folder: str | os.PathLike[str], *, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the temporaries (``.<name>.tmp-<pid>``, ``.<name>.part-<pid>``, files or folders) directly in
    ``folder`` last modified more than ``older_than_s`` ago; younger ones may belong to a live process
    and are kept. Returns what was removed; anything that cannot be removed is left alone."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    limit = time.time() - older_than_s
    for entry in entries:
        try:
            if not _TEMPORARY.fullmatch(entry.name) or entry.stat(follow_symlinks=False).st_mtime > limit:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


# ---- writability ---------------------------------------------------------------------------------


def check_writable(folder: str | os.PathLike, what: str) -> Path:
    """Make sure files can be written in ``folder`` before any work: the folder is created if needed
    (with its parents), then a hidden probe file is created in it and removed.

    Commands call it for each output folder before they load weights or read a pixel, so a read-only or
    misspelt output is found in a second rather than after the work. A folder under ``$HOME`` when
    ``$HOME`` does not exist is refused rather than created (it would build a stray tree such as
    ``/nonexistent/.cache``).

    Arguments:
        folder: the folder outputs will be written in.
        what: how the caller names it in the message (``"-o"``, ``"output"``, ``"cache_dir"``).

    Returns:
        ``folder`` as a ``Path``.

    Raises:
        OutputNotWritableError: one line naming ``what`` and the folder, and why.
    """
    folder = Path(folder)
    home = os.environ.get("HOME")
    if home and not os.path.isdir(home) and Path(os.path.abspath(folder)).is_relative_to(os.path.abspath(home)):
        raise _not_writable(folder, what, f"it is under HOME={home}, which does not exist; set HOME or choose a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise _not_writable(folder, what, "a file is in the way of the folder") from None
    except OSError as exc:
        raise _not_writable(folder, what, f"cannot create the folder ({exc.strerror or exc})") from None
    probe = temporary_name(folder / "write-probe")
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
    except OSError as exc:
        if exc.errno in _FULL:
            raise disk_full_error(probe, exc) from None
        raise _not_writable(folder, what, f"cannot write in it ({exc.strerror or exc})") from None
    try:
        os.unlink(probe)
    except OSError:
        pass  # a probe we cannot remove is hidden, and a day old it is a stale temporary
    return folder


def _not_writable(folder: Path, what: str, reason: str) -> OutputNotWritableError:
    error = OutputNotWritableError(f"{what}: {folder}: {reason}")
    error.filename = str(folder)
    return error
