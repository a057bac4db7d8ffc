"""Temporary names that say who owns them, and removing those whose owner died.

Every temporary the package writes (``adain._atomic``) is named ``.<name>.<tag>-<pid>-<host>`` (``host``:
8 hex digits identifying this machine and its PID namespace). A process killed mid-write (SIGKILL, the OOM
killer, a power cut) leaves its temporary behind; the next write into the same folder (the first in each
process, then at most once a minute: ``tidy``) removes at once the temporaries whose owner is no longer alive
on this host, and the others once a day old: another host's (a shared file system, where a PID says
nothing), and a live PID's (a reused PID must not keep a dead write's temporary for ever).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

STALE_AFTER_S = 24 * 3600
"""A temporary older than this (a day) belongs to no live write and may be removed."""

NAME_MAX = 255
"""Bytes in one file name on the common file systems (ext4, XFS, APFS, NTFS in UTF-16 units)."""

TIDY_EVERY_S = 60.0
"""A folder written to again within this many seconds is not searched for dead temporaries again."""

# What temporary_name makes with the tags in use; names without the host part are those of earlier versions.
_TEMPORARY = re.compile(r"\..+\.(?:tmp|part)-(?P<pid>[0-9]+)(?:-(?P<host>[0-9a-f]{8}))?")
_tidied: dict[str, float] = {}  # folder -> when this process last removed dead temporaries from it
_tidied_lock = threading.Lock()


def host_id() -> str:
    """8 hex digits naming where a PID means something: this host name and, on Linux, this PID namespace (two
    containers with one host name each have their own PID 1). Part of every temporary name."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return hashlib.sha1(f"{socket.gethostname()}/{namespace}".encode()).hexdigest()[:8]


def temporary_name(path: Path, tag: str = "tmp") -> Path:
    """The hidden temporary file used while writing ``path``: ``.<name>.<tag>-<pid>-<host>`` in the same
    folder (the same file system, so the final rename is atomic), naming its owner (``host_id``). When that
    would be longer than a file name may be, the name is cut and a hash of it keeps it unique: a name that
    fits still gets written."""
    ending = f".{tag}-{os.getpid()}-{host_id()}"
    name = f".{path.name}{ending}"
    if len(os.fsencode(name)) > NAME_MAX:
        digest = hashlib.sha1(os.fsencode(path.name)).hexdigest()[:12]
        room = NAME_MAX - len(os.fsencode(ending)) - len(digest) - 2
        head = os.fsencode(path.name)[:room].decode(errors="ignore")
        name = f".{head}~{digest}{ending}"
    return path.with_name(name)


def owner_is_dead(pid: int, host: str | None) -> bool:
    """Whether the process that named a temporary ``pid`` on ``host`` (``host_id``) is surely gone: on this
    host (and POSIX, where asking is harmless) no process has that PID. ``False`` when it may be alive, or
    cannot be known (another host, a name without a host, Windows)."""
    if host != host_id() or os.name != "posix" or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: it exists, owned by another user
        return False
    return False


def remove_stale_temporaries(
    folder: str | os.PathLike[str], *, older_than_s: float = STALE_AFTER_S, legacy: bool = True
) -> list[Path]:
    """Remove the temporaries (``.<name>.<tmp|part>-<pid>-<host>``, files or folders) directly in ``folder``
    whose owner is dead on this host (``owner_is_dead``), and the others last modified more than
    ``older_than_s`` ago: another host's, whose PIDs say nothing here, and a live PID's too (a PID reused
    by an unrelated process must not keep a dead write's temporary for ever). ``legacy``: also the names of
    earlier versions, without the host (``.<name>.tmp-<pid>``), by age alone. Returns what was removed;
    anything that cannot be removed is left."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    limit = time.time() - older_than_s
    for entry in entries:
        match = _TEMPORARY.fullmatch(entry.name)
        try:
            if match is None or (match["host"] is None and not legacy):
                continue
            dead = owner_is_dead(int(match["pid"]), match["host"])
            if not dead and entry.stat(follow_symlinks=False).st_mtime > limit:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except (OSError, ValueError):
            continue
        removed.append(Path(entry.path))
    return removed


def tidy(folder: str | os.PathLike[str]) -> list[Path]:
    """``remove_stale_temporaries(folder, legacy=False)``, at most once every ``TIDY_EVERY_S`` per folder and
    process: the writers call it before each write, and a run writing thousands of files into one folder
    lists it once a minute, not once a file. Names without a host are left alone in these folders (a user's
    ``.notes.tmp-1`` is not ours to judge); the cache removes them by age. Returns what was removed."""
    key, now = os.path.abspath(folder), time.monotonic()
    with _tidied_lock:
        if now - _tidied.get(key, -math.inf) < TIDY_EVERY_S:
            return []
        _tidied[key] = now
    return remove_stale_temporaries(folder, legacy=False)


# ---- writability ---------------------------------------------------------------------------------
