"""One training process per run directory: an exclusive ``flock`` on ``RUN_DIR/.lock``.

Two runs writing the same checkpoints, log and ``final/`` would destroy each other's work, so the second
is refused at once with a message naming the first one's PID (written into the lock file). The lock is
the kernel's: it goes away with the process that holds it, however that process ends (SIGKILL, a power
cut), so a ``.lock`` file left behind by a dead run never blocks the next one. The file itself is left in
place (deleting it could let two processes lock two different files).

``check`` runs with the lock held but before this process's PID is written: ``train`` refuses a directory
holding an earlier run there without having changed a byte of it. Holding the lock is re-entrant within a
process. Forked children (data-loader workers) close their inherited
copy, so a child that outlives a killed trainer does not keep the directory locked. In a
data-parallel run only rank 0 (``RANK``) takes it: the other ranks never write to the run directory.
Where there is no ``flock`` (Windows) runs are not locked.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from .._arguments import environment_rank
from ..errors import AdaINError
from ._errors import NamesSettings, Setting

fcntl: ModuleType | None  # None where the platform has no such module
try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not locked
    fcntl = None

LOCK_NAME = ".lock"

_held: dict[Path, list[int]] = {}  # run directory (resolved) -> [file descriptor, depth]


class RunDirInUseError(NamesSettings, AdaINError, RuntimeError):
    """Another process is training in this run directory."""


def _close_inherited() -> None:
    """In a forked child: close the inherited descriptors (not unlock: that would unlock the parent too)."""
    for fd, _ in _held.values():
        try:
            os.close(fd)
        except OSError:
            pass
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited)


def _holder(fd: int) -> str:
    """Who holds the lock, from the lock file: ``"PID 1234"`` (and the host when it is another machine)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        pid, _, host = os.read(fd, 4096).decode("utf-8", "replace").strip().partition("\n")
    except OSError:
        return "PID unknown"
    if not pid.strip().isdigit():
        return "PID unknown"
    elsewhere = host.strip() and host.strip() != socket.gethostname()
    return f"PID {pid.strip()}" + (f" on {host.strip()}" if elsewhere else "")


def _acquire(run_dir: Path, check: Callable[[], None]) -> int:
    """Open and lock ``run_dir/.lock`` (creating both), call ``check``, write this PID into it; returns the
    descriptor. An exception from ``check`` releases the lock, the lock file's content unchanged."""
    assert fcntl is not None, "lock_run_dir takes no lock without fcntl"
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise RunDirInUseError(
            f"{run_dir} is in use by another training run ({holder}); wait for it to end, or choose another ",
            Setting("out"),
        ) from None
    except BaseException:
        os.close(fd)
        raise
    try:
        check()
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n{socket.gethostname()}\n".encode(), 0)
    return fd


@contextmanager
def lock_run_dir(
    run_dir: str | os.PathLike, *, rank: int | None = None, check: Callable[[], None] | None = None
) -> Iterator[None]:
    """Hold the run directory's lock for the ``with`` block (creating the directory if needed).

    Raises ``RunDirInUseError`` naming the holder's PID when another process holds it. ``check`` (if given)
    is called once the lock is held, before the lock file is written; what it raises ends the block before it
    starts. ``rank`` (default: the ``RANK`` environment variable, 0 when unset): ranks other than 0 take no
    lock (``check`` is still called).
    """
    check = check or (lambda: None)
    if fcntl is None or (environment_rank("RANK") if rank is None else rank) != 0:
        check()
        yield
        return
    key = Path(run_dir).resolve()
    if key in _held:
        check()
        _held[key][1] += 1
    else:
        _held[key] = [_acquire(Path(run_dir), check), 1]
    try:
        yield
    finally:
        entry = _held.get(key)
        if entry is not None:
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]
                os.close(entry[0])  # closing the last descriptor releases the lock
