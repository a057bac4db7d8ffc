"""The package's exception types.

Every error a user can cause (a bad argument, an unreadable image, missing or corrupt weights) is raised
as one of these, with a message that names the offending file or argument and says what to do. They
subclass the matching built-in (``ValueError``, ``OSError``) so generic handlers keep working.
"""

from __future__ import annotations

__all__ = [
    "AdaINError",
    "InputError",
    "ImageReadError",
    "OutputExistsError",
    "OutputIsInputError",
    "OutputNotWritableError",
    "WeightsError",
    "WeightsNotFoundError",
    "CorruptWeightsError",
    "WeightsOfflineError",
    "DiskFullError",
    "EnvironmentVariableError",
    "MissingDependencyError",
]


class AdaINError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(AdaINError, ValueError):
    """An argument or input image the package cannot use (wrong shape, range, type, size)."""


class ImageReadError(InputError):
    """An image file that cannot be read: missing, empty, truncated, not an image, or a decompression bomb."""


class OutputExistsError(AdaINError, FileExistsError):
    """An output exists and replacing it was not asked for (``overwrite=False``), from every writer: images,
    videos and frame folders, ONNX export. ``filename`` is the output."""

    def __str__(self) -> str:  # with ``filename`` set, OSError would format the message as "[Errno None] ..."
        return str(self.args[0]) if self.args else ""


class OutputIsInputError(InputError):
    """An output is one of the inputs (the same file through any link or letter case): refused even with
    ``overwrite=True``, an input is never written. ``filename`` is the output, ``input`` the input it is.

    The command line's folder mode also raises it for outputs that would land inside an input folder, where
    the next run would read them back as inputs.
    """

    filename: str | None = None
    input: str | None = None


class OutputNotWritableError(InputError):
    """An output folder that does not exist and cannot be created, or cannot be written in (read-only,
    no permission, a file in the way, under a ``HOME`` that does not exist). The commands check each output
    folder before any work, so this comes first; ``filename`` is the folder."""

    filename: str | None = None


class MissingDependencyError(InputError, ImportError):
    """An optional dependency a feature needs is not installed (the ``video``, ``export``, ``demo``...
    extras); the message ends with ``install_hint``: how to install it from PyPI and from a clone. An
    ``InputError`` (the call cannot be served as asked) and an ``ImportError``; the command line counts it
    as a failure (exit status 1), not a usage error."""


class WeightsError(AdaINError, OSError):
    """Weights could not be found, fetched or trusted. ``details``: where the message is a summary (every
    source failed), each source's own error, one per line; else ``None``."""

    details: str | None = None


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """No source of the requested weights could be reached or holds them."""


class CorruptWeightsError(WeightsError, ValueError):
    """A weights file exists but is not what it claims to be (wrong keys/shapes, bad checksum, non-finite values)."""


class WeightsOfflineError(WeightsNotFoundError):
    """Weights are not in the local cache and the network may not be used (``HF_HUB_OFFLINE=1`` or
    ``local_files_only=True``)."""


class DiskFullError(AdaINError, OSError):
    """A file could not be written for lack of space (``ENOSPC``) or quota (``EDQUOT``).

    The message names the file and, where known, the bytes it needed; nothing half-written is left under
    its name. ``errno`` and ``filename`` are set as on the ``OSError`` it replaces.
    """

    def __str__(self) -> str:  # setting ``errno`` would make OSError format the message as "[Errno 28] ..."
        return str(self.args[0]) if self.args else ""


class EnvironmentVariableError(AdaINError, ValueError):
    """An environment variable the package reads (``ADAIN_CACHE``, ``ADAIN_DOWNLOAD_TIMEOUT``, ``HF_ENDPOINT``,
    ``HOME`` for the default cache, ...) holds a value it cannot use. The message names the variable, its value
    and what is accepted; ``variable`` is its name."""

    variable: str | None = None


def install_hint(extra: str) -> str:
    """How to install the optional dependencies of ``extra`` (``"video"``, ``"export"``, ``"demo"``...),
    for a user of the published package and for one working from a clone: the one wording every
    missing-extra message ends with, e.g. ``pip install 'adain[video]' (from a clone: pip install -e '.[video]')``."""
    return f"pip install 'adain[{extra}]' (from a clone: pip install -e '.[{extra}]')"
