"""Resolving a weight name (registered, local directory, Hub repo) to checked ``(config, state)``.

``adain.load_pretrained`` builds the model from what ``load_pretrained_state`` returns.

Named weights (``adain.registry``) are tried source by source. A ``UrlSource`` downloads the legacy
files into ``<cache>/<name>/files/``, checks sha256 and fingerprint, converts them once into
``<cache>/<name>/model/`` (the package format) and loads from there ever after. A ``HubSource`` uses
huggingface_hub's cache. A source that fails (404, DNS failure, refused connection, timeout, bad bytes)
is logged in one line and the next is tried; a file that fails a check is deleted from the cache.

The cache root is ``cache_dir``, else ``$ADAIN_CACHE``, else ``$XDG_CACHE_HOME/adain``, else
``~/.cache/adain``.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from dataclasses import replace

from torch import Tensor

from ..errors import CorruptWeightsError, InputError, WeightsError, WeightsNotFoundError, WeightsOfflineError
from ..modeling.config import ModelConfig
from .download import DownloadProgress, download_url, sha256_of
from .format import CONFIG_NAME, WEIGHTS_NAME, load_model_dir, save_model_dir
from .hub import REPO_ID_PATTERN, download_model_dir, hub_offline
from .legacy import load_reference_port
from .registry import ALIASES, REGISTRY, HubSource, PretrainedWeights, UrlSource
from .torch7 import load_torch7

__all__ = ["load_pretrained_state", "list_pretrained", "pretrained_info", "cache_root"]

Loaded = tuple[ModelConfig, dict[str, Tensor]]
_LOADERS = {"reference-port": load_reference_port, "torch7": load_torch7}

logger = logging.getLogger(__name__)

HUB_PREFIX = "hf-hub:"


def list_pretrained() -> list[str]:
    """Names of the registered weights (``"default"`` is an alias of the first one listed here)."""
    default = ALIASES["default"]
    return [default] + sorted(n for n in REGISTRY if n != default)


def pretrained_info(name: str = "default") -> PretrainedWeights:
    """The registry record of a named weight set (provenance, license, files, sources)."""
    key = ALIASES.get(name, name)
    if key not in REGISTRY:
        raise WeightsNotFoundError(f"no pretrained weights named {name!r}; known: {', '.join(list_pretrained())}")
    return REGISTRY[key]


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where converted weights live: ``cache_dir``, ``$ADAIN_CACHE``, ``$XDG_CACHE_HOME/adain`` or ``~/.cache/adain``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("ADAIN_CACHE"):
        return Path(os.environ["ADAIN_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "adain"


def load_pretrained_state(
    name: str | os.PathLike = "default",
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    progress: Callable[[DownloadProgress], None] | None = None,
) -> Loaded:
    """The checked ``(config, state)`` of the weights ``name`` (see ``adain.load_pretrained``).

    Arguments:
        name: one of ``list_pretrained()`` (or ``"default"``); a local directory written by
            ``save_pretrained``; or a Hub repo id ``"user/name"``, optionally ``"hf-hub:user/name@rev"``.
            An existing directory wins over a repo id of the same spelling.
        revision: Hub branch, tag or commit (also overrides the revision of a named entry's Hub sources).
        cache_dir: cache root for named weights; Hub files go to ``cache_dir/hub`` (default: the
            Hugging Face cache).
        local_files_only: never touch the network (as does ``HF_HUB_OFFLINE=1``).
        progress: called with ``DownloadProgress`` while files download.
    Raises:
        WeightsOfflineError: offline and not cached. WeightsNotFoundError: no source worked (the message
        lists each one and where to put the files by hand). CorruptWeightsError: files failed a check.
    """
    offline = local_files_only or hub_offline()
    hub_cache = Path(cache_dir).expanduser() / "hub" if cache_dir is not None else None
    text = os.fspath(name)
    key = ALIASES.get(text, text)
    if isinstance(name, str) and key in REGISTRY:
        entry = REGISTRY[key]
        if revision is not None and not any(isinstance(src, HubSource) for src in entry.sources):
            raise InputError(f"revision={revision!r}: {entry.name!r} has no Hub source, so a revision means nothing")
        return _load_entry(entry, revision, cache_root(cache_dir), hub_cache, offline, progress)
    path = Path(text).expanduser()
    if path.is_dir():
        if revision is not None:
            raise InputError(f"revision={revision!r} applies to Hub repos, not to the local directory {path}")
        return load_model_dir(path)
    repo = text[len(HUB_PREFIX):] if text.startswith(HUB_PREFIX) else text
    repo, _, pinned = repo.partition("@")
    if isinstance(name, str) and REPO_ID_PATTERN.fullmatch(repo):
        if pinned and revision and pinned != revision:
            raise InputError(f"{name!r} pins revision {pinned!r} but revision={revision!r} was also given")
        source = HubSource(repo, pinned or revision)
        try:
            return _from_hub(source, hub_cache, offline, progress)
        except WeightsNotFoundError as exc:
            if text.startswith(HUB_PREFIX):
                raise
            # "models/mine" reads as a repo id too: say that no such local folder exists either.
            raise type(exc)(f"{exc} (and there is no local directory {str(path)!r})") from None
    raise WeightsNotFoundError(
        f"no weights named {text!r}: not a registered name ({', '.join(['default'] + list_pretrained())}), "
        "not an existing directory (written by AdaINModel.save_pretrained), not a Hub repo id ('user/name')"
    )


def _from_hub(source: HubSource, hub_cache: Path | None, offline: bool, progress) -> Loaded:
    folder = download_model_dir(
        source.repo_id, revision=source.revision, cache_dir=hub_cache, local_files_only=offline, progress=progress
    )
    return load_model_dir(folder)


def _load_entry(
    entry: PretrainedWeights, revision: str | None, root: Path, hub_cache: Path | None, offline: bool, progress
) -> Loaded:
    model_dir, files_dir = root / entry.name / "model", root / entry.name / "files"
    if (model_dir / WEIGHTS_NAME).is_file():
        try:
            return load_model_dir(model_dir)
        except WeightsError as exc:
            logger.warning("Cached conversion %s is unusable (%s); removing it and converting again", model_dir, exc)
            shutil.rmtree(model_dir, ignore_errors=True)
    failures: list[tuple[str, WeightsError]] = []
    if all((files_dir / f.filename).is_file() for f in entry.files):
        try:  # placed by hand, or downloaded by an earlier run that was interrupted before converting
            return _convert_into_cache(entry, files_dir, model_dir)
        except WeightsError as exc:
            failures.append((f"files in {files_dir}", exc))
            logger.warning("Legacy files in %s failed verification: %s (removed)", files_dir, exc)
    for number, source in enumerate(entry.sources, 1):
        try:
            if isinstance(source, HubSource):
                if revision is not None:
                    source = HubSource(source.repo_id, revision)
                return _from_hub(source, hub_cache, offline, progress)
            if offline:
                raise WeightsOfflineError(f"{source.describe()}: not tried, offline")
            _download_files(entry, source, files_dir, progress)
            return _convert_into_cache(entry, files_dir, model_dir)
        except WeightsError as exc:
            failures.append((source.describe(), exc))
            logger.warning("Weights source %d of %d for %r failed: %s", number, len(entry.sources), entry.name, exc)
    raise _all_failed(entry, failures, files_dir, model_dir, offline)


def _download_files(entry: PretrainedWeights, source: UrlSource, files_dir: Path, progress) -> None:
    for spec in entry.files:
        target = files_dir / spec.filename
        if not target.is_file():
            download_url(source.url(spec.filename), target, sha256=spec.sha256, progress=progress)


def _convert_into_cache(entry: PretrainedWeights, files_dir: Path, model_dir: Path) -> Loaded:
    """Verify the legacy files (sha256, fingerprint), write the package format once, load it back."""
    paths = [files_dir / f.filename for f in entry.files]
    try:
        for spec, path in zip(entry.files, paths):
            if spec.sha256 is not None and sha256_of(path) != spec.sha256.lower():
                raise CorruptWeightsError(f"{path}: sha256 is not the expected {spec.sha256}")
        config, state = _LOADERS[entry.legacy_format](*paths)
    except WeightsError:
        for path in paths:  # a file that failed a check is never left in the cache
            path.unlink(missing_ok=True)
        raise
    config = replace(config, description=entry.config.description)
    save_model_dir(config, state, model_dir, card=entry.model_card())
    return load_model_dir(model_dir)


def _all_failed(entry, failures, files_dir: Path, model_dir: Path, offline: bool) -> WeightsError:
    tried = "\n".join(
        f"  - {exc}" if str(exc).startswith(where) else f"  - {where}: {exc}" for where, exc in failures
    ) or "  (no sources)"
    names = " and ".join(f.filename for f in entry.files)
    urls = next((s for s in entry.sources if isinstance(s, UrlSource)), None)
    origin = f" (from {urls.base_url})" if urls else ""
    message = (
        f"could not get pretrained weights {entry.name!r} from any of its {len(entry.sources)} source(s); to "
        f"install them by hand put {names} into {files_dir}/ (details below)\n"
        f"Tried, in order:\n{tried}\n"
        f"To install them by hand, either\n"
        f"  - put {names}{origin} into {files_dir}/ (they are verified and converted on the next load), or\n"
        f"  - put a converted folder ({CONFIG_NAME} + {WEIGHTS_NAME}, e.g. from `adain convert reference-port "
        f"VGG DECODER OUT`) at {model_dir}/, or load it directly with adain.load_pretrained('OUT').\n"
        "Network settings: ADAIN_DOWNLOAD_TIMEOUT (seconds, default 10), HF_ENDPOINT, HF_HUB_OFFLINE."
    )
    if any(isinstance(exc, CorruptWeightsError) for _, exc in failures):
        return CorruptWeightsError(message)
    if offline:
        return WeightsOfflineError(message)
    return WeightsNotFoundError(message)
