"""The Hub's settings and names, checked before any of them reaches huggingface_hub, a socket or a file name.

``HF_HUB_OFFLINE`` and ``HF_ENDPOINT`` are read when called (huggingface_hub freezes them when imported), and
with ``HF_HUB_ETAG_TIMEOUT`` and ``HF_HUB_DOWNLOAD_TIMEOUT`` checked by ``check_hub_environment``: a value
that cannot be used is one ``EnvironmentVariableError`` naming the variable. Repo ids and revisions follow the
Hub's rules and fit a file name (``check_hub_id``, ``InputError`` naming the argument). The Hub cache is
never created under a ``HOME`` that does not exist (``hub_cache``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from huggingface_hub import constants

from .._arguments import MAX_TIMEOUT_S, environment_error, environment_flag, environment_number, environment_value
from ..errors import InputError

MAX_REPO_PART = 96
"""Characters in each part of a Hub repo id (``user/name``), the Hub's own limit."""
MAX_REVISION_BYTES = 255
"""Bytes in a revision: the Hub cache stores it as a file name (``refs/<revision>``)."""
_REPO_PART = re.compile(r"[A-Za-z0-9_](?:[\w.-]*[A-Za-z0-9_])?")
_REVISION_BAD = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|^[/.-]|[/.]$|\.lock(?:/|$)")
_HUB_TIMEOUTS = ("HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT")


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set (now, or when huggingface_hub was imported).

    Raises ``EnvironmentVariableError`` when it is set to something other than a yes/no value."""

    return environment_flag("HF_HUB_OFFLINE") or bool(constants.HF_HUB_OFFLINE)


def hub_endpoint() -> str:
    """The Hub address: ``HF_ENDPOINT`` as set now, else huggingface_hub's configured endpoint.

    Raises ``EnvironmentVariableError`` when ``HF_ENDPOINT`` is not an ``http(s)://host[:port][/path]`` URL."""

    raw = environment_value("HF_ENDPOINT")
    if raw is not None:
        try:
            parts = urlsplit(raw)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        except ValueError:  # a port out of range, a malformed address
            valid = False
        if not valid or len(raw) > 2048 or any(c.isspace() for c in raw):
            raise environment_error("HF_ENDPOINT", raw, "expected a URL such as https://huggingface.co")
    return (raw or constants.ENDPOINT).rstrip("/")


def check_hub_environment() -> None:
    """Check every Hub setting the package or huggingface_hub reads from the environment when called:
    ``HF_HUB_OFFLINE``, ``HF_ENDPOINT``, ``HF_HUB_ETAG_TIMEOUT`` and ``HF_HUB_DOWNLOAD_TIMEOUT`` (whole seconds
    from 1 to a day), and that the default Hub cache is not under a ``HOME`` that does not exist.

    Raises:
        EnvironmentVariableError: naming the first variable that cannot be used.
    """
    hub_offline()
    hub_endpoint()
    for name in _HUB_TIMEOUTS:
        environment_number(name, 10, minimum=1, maximum=MAX_TIMEOUT_S, integer=True)


def hub_cache(cache_dir: str | os.PathLike | None) -> Path | None:
    """``cache_dir``; ``None`` (huggingface_hub's default cache) unless that is under a missing ``HOME``."""
    if cache_dir is not None:
        return Path(cache_dir)
    home = os.environ.get("HOME")
    default = Path(constants.HF_HUB_CACHE)
    if home and not os.path.isdir(home) and Path(home) in default.parents:
        raise environment_error(
            "HOME",
            home,
            f"the Hub cache {default} would be under it and it does not exist; set HF_HOME or "
            "pass a cache folder (nothing is created under a missing HOME)",
        )
    return None


def check_hub_id(repo_id: str, revision: str | None = None) -> None:
    """Refuse a repo id or revision the Hub or its cache cannot take, before any request or file name.

    Arguments:
        repo_id: ``"user/name"``: each part 1 to ``MAX_REPO_PART`` letters, digits, ``-``, ``_``, ``.``, not
            starting or ending with ``-`` or ``.``, without ``--`` or ``..``, not ending in ``.git``.
        revision: a branch, tag or commit: at most ``MAX_REVISION_BYTES`` bytes, a valid git reference name.

    Raises:
        InputError: one line naming ``repo_id`` or ``revision`` (a long value is cut in the message).
    """
    parts = repo_id.split("/") if isinstance(repo_id, str) else []
    if (
        len(parts) != 2
        or not all(len(p) <= MAX_REPO_PART and _REPO_PART.fullmatch(p) for p in parts)
        or "--" in repo_id
        or ".." in repo_id
        or repo_id.endswith(".git")
    ):
        raise InputError(
            f"repo_id: {_cut(repo_id)!r} is not a Hub repo id: expected 'user/name', each part 1-{MAX_REPO_PART} "
            "letters, digits, '-', '_' or '.' (not first or last, never doubled)"
        )
    if revision is None:
        return
    if not isinstance(revision, str) or len(revision.encode()) > MAX_REVISION_BYTES or _REVISION_BAD.search(revision):
        raise InputError(
            f"revision: {_cut(revision)!r} is not a Hub revision: expected a branch, tag or commit of at most "
            f"{MAX_REVISION_BYTES} bytes, without spaces, '..', '~^:?*[\\' or a leading '/', '.' or '-'"
        )


def _cut(value: object) -> object:
    return value if not isinstance(value, str) or len(value) <= 80 else f"{value[:60]}... ({len(value)} characters)"
