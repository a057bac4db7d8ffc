"""The relu4_1 features of a whole tiled image, kept between the two passes: in memory or in a temporary file.

Pass 1 of tiling (``adain.inference._tiling``) encodes each tile once and writes the feature cells it owns
here; pass 2 reads each tile's window back and only decodes, so no tile is encoded twice. The cells are
stored channels-last, ``(rows, cols, C)``: a window is one contiguous run of ``cols x C`` values per row,
and it is read straight into a ``(N, C, r, c)`` channels-last batch, the layout the decoder runs in, with
no reordering.

The store is either a tensor in memory or, when the plan says the features do not fit the budget beside
the tiles (``TileGrid.features_on_disk``), a temporary file read and written by position. A file rather
than a memory mapping: the pages of a mapping count in the process's resident memory as they are touched
(all of it, 4.6 GB for a 12000x12000 image, by the end of pass 1), while positional reads and writes leave
them to the page cache, which the kernel evicts as it needs. The file is named by ``adain._atomic.temporary_name``
in the system's temporary folder (``TMPDIR``), created exclusively, allocated in full at once (a full disk
is a one-line ``DiskFullError`` before any work), and unlinked at once where the system allows it (POSIX): it
then has no name at all and vanishes with the process however it ends, even killed; elsewhere it is removed
when the store closes, on every exit path.
"""

from __future__ import annotations

import errno
import itertools
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

import torch
from torch import Tensor

from .._atomic import temporary_name
from ..errors import DiskFullError

_names = itertools.count()  # unique temporary names within this process (threads may tile at once)
_FULL = {errno.ENOSPC} | ({errno.EDQUOT} if hasattr(errno, "EDQUOT") else set())


class FeatureStore:
    """The padded relu4_1 grid of one image, ``rows x cols`` cells of ``channels`` values in ``dtype``.

    Arguments:
        rows, cols: the grid's size (``TileGrid.feature_shape``).
        channels: values per cell (512).
        dtype: the features' dtype (the engine's compute dtype: float32 keeps the untiled result exactly).
        on_disk: keep them in a temporary file (``folder``) instead of memory.
        folder: where the file goes; default the system's temporary folder.

    Use it as a context manager: the file (if any) is closed and gone when the block ends, however it ends.
    """

    def __init__(
        self, rows: int, cols: int, channels: int, dtype: torch.dtype, *, on_disk: bool, folder: Path | None = None
    ) -> None:
        self.shape, self.dtype = (rows, cols, channels), dtype
        self.itemsize = torch.empty((), dtype=dtype).element_size()
        self.row_bytes = cols * channels * self.itemsize
        self.data: Tensor | None = None
        self.file = None
        self.path: Path | None = None
        if not on_disk:
            self.data = torch.empty(self.shape, dtype=dtype)
            return
        folder = Path(tempfile.gettempdir()) if folder is None else folder
        self.path = temporary_name(folder / f"adain-features-{os.getpid()}-{next(_names)}.bin")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        self.file = os.fdopen(fd, "r+b", buffering=0)
        try:
            os.unlink(self.path)  # POSIX: nameless from now on, gone with the process even if it is killed
            self.path = None
        except OSError:
            pass  # Windows cannot unlink an open file: close() removes it
        size = rows * self.row_bytes
        try:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(fd, 0, size)  # the whole file now: a full disk fails here, not mid-image
            else:
                self.file.truncate(size)
        except OSError as exc:
            self.close()
            if exc.errno in _FULL:
                raise _full(folder, exc, size) from None
            raise

    @property
    def nbytes(self) -> int:
        """Bytes the store holds: ``rows * cols * channels * itemsize``."""
        return self.shape[0] * self.row_bytes

    def write(self, top: int, left: int, cells: Tensor) -> None:
        """Store ``(C, r, c)`` ``cells`` (any device, the store's dtype) at cell ``(top, left)`` of the grid."""
        block = cells.permute(1, 2, 0)
        if self.data is not None:
            self.data[top : top + block.shape[0], left : left + block.shape[1]] = block
            return
        assert self.file is not None, "a store is in memory or in a file"
        host = block.to("cpu", self.dtype).contiguous()  # a backend may encode in another dtype
        raw = host.view(host.shape[0], -1).view(torch.uint8).numpy()  # bytes: bf16 has no numpy dtype
        offset = left * self.shape[2] * self.itemsize
        for i in range(raw.shape[0]):
            self.file.seek((top + i) * self.row_bytes + offset)
            self.file.write(memoryview(raw[i]))

    def read_into(self, out: Tensor, rows: slice, cols: slice) -> None:
        """Copy the window ``rows x cols`` of the grid into ``out``: ``(r, c, C)`` on the CPU, the store's dtype,
        contiguous (a channels-last ``(C, r, c)`` cell block seen channels-first is ``out.permute(2, 0, 1)``)."""
        if self.data is not None:
            out.copy_(self.data[rows, cols])
            return
        assert self.file is not None, "a store is in memory or in a file"
        raw = out.view(out.shape[0], -1).view(torch.uint8).numpy()
        offset = cols.start * self.shape[2] * self.itemsize
        for i, row in enumerate(range(rows.start, rows.stop)):
            self.file.seek(row * self.row_bytes + offset)
            view = memoryview(raw[i])
            done = 0
            while done < len(view):  # a read may return less than asked (signals, large reads)
                got = self.file.readinto(view[done:])
                if not got:
                    raise OSError(f"feature store: the temporary file ended early at row {row}")
                done += got

    def close(self) -> None:
        """Release the memory, close the file and remove it if it still has a name."""
        self.data = None
        if self.file is not None:
            self.file.close()
            self.file = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def _full(folder: Path, exc: OSError, size: int) -> DiskFullError:
    """The one-line error when the features' temporary file does not fit in ``folder``."""
    try:
        free = f", {shutil.disk_usage(folder).free / 1e9:.1f} GB free there"
    except OSError:
        free = ""
    error = DiskFullError(
        f"{folder}: no room for the tiled image's features, a temporary file of {size / 1e9:.1f} GB "
        f"({size} bytes){free}; set TMPDIR to a folder with room, or raise max_memory to keep them in memory"
    )
    error.errno, error.filename = exc.errno, str(folder)
    return error
