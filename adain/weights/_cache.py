"""The cache of named weights on disk: where it is, one entry's folders, and keeping them safe.

Layout of an entry, ``<root>/<name>/``:

- ``files/``: the legacy files, downloaded or placed there by hand;
- ``model/``: the converted package folder, renamed into place only once complete (``atomic_dir``);
- ``.lock``: held (``flock``) by the process filling the entry, so that concurrent processes wait for
  it instead of converting over each other;
- ``rejected/`` beside what failed a check: a file placed by hand (or a converted folder) that fails
  verification is moved there as ``<name>.<timestamp>``, never deleted.

Temporaries left by dead processes (``.<name>.part-<pid>-<host>``, ``.model.tmp-<pid>-<host>/``) are removed
when the entry is next used: at once when their owner is dead on this host, once a day old otherwise.

The root comes from ``cache_dir``, ``ADAIN_CACHE``, ``XDG_CACHE_HOME`` or ``HOME``, each checked before use
(``cache_root``): a value the file system cannot take, or a root that could not be created, is one
``EnvironmentVariableError`` naming the variable, and nothing is ever created under a ``HOME`` that does not
exist (a service account's ``HOME=/nonexistent``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from .._arguments import check_folder_path, environment_error, environment_folder, environment_value
from .._temporaries import remove_stale_temporaries

fcntl: ModuleType | None  # None where the platform has no such module
try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
msvcrt: ModuleType | None
try:
    import msvcrt
except ImportError:  # everything but Windows
    msvcrt = None

LOCK_NAME = ".lock"
REJECTED_DIR = "rejected"

logger = logging.getLogger(__name__)


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where converted weights live: ``cache_dir``, ``$ADAIN_CACHE``, ``$XDG_CACHE_HOME/adain`` or
    ``~/.cache/adain`` (``XDG_CACHE_HOME`` is ignored unless absolute, as its specification says). Nothing
    is created.

    Raises:
        EnvironmentVariableError: the variable the root came from (``ADAIN_CACHE``, ``XDG_CACHE_HOME`` or
            ``HOME``) names a path the file system cannot take, a file, a folder under a ``HOME`` that does
            not exist, or a folder that does not exist and cannot be created there (no write permission).
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    variable, root = "ADAIN_CACHE", environment_folder("ADAIN_CACHE")
    if root is None:
        xdg = environment_value("XDG_CACHE_HOME")
        if xdg is not None and Path(xdg).is_absolute():
            variable, root = "XDG_CACHE_HOME", environment_folder("XDG_CACHE_HOME")
            assert root is not None, "set, checked just above"
            root = root / "adain"
        else:
            variable, root = "HOME", _home() / ".cache" / "adain"
    _check_creatable(root, variable)
    return root


def _home() -> Path:
    """``HOME`` (or the user database's home when unset), checked like a variable's folder."""
    raw = os.environ.get("HOME") or ""
    try:
        home = Path(raw).expanduser() if raw else Path.home()
    except RuntimeError:  # no HOME and no entry in the user database
        raise environment_error("HOME", raw, "not set, and the user has no home folder; set ADAIN_CACHE") from None
    check_folder_path(home, "HOME", raw or str(home))
    return home


def _check_creatable(root: Path, variable: str) -> None:
    """Refuse, naming ``variable``, a root under a ``HOME`` that does not exist, or one that does not exist and
    whose nearest existing folder is not writable; an existing root passes (a read-only cache may hold
    converted weights)."""
    raw = os.environ.get(variable, "")
    home = os.environ.get("HOME")
    if home and not os.path.isdir(home) and (root == Path(home) or Path(home) in root.parents):
        name, value = ("HOME", home) if variable == "HOME" else (variable, raw)
        raise environment_error(
            name,
            value,
            f"the cache {root} would be under HOME={home!r}, which does not exist; set ADAIN_CACHE "
            "to a folder (nothing is created under a missing HOME)",
        )
    if root.is_dir():
        return
    if root.exists():
        raise environment_error(variable, raw, f"the cache {root} is not a folder")
    parent = root.parent
    while not parent.exists() and parent.parent != parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise environment_error(variable, raw, f"cannot create the cache {root}: {parent} is not a writable folder")


@dataclass(frozen=True)
class CacheEntry:
    """The folders of one named entry: ``folder`` = ``<root>/<name>``."""

    folder: Path

    @property
    def files(self) -> Path:
        return self.folder / "files"

    @property
    def model(self) -> Path:
        return self.folder / "model"

    def tidy(self) -> None:
        """Remove temporaries older than a day (``atomic.STALE_AFTER_S``) from the entry's folders."""
        for folder in (self.folder, self.files, self.model):
            for path in remove_stale_temporaries(folder):
                logger.info("Removed the stale temporary %s", path)


@contextmanager
def entry_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder/.lock`` exclusively: another process filling the same entry waits until it is released.

    ``fcntl.flock`` on POSIX (released by the kernel if the process dies), ``msvcrt.locking`` on Windows.
    Where the file system has no locks, or the lock file cannot be created (a read-only cache), the
    entry is filled unlocked; ``atomic_dir`` still keeps a half-written model folder out of sight.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / LOCK_NAME, "a+b")
    except OSError as exc:  # a read-only cache: whatever needs writing will say so itself
        logger.info("Cannot create %s (%s); going on unlocked", folder / LOCK_NAME, exc)
        yield
        return
    with handle:
        locked = _acquire(handle, folder)
        try:
            yield
        finally:
            if locked:
                _release(handle)


def _acquire(handle, folder: Path) -> bool:
    if fcntl is not None:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("Waiting for another process filling %s", folder)
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        except OSError as exc:  # e.g. ENOLCK on a network file system without lock support
            logger.info("Cannot lock %s (%s); filling it unlocked", folder, exc)
            return False
        return True
    if msvcrt is not None:
        handle.seek(0)
        while True:
            try:
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
                return True
            except OSError:
                time.sleep(0.2)
    return False


def _release(handle) -> None:
    if fcntl is not None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    elif msvcrt is not None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)


def move_aside(path: Path) -> Path:
    """Move ``path`` (a file or folder) to ``<its folder>/rejected/<name>.<YYYYmmdd-HHMMSS>``; returns where."""
    rejected = path.parent / REJECTED_DIR
    rejected.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, number = rejected / f"{path.name}.{stamp}", 1
    while target.exists():
        target, number = rejected / f"{path.name}.{stamp}-{number}", number + 1
    os.replace(path, target)
    return target
