"""Downloading one file from a plain URL into a cache, safely.

The file is streamed into a temporary name next to its destination and renamed into place only after
its size and, when known, its sha256 have been checked, so a half-finished or corrupt download never
sits in the cache under the real name. Standard library only (``urllib``).

Size: a download stops as soon as it brings more than it should: the expected size when the caller
knows it (the registry's ``LegacyFile.size``), else the server's ``Content-Length``, else
``MAX_DOWNLOAD_BYTES`` (2 GiB), so a mirror streaming without end cannot fill the disk.

Timeouts: ``DEFAULT_TIMEOUT_S`` seconds (10) to connect and, after that, for *each* read of the
response; a transfer that stalls that long is abandoned. ``ADAIN_DOWNLOAD_TIMEOUT`` (seconds, from 0.001 to
``MAX_TIMEOUT_S``, a day; anything else is an ``EnvironmentVariableError`` naming it) in the environment
overrides the default. There is no overall limit: a slow but moving download continues.

A download killed mid-transfer leaves ``.<name>.part-<pid>-<host>`` beside the destination; the next download
into that folder removes it (``adain._atomic``: its owner is dead).
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .._arguments import MAX_TIMEOUT_S, environment_number
from .._atomic import atomic_path
from .._version import __version__
from ..errors import CorruptWeightsError, InputError, WeightsNotFoundError

DEFAULT_TIMEOUT_S = 10.0
TIMEOUT_VARIABLE = "ADAIN_DOWNLOAD_TIMEOUT"
MIN_TIMEOUT_S = 0.001
MAX_DOWNLOAD_BYTES = 2 * 1024**3
"""The most a download of unknown size (no expected size, no ``Content-Length``) may bring: 2 GiB."""
_CHUNK = 1 << 20
_SCHEMES = ("http", "https", "file")


@dataclass(frozen=True)
class DownloadProgress:
    """One progress report of a file being downloaded, what the ``progress`` callback of
    [``adain.load_pretrained``][adain.load_pretrained] receives as the bytes arrive.

    Attributes:
        filename: the name of the file being downloaded.
        done_bytes: bytes received so far.
        total_bytes: the file's size in bytes; ``None`` when neither the registry nor the server says.
    """

    filename: str
    done_bytes: int
    total_bytes: int | None


ProgressCallback = Callable[[DownloadProgress], None]


def download_timeout() -> float:
    """The timeout in seconds: ``ADAIN_DOWNLOAD_TIMEOUT`` when set, else ``DEFAULT_TIMEOUT_S``.

    Raises ``EnvironmentVariableError`` (naming the variable) when it is set to anything but a number of
    seconds from ``MIN_TIMEOUT_S`` to ``MAX_TIMEOUT_S`` (a day).
    """
    return environment_number(TIMEOUT_VARIABLE, DEFAULT_TIMEOUT_S, minimum=MIN_TIMEOUT_S, maximum=MAX_TIMEOUT_S)


def _check_timeout(value: object, what: str) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not MIN_TIMEOUT_S <= seconds <= MAX_TIMEOUT_S:  # also refuses nan
        raise InputError(
            f"{what}: expected a number of seconds from {MIN_TIMEOUT_S:g} to {MAX_TIMEOUT_S:g} "
            f"(e.g. {DEFAULT_TIMEOUT_S:g})"
        )
    return seconds


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download_url(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    size: int | None = None,
    timeout: float | None = None,
    progress: ProgressCallback | None = None,
    max_bytes: int | None = None,
) -> Path:
    """Fetch ``url`` into ``dest`` (created with its parent folders); returns ``dest``.

    Arguments:
        url: ``http://``, ``https://`` or ``file://`` URL; redirects are followed.
        dest: final path. Written only when the whole file arrived and checked out.
        sha256: expected hex digest, or None when unknown (then only the length is checked).
        size: expected size in bytes, or None when unknown (then ``Content-Length``, else ``max_bytes``,
            bounds the download).
        timeout: seconds to connect and per read; None means ``download_timeout()``.
        progress: called with a ``DownloadProgress`` after each chunk.
        max_bytes: the limit when neither ``size`` nor ``Content-Length`` is known; None means
            ``MAX_DOWNLOAD_BYTES`` (2 GiB).
    Raises:
        WeightsNotFoundError: the server could not be reached or answered with an error (404, DNS
            failure, refused connection, timeout), or the transfer ended before its expected size.
        CorruptWeightsError: the bytes arrived but their sha256 is not ``sha256``, or the server sent (or
            announced) more than the expected size or the limit.
        InputError: ``timeout`` is not a number of seconds from ``MIN_TIMEOUT_S`` to ``MAX_TIMEOUT_S``.
        EnvironmentVariableError: neither is ``ADAIN_DOWNLOAD_TIMEOUT``.
        DiskFullError: the disk or quota filled up (nothing is left behind).
    """
    dest = Path(dest)
    scheme = urlsplit(url).scheme.lower()
    if scheme not in _SCHEMES:
        raise WeightsNotFoundError(f"{url}: unsupported URL scheme {scheme!r} (use one of {', '.join(_SCHEMES)})")
    timeout = download_timeout() if timeout is None else _check_timeout(timeout, f"timeout={timeout!r}")
    fetch = _Fetch(url, dest.name, size, MAX_DOWNLOAD_BYTES if max_bytes is None else max_bytes, progress)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest, tag="part", durable=True, expected_bytes=size) as tmp:
        fetch.into(tmp, timeout)
        if sha256 is not None:
            actual = sha256_of(tmp)
            if actual.lower() != sha256.lower():
                raise CorruptWeightsError(
                    f"{url}: sha256 {actual} does not match the expected {sha256.lower()} (an error page, a "
                    "changed upstream file or a corrupted transfer); the download was discarded"
                )
    return dest


@dataclass
class _Fetch:
    """One transfer of ``url``, bounded by ``size`` (expected, when known) or else by ``cap``."""

    url: str
    filename: str
    size: int | None
    cap: int
    progress: ProgressCallback | None

    def into(self, tmp: Path, timeout: float) -> None:
        request = urllib.request.Request(self.url, headers={"User-Agent": f"adain/{__version__}"})
        url = self.url
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                total = self._total(response.headers.get("Content-Length"))
                done = self._copy(response, tmp, total)
        except urllib.error.HTTPError as exc:
            raise WeightsNotFoundError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise WeightsNotFoundError(f"{url}: unreachable ({_reason(exc.reason)})") from None
        except http.client.IncompleteRead as exc:
            raise WeightsNotFoundError(
                f"{url}: transfer ended early ({len(exc.partial)} more bytes, {exc.expected} missing); discarded"
            ) from None
        except TimeoutError:
            raise WeightsNotFoundError(f"{url}: timed out after {timeout:g} s without data") from None
        except (http.client.HTTPException, ConnectionError) as exc:
            raise WeightsNotFoundError(f"{url}: connection failed ({type(exc).__name__}: {exc})") from None
        # http.client stops quietly at a closed connection in some cases; never trust a short file.
        if total is not None and done != total:
            raise WeightsNotFoundError(f"{url}: transfer ended early ({done} of {total} bytes); discarded")

    def _total(self, header: str | None) -> int | None:
        """The size to expect: ``size``, else the announced ``Content-Length`` (refused above ``cap``)."""
        announced = int(header) if header and header.isdigit() else None
        if self.size is not None and announced is not None and announced != self.size:
            raise CorruptWeightsError(
                f"{self.url}: the server announces {announced} bytes where {self.size} are expected (not the "
                "expected file); not downloaded"
            )
        if self.size is None and announced is not None and announced > self.cap:
            raise CorruptWeightsError(
                f"{self.url}: the server announces {announced} bytes, over the limit of {self.cap} for a file "
                "of unknown size; not downloaded"
            )
        return self.size if self.size is not None else announced

    def _copy(self, response, tmp: Path, total: int | None) -> int:
        """Stream the body into ``tmp``, reading never more than one byte past the limit."""
        limit = total if total is not None else self.cap
        done = 0
        with open(tmp, "wb") as out:
            while chunk := response.read(min(_CHUNK, limit + 1 - done)):
                done += len(chunk)
                if done > limit:
                    what = (
                        f"the expected {limit} bytes"
                        if total is not None
                        else (f"{limit} bytes without announcing its size (the limit, MAX_DOWNLOAD_BYTES)")
                    )
                    raise CorruptWeightsError(f"{self.url}: the server sent more than {what}; discarded")
                out.write(chunk)
                if self.progress is not None:
                    self.progress(DownloadProgress(self.filename, done, total))
        return done


def _reason(reason: object) -> str:
    if isinstance(reason, socket.gaierror):
        return f"DNS lookup failed: {reason.strerror or reason}"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    return str(reason)
