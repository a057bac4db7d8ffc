"""Downloading one file from a plain URL into a cache, safely.

The file is streamed into a temporary name next to its destination and renamed into place only after
its size (``Content-Length``) and, when known, its sha256 have been checked, so a half-finished or
corrupt download never sits in the cache under the real name. Standard library only (``urllib``).

Timeouts: ``DEFAULT_TIMEOUT_S`` seconds (10) to connect and, after that, for *each* read of the
response; a transfer that stalls that long is abandoned. ``ADAIN_DOWNLOAD_TIMEOUT`` (seconds) in the
environment overrides the default. There is no overall limit: a slow but moving download continues.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..atomic import atomic_path
from ..errors import CorruptWeightsError, WeightsNotFoundError
from ..version import __version__

__all__ = ["DEFAULT_TIMEOUT_S", "DownloadProgress", "download_url", "sha256_of", "download_timeout"]

DEFAULT_TIMEOUT_S = 10.0
_CHUNK = 1 << 20
_SCHEMES = ("http", "https", "file")


@dataclass(frozen=True)
class DownloadProgress:
    """One progress report: ``done_bytes`` of ``total_bytes`` (None when the server does not say) of ``filename``."""

    filename: str
    done_bytes: int
    total_bytes: int | None


ProgressCallback = Callable[[DownloadProgress], None]


def download_timeout() -> float:
    """The timeout in seconds: ``ADAIN_DOWNLOAD_TIMEOUT`` if set to a positive number, else ``DEFAULT_TIMEOUT_S``."""
    raw = os.environ.get("ADAIN_DOWNLOAD_TIMEOUT", "").strip()
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        return DEFAULT_TIMEOUT_S
    return value if value > 0 else DEFAULT_TIMEOUT_S


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
    timeout: float | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Fetch ``url`` into ``dest`` (created with its parent folders); returns ``dest``.

    Arguments:
        url: ``http://``, ``https://`` or ``file://`` URL; redirects are followed.
        dest: final path. Written only when the whole file arrived and checked out.
        sha256: expected hex digest, or None when unknown (then only the length is checked).
        timeout: seconds to connect and per read; None means ``download_timeout()``.
        progress: called with a ``DownloadProgress`` after each chunk.
    Raises:
        WeightsNotFoundError: the server could not be reached or answered with an error (404, DNS
            failure, refused connection, timeout), or the transfer ended before ``Content-Length``.
        CorruptWeightsError: the bytes arrived but their sha256 is not ``sha256``.
    """
    dest = Path(dest)
    scheme = urlsplit(url).scheme.lower()
    if scheme not in _SCHEMES:
        raise WeightsNotFoundError(f"{url}: unsupported URL scheme {scheme!r} (use one of {', '.join(_SCHEMES)})")
    timeout = download_timeout() if timeout is None else timeout
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest, tag="part", durable=True) as tmp:
        _fetch_to(url, tmp, dest.name, timeout, progress)
        if sha256 is not None:
            actual = sha256_of(tmp)
            if actual.lower() != sha256.lower():
                raise CorruptWeightsError(
                    f"{url}: sha256 {actual} does not match the expected {sha256.lower()} (an error page, a "
                    "changed upstream file or a corrupted transfer); the download was discarded"
                )
    return dest


def _fetch_to(url: str, tmp: Path, filename: str, timeout: float, progress: ProgressCallback | None) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": f"adain/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            total = response.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            done = 0
            with open(tmp, "wb") as out:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(DownloadProgress(filename, done, total))
    except urllib.error.HTTPError as exc:
        raise WeightsNotFoundError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise WeightsNotFoundError(f"{url}: unreachable ({_reason(exc.reason)})") from None
    except http.client.IncompleteRead as exc:
        raise WeightsNotFoundError(
            f"{url}: transfer ended early ({len(exc.partial)} more bytes, {exc.expected} missing); discarded"
        ) from None
    except (TimeoutError, socket.timeout):
        raise WeightsNotFoundError(f"{url}: timed out after {timeout:g} s without data") from None
    except (http.client.HTTPException, ConnectionError) as exc:
        raise WeightsNotFoundError(f"{url}: connection failed ({type(exc).__name__}: {exc})") from None
    # http.client stops quietly at a closed connection in some cases; never trust a short file.
    if total is not None and done != total:
        raise WeightsNotFoundError(f"{url}: transfer ended early ({done} of {total} bytes); discarded")


def _reason(reason: object) -> str:
    if isinstance(reason, socket.gaierror):
        return f"DNS lookup failed: {reason.strerror or reason}"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    return str(reason)
