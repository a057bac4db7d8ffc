"""Writing a file so that its real name only ever holds a complete file: a temporary name, then a rename.

Every file the package writes (images, weights, configs, model cards, downloads, checkpoints) goes through
``atomic_path`` (a whole folder, such as a converted model in the cache, through ``atomic_dir``): an
interrupted write leaves at most a hidden temporary beside the target, never a half-written file under the
real name (``replace=False`` never replaces an existing file either: the new file is linked into place, which
fails if the name is taken). A full disk becomes a one-line ``DiskFullError`` naming the file, the bytes it
needed and the bytes free, and the temporary is removed, whatever reported it: an ``OSError`` (``ENOSPC``,
``EDQUOT``, also PyAV's), ``safetensors``' ``SafetensorError`` or torch's ``RuntimeError`` from its zip writer
(``is_disk_full``).

Every temporary name carries its owner (``adain._temporaries``: PID and host); the next write into a folder
removes the temporaries of dead writers (``tidy``).

Whether a file may be written at all is ``check_output``, the one output policy of every writer (images,
video sinks, ONNX export, the command line): an output that is one of the inputs (the same file through
any link or letter case) is ``OutputIsInputError``, even with ``overwrite``; an output that exists without
``overwrite`` is ``OutputExistsError``.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ._temporaries import NAME_MAX as NAME_MAX
from ._temporaries import STALE_AFTER_S as STALE_AFTER_S
from ._temporaries import remove_stale_temporaries as remove_stale_temporaries
from ._temporaries import temporary_name as temporary_name
from ._temporaries import tidy as tidy
from .errors import DiskFullError, OutputExistsError, OutputIsInputError, OutputNotWritableError

_EDQUOT = getattr(errno, "EDQUOT", errno.ENOSPC)
_FULL = {errno.ENOSPC, _EDQUOT}
# How the libraries that write our large files say "no space" when it is not an OSError: safetensors (Rust's
# io::Error: "No space left on device (os error 28)", kind StorageFull / QuotaExceeded), torch's zip writer
# (PytorchStreamWriter: "unexpected pos" / "failed writing file", the C library's short write on a full disk).
_NO_SPACE = re.compile(r"no space left on device|storagefull|os error 28\b", re.IGNORECASE)
_NO_QUOTA = re.compile(r"disk quota exceeded|quotaexceeded|os error 122\b", re.IGNORECASE)
_TORCH_SHORT_WRITE = re.compile(r"PytorchStreamWriter failed writing|inline_container\.cc.*unexpected pos", re.DOTALL)


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
    known, named in the ``DiskFullError`` raised when the disk or quota is full (whoever reports it, see
    ``is_disk_full``). ``replace=False`` raises ``FileExistsError`` instead of replacing a file that exists
    when the write completes. Temporaries of dead writers in the folder are removed first (``tidy``).
    """
    path = Path(path)
    tidy(path.parent)
    tmp = temporary_name(path, tag)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        publish(tmp, path, replace=replace)
        if durable:
            fsync_dir(path.parent)
    except Exception as exc:
        if is_disk_full(exc) and not isinstance(exc, DiskFullError):
            raise disk_full_error(path, exc, expected_bytes or _size_of(tmp)) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | os.PathLike, *, tag: str = "tmp") -> Iterator[Path]:
    """Yield a new temporary folder to fill; on success it is renamed to ``path``, on failure removed.

    ``path`` must not exist when the rename happens (``OSError`` otherwise: the caller decides what to
    do with a folder that is already there); other processes never see a half-filled ``path``. A full disk
    is a ``DiskFullError`` as in ``atomic_path``.
    """
    path = Path(path)
    tidy(path.parent)
    tmp = temporary_name(path, tag)
    shutil.rmtree(tmp, ignore_errors=True)  # left by a dead process that had this pid
    try:
        tmp.mkdir(parents=True)
        yield tmp
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except Exception as exc:
        if is_disk_full(exc) and not isinstance(exc, DiskFullError):
            raise disk_full_error(path, exc) from None
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def is_disk_full(exc: BaseException) -> int | None:
    """``errno.ENOSPC`` or ``errno.EDQUOT`` when ``exc`` (or an exception it was raised from) says the disk
    or the quota is full, whatever its type: an ``OSError`` (PyAV's are too), ``safetensors``'
    ``SafetensorError`` (Rust's message), torch's ``RuntimeError`` from its zip writer; else ``None``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _FULL:
            return current.errno
        text = str(current)
        if _NO_QUOTA.search(text):
            return _EDQUOT
        if _NO_SPACE.search(text) or (isinstance(current, RuntimeError) and _TORCH_SHORT_WRITE.search(text)):
            return errno.ENOSPC
        current = current.__cause__ or current.__context__
    return None


def disk_full_error(path: Path, exc: BaseException, expected_bytes: int | None = None) -> DiskFullError:
    """The one-line error for ``exc`` (a full disk or quota, see ``is_disk_full``) while writing ``path``:
    the file, what is full, the bytes needed (``expected_bytes``, when known) and the bytes free there."""
    code = is_disk_full(exc) or errno.ENOSPC
    what = "no space left on the device" if code == errno.ENOSPC else "disk quota exceeded"
    needed = f"; it needs {_size(expected_bytes)}" if expected_bytes else ""
    try:
        free = f", {_size(shutil.disk_usage(_existing(path.parent)).free)} free there"
    except OSError:
        free = ""
    error = DiskFullError(f"{path}: cannot write it, {what}{needed}{free}; nothing was written under that name")
    error.errno, error.filename = code, str(path)
    return error


def _existing(folder: Path) -> Path:
    while not folder.exists() and folder.parent != folder:  # free space is asked of a folder that exists
        folder = folder.parent
    return folder


def _size_of(path: Path) -> int | None:  # the bytes a full disk had already taken: what is known to be needed
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None


def _size(n: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit} ({n} bytes)"
    return f"{n} bytes"


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
