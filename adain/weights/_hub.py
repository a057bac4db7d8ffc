"""The Hugging Face Hub: fetching model directories (package format) and publishing them.

Downloads go through ``huggingface_hub.hf_hub_download`` and its cache (``HF_HUB_CACHE``, by default
``~/.cache/huggingface/hub``), so ``HF_HUB_OFFLINE=1``, ``local_files_only`` and revision pinning behave
as in every other Hub library. Two things are read from the environment *at call time* rather than at
import time (huggingface_hub freezes them when it is imported): ``HF_ENDPOINT`` (a mirror or a private
Hub) and ``HF_HUB_OFFLINE``. Both, and the two timeouts below, are checked first (``check_hub_environment``:
an ``EnvironmentVariableError`` naming the variable), and so are repo ids and revisions (``check_hub_id``:
the Hub's rules and the file system's name length, an ``InputError`` naming the argument), before any value
reaches huggingface_hub, a socket or a file name. The Hub cache is never created under a ``HOME`` that does
not exist.

Before a long job that ends in an upload (``adain train --push-to-hub``), ``check_push_access`` asks the Hub
who the token belongs to (one request, the same timeout as the probe below) so that a missing or read-only
token, or an unreachable Hub, fails at once instead of after the job.

Timeouts: a single metadata request (``HEAD`` of ``config.json``, ``HF_HUB_ETAG_TIMEOUT`` seconds,
default 10, no retries) first checks that the Hub answers; only then does ``hf_hub_download`` run,
with its own read timeout (``HF_HUB_DOWNLOAD_TIMEOUT``, default 10 s). Without that probe,
huggingface_hub retries an unreachable host with back-off for about 25 s before giving up.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from huggingface_hub import HfApi, constants, get_hf_file_metadata, get_session, get_token, hf_hub_download, hf_hub_url
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import build_hf_headers, hf_raise_for_status
from tqdm.auto import tqdm

from ..errors import CorruptWeightsError, WeightsError, WeightsNotFoundError, WeightsOfflineError
from ._download import DownloadProgress, sha256_of
from ._format import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, load_model_dir
from ._hub_settings import check_hub_environment, check_hub_id, hub_cache, hub_endpoint, hub_offline

logger = logging.getLogger(__name__)

REPO_ID_PATTERN = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_COMMIT = re.compile(r"[0-9a-f]{40}")


def _silent_tqdm(progress: Callable[[DownloadProgress], None] | None):
    """A tqdm class for huggingface_hub that draws nothing and forwards byte counts to ``progress``."""

    class _Forwarding(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True  # the library never draws; the CLI owns progress bars
            super().__init__(*args, **kwargs)
            self._label = str(kwargs.get("desc") or "")
            self._total = kwargs.get("total")
            self._done = 0

        def update(self, n=1):
            self._done += n or 0
            if progress is not None:
                progress(DownloadProgress(self._label, self._done, self._total))

    return _Forwarding


def download_model_dir(
    repo_id: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    progress: Callable[[DownloadProgress], None] | None = None,
) -> Path:
    """Fetch ``config.json`` and ``model.safetensors`` of a Hub repo; returns the local snapshot folder.

    Both files come from the same commit (the one ``config.json`` resolved to). LFS files, whose
    name in the cache is their sha256, are checked against it.

    Raises:
        WeightsOfflineError: offline (``HF_HUB_OFFLINE`` or ``local_files_only``) and not cached.
        WeightsNotFoundError: the Hub cannot be reached, or the repo, revision or a file is missing.
        CorruptWeightsError: a downloaded file does not match its sha256.
    """
    check_hub_environment()
    check_hub_id(repo_id, revision)
    cache_dir = hub_cache(cache_dir)
    offline = local_files_only or hub_offline()
    endpoint = hub_endpoint()
    where = f"{repo_id}@{revision or 'main'} on {endpoint}"
    common = dict(
        repo_id=repo_id, revision=revision, cache_dir=cache_dir, endpoint=endpoint, tqdm_class=_silent_tqdm(progress)
    )
    if not offline and revision is not None and _COMMIT.fullmatch(revision):
        cached = _cached_commit(common, where)
        if cached is not None:
            return cached
    unreachable = False
    try:
        unreachable = not offline and not _hub_answers(repo_id, revision, endpoint)
        config, weights = _download(common, cache_only=offline or unreachable)
    except Exception as exc:  # noqa: BLE001 -- _weights_error picks the failures it explains; others go through
        error = _weights_error(exc, where, repo_id, unreachable=unreachable)
        if error is None:
            raise
        raise error from None
    # Outside the try: WeightsNotFoundError is an OSError, which _weights_error would explain again.
    if config.parent != weights.parent:
        raise WeightsNotFoundError(f"{where}: {CONFIG_NAME} and {WEIGHTS_NAME} resolved to different commits")
    _check_lfs_digest(weights, where)
    return config.parent


def download_hub_file(
    repo_id: str,
    filename: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    progress: Callable[[DownloadProgress], None] | None = None,
) -> Path:
    """Fetch one file of a Hub repo (any format, e.g. a legacy ``.pth``) into the Hub cache; returns its path.

    The same probe, offline handling and errors as ``download_model_dir``; an LFS file is checked against
    the sha256 that names it. Checking it against anything else is the caller's business.
    """
    check_hub_environment()
    check_hub_id(repo_id, revision)
    cache_dir = hub_cache(cache_dir)
    offline = local_files_only or hub_offline()
    endpoint = hub_endpoint()
    where = f"{repo_id}@{revision or 'main'} on {endpoint}"
    unreachable = False
    try:
        unreachable = not offline and not _hub_answers(repo_id, revision, endpoint, filename)
        path = Path(
            hf_hub_download(
                repo_id=repo_id,
                filename=filename,
                revision=revision,
                endpoint=endpoint,
                cache_dir=None if cache_dir is None else Path(cache_dir),  # any os.PathLike; the Hub takes str or Path
                tqdm_class=_silent_tqdm(progress),
                local_files_only=offline or unreachable,
            )
        )
    except Exception as exc:  # noqa: BLE001 -- as in download_model_dir
        if isinstance(exc, EntryNotFoundError) and not isinstance(exc, LocalEntryNotFoundError):
            raise WeightsNotFoundError(f"{where}: the repo has no {filename}") from None
        error = _weights_error(exc, where, repo_id, unreachable=unreachable)
        if error is None:
            raise
        raise error from None
    _check_lfs_digest(path, where)
    return path


def _cached_commit(common: dict, where: str) -> Path | None:
    """The snapshot folder of a pinned commit when both files are cached (``None`` when not), with no request:
    a commit never changes."""
    try:
        config = Path(hf_hub_download(filename=CONFIG_NAME, local_files_only=True, **common))
        weights = Path(hf_hub_download(filename=WEIGHTS_NAME, local_files_only=True, **common))
    except (LocalEntryNotFoundError, OfflineModeIsEnabled):
        return None
    _check_lfs_digest(weights, where)
    return config.parent


def _hub_answers(repo_id: str, revision: str | None, endpoint: str, filename: str = CONFIG_NAME) -> bool:
    """One metadata request for ``filename``: ``False`` (and a warning) when the Hub cannot be reached.

    An HTTP answer -- no such repository, revision or file, or another error status -- is raised, for
    ``_weights_error`` to explain.
    """

    try:
        url = hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)
        get_hf_file_metadata(url, endpoint=endpoint)
    except (HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError):
        raise
    except Exception as exc:  # noqa: BLE001 -- any transport failure means "unreachable"
        logger.warning("Hub %s unreachable (%s); trying the local cache", endpoint, _short(exc))
        return False
    return True


def _download(common: dict, *, cache_only: bool) -> tuple[Path, Path]:
    """``config.json`` and ``model.safetensors`` through huggingface_hub's cache (only from it when ``cache_only``)."""

    config = Path(hf_hub_download(filename=CONFIG_NAME, local_files_only=cache_only, **common))
    # Pin the weights to the commit the config came from (its snapshot folder's name).
    pinned = {**common, "revision": config.parent.name}
    weights = Path(hf_hub_download(filename=WEIGHTS_NAME, local_files_only=cache_only, **pinned))
    return config, weights


def _weights_error(exc: Exception, where: str, repo_id: str, *, unreachable: bool) -> WeightsError | None:
    """This package's error for a failed Hub download of ``where`` (``None``: not one it explains).

    ``unreachable``: the probe found no Hub, so a file missing from the cache is "not found", not "offline".
    """

    # Most specific first: LocalEntryNotFoundError is an EntryNotFoundError, and the not-found errors are
    # HfHubHTTPErrors, which are OSErrors.
    if isinstance(exc, (LocalEntryNotFoundError, OfflineModeIsEnabled)):
        if unreachable:
            return WeightsNotFoundError(
                f"{where}: unreachable and not in the local cache; check the network and HF_ENDPOINT, or load a "
                "local folder written by save_pretrained"
            )
        return WeightsOfflineError(
            f"{where}: not in the local cache and offline (HF_HUB_OFFLINE or local_files_only); fetch it once "
            f"while online (`adain download {repo_id}`), or load a local folder written by save_pretrained"
        )
    if isinstance(exc, RepositoryNotFoundError):
        return WeightsNotFoundError(f"{where}: no such repository (or it is private: log in with `hf auth login`)")
    if isinstance(exc, RevisionNotFoundError):
        return WeightsNotFoundError(f"{where}: no such revision")
    if isinstance(exc, EntryNotFoundError):
        return WeightsNotFoundError(
            f"{where}: the repo lacks {CONFIG_NAME} or {WEIGHTS_NAME}; is it in the adain format "
            f"(written by AdaINModel.save_pretrained / adain.weights.push_to_hub)? ({_short(exc)})"
        )
    if isinstance(exc, HfHubHTTPError):
        return WeightsNotFoundError(f"{where}: {_short(exc)}")
    if isinstance(exc, (OSError, ValueError)):
        return WeightsNotFoundError(f"{where}: {type(exc).__name__}: {_short(exc)}")
    return None


def _check_lfs_digest(pointer: Path, where: str) -> None:
    """The Hub names LFS blobs by their sha256; a blob that does not hash to its name is deleted."""
    blob = pointer.resolve()
    if not _SHA256.fullmatch(blob.name):
        return
    actual = sha256_of(blob)
    if actual != blob.name:
        for path in (pointer, blob):
            path.unlink(missing_ok=True)
        raise CorruptWeightsError(
            f"{where}: {pointer.name} has sha256 {actual}, expected {blob.name}; removed it from the cache, try again"
        )


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class _Saveable(Protocol):
    def save_pretrained(self, directory: str | os.PathLike, *, model_card: str | None = None) -> Path: ...


def push_to_hub(
    model_or_dir: _Saveable | str | os.PathLike,
    repo_id: str,
    *,
    revision: str | None = None,
    commit_message: str = "Upload adain model",
    private: bool | None = None,
    token: str | None = None,
    model_card: str | None = None,
    verify: bool = True,
) -> str:
    """Publish a model in the package format (``config.json``, ``model.safetensors``, ``README.md``).

    The one way this package uploads weights: training's ``push_to_hub`` option and the repository's weight
    publishing script use it too. Needs a Hugging Face token with write access (``token``, or the one
    ``huggingface-cli login`` stored). Guide: [weights and the Hub](../guides/weights.md).

    Arguments:
        model_or_dir: an [``AdaINModel``][adain.AdaINModel] (saved with ``save_pretrained`` into a temporary
            folder) or a folder already written by ``save_pretrained`` (checked by loading it first: a folder
            that would not load is never published).
        repo_id: ``"user/name"`` (see ``check_hub_id``); created (public unless ``private``) if it does not exist.
        revision: branch to commit to; ``None``: the repository's default branch (``main``).
        commit_message: the commit's message.
        private: create the repository private; ``None``: the Hub's default (public). An existing
            repository keeps its visibility.
        token: a Hugging Face access token; ``None``: the stored one (``HF_TOKEN`` or ``huggingface-cli login``).
        model_card: the model card (``README.md``) text for a model object; ``None``: the generated card. A
            folder is published with its own ``README.md``.
        verify: download ``config.json`` and ``model.safetensors`` back from the new commit and check that they
            are byte for byte what was uploaded (``WeightsError`` if not).

    Returns:
        The commit URL (ending in the commit sha). Load it back with
        ``adain.load_pretrained(repo_id, revision=<commit>)``.

    Raises:
        InputError: ``repo_id`` or ``revision`` is not one the Hub accepts (``check_hub_id``).
        EnvironmentVariableError: a Hub setting in the environment cannot be used (``check_hub_environment``).
        WeightsError: the uploaded files differ from the local ones (with ``verify``).
    """

    check_hub_environment()
    check_hub_id(repo_id, revision)
    api = HfApi(endpoint=hub_endpoint(), token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="adain-push-") as tmp:
        if isinstance(model_or_dir, (str, os.PathLike)):
            folder = Path(model_or_dir)
            load_model_dir(folder)  # never publish a folder that would not load
        else:
            folder = model_or_dir.save_pretrained(tmp, model_card=model_card)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            revision=revision,
            commit_message=commit_message,
            allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, CARD_NAME],
        )
        url = str(getattr(commit, "commit_url", commit))
        if verify:
            _verify_upload(folder, repo_id, url.rstrip("/").rsplit("/", 1)[-1], token)
    return url


def _verify_upload(folder: Path, repo_id: str, commit: str, token: str | None) -> None:
    """Download ``config.json`` and ``model.safetensors`` at ``commit`` and compare them with ``folder``'s."""

    with tempfile.TemporaryDirectory(prefix="adain-verify-") as cache:
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            remote = hf_hub_download(
                repo_id, name, revision=commit, cache_dir=cache, token=token, endpoint=hub_endpoint()
            )
            if sha256_of(remote) != sha256_of(folder / name):
                raise WeightsError(f"{repo_id}@{commit}: {name} on the Hub differs from {folder / name}")


def check_push_access(repo_id: str, *, token: str | None = None) -> str:
    """Check now that ``push_to_hub(..., repo_id)`` can succeed later; returns the user name the token is for.

    One request (``/api/whoami-v2``, ``HF_HUB_ETAG_TIMEOUT`` seconds, no retries). Raises ``InputError`` for a
    malformed ``repo_id`` and ``WeightsError`` (one line) when offline, not logged in, when the Hub refuses the
    token, cannot be reached, the token is read-only, or the repo's namespace is neither the user nor one of
    their organisations.
    """
    check_hub_environment()
    check_hub_id(repo_id)
    endpoint = hub_endpoint()
    where = f"cannot push to {repo_id} on {endpoint}"
    if hub_offline():
        raise WeightsError(f"{where}: HF_HUB_OFFLINE is set")
    token = token or get_token()
    if not token:
        raise WeightsError(f"{where}: not logged in (run `hf auth login`, or set HF_TOKEN to a write token)")
    info = _whoami(endpoint, token, where)
    role = ((info.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        raise WeightsError(f"{where}: the token is read-only; use a token with write access")
    name = info.get("name")
    namespaces = {name} | {org.get("name") for org in info.get("orgs") or [] if isinstance(org, dict)}
    if repo_id.split("/")[0] not in namespaces:
        raise WeightsError(f"{where}: logged in as {name}, who is not {repo_id.split('/')[0]} nor one of its members")
    return str(name)


def _whoami(endpoint: str, token: str, where: str) -> dict:
    """The Hub's ``whoami-v2`` answer for ``token``; any failure is a one-line ``WeightsError`` led by ``where``."""
    try:
        response = get_session().get(
            f"{endpoint}/api/whoami-v2", headers=build_hf_headers(token=token), timeout=constants.HF_HUB_ETAG_TIMEOUT
        )
        hf_raise_for_status(response)
    except HfHubHTTPError as exc:
        status = getattr(exc.response, "status_code", None)
        if status == 401:
            raise WeightsError(
                f"{where}: the Hub refused the token (invalid or expired: check HF_TOKEN, or run `hf auth login`)"
            ) from None
        raise WeightsError(f"{where}: {_short(exc)}") from None
    except Exception as exc:  # noqa: BLE001 -- any transport failure: DNS, refused, timeout, TLS
        raise WeightsError(f"{where}: the Hub cannot be reached ({type(exc).__name__}: {_short(exc)})") from None
    try:
        info = response.json()
    except ValueError:
        info = None
    if not isinstance(info, dict):
        raise WeightsError(f"{where}: the Hub's answer to whoami is not what huggingface_hub expects")
    return info
