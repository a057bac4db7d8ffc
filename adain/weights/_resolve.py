"""Resolving a weight name (registered, local directory, Hub repo) to checked ``(config, state)``.

``adain.load_pretrained`` builds the model from what ``load_pretrained_state`` returns.

Named weights (``adain.registry``) are tried source by source. A ``UrlSource`` downloads the legacy
files into ``<cache>/<name>/files/``, checks sha256 and fingerprint, converts them once into
``<cache>/<name>/model/`` (the package format) and loads from there ever after. A ``HubFilesSource``
fetches the legacy files it holds into huggingface_hub's cache, checks their sha256 there and only then
copies them into ``files/``; the files it lacks are left to the next source (a VGG-only mirror and a
source with the decoder complete the pair). A ``HubSource`` uses huggingface_hub's cache. A source that fails (404,
DNS failure, refused connection, timeout, bad bytes)
is logged in one line and the next is tried. A downloaded file that fails a check is deleted; a file
that was already there (placed by hand) is moved aside to ``files/rejected/``, never deleted. One
process at a time fills an entry (``cache.entry_lock``); the layout and the cache root are
``adain.weights._cache``'s.

A path to a file (``model.safetensors``, a legacy ``.pth``) or to a training run is answered with what
to pass instead, never tried as a Hub repo id.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from torch import Tensor

from .._arguments import path_fits
from .._atomic import atomic_dir, atomic_path
from ..errors import CorruptWeightsError, InputError, WeightsError, WeightsNotFoundError, WeightsOfflineError
from ..modeling._config import ModelConfig
from ._cache import CacheEntry, cache_root, entry_lock, move_aside
from ._caffe import load_caffe_vgg, package_file
from ._download import DownloadProgress, download_url, sha256_of
from ._format import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, load_model_dir, save_model_dir
from ._hub import REPO_ID_PATTERN, download_hub_file, download_model_dir, hub_offline
from ._legacy import load_reference_port
from ._registry import (
    ALIASES,
    REGISTRY,
    HubFilesSource,
    HubSource,
    LegacyFile,
    PackageSource,
    PretrainedWeights,
    UrlSource,
)
from ._torch7 import load_torch7

Loaded = tuple[ModelConfig, dict[str, Tensor]]
_LOADERS: dict[str, Callable[..., Loaded]] = {
    "reference-port": load_reference_port,
    "torch7": load_torch7,
    "caffe-vgg19": load_caffe_vgg,
}
_RUN_FINAL, _RUN_CHECKPOINTS = (
    "final",
    "checkpoints",
)  # a training run's folders (adain.training, which we never import)

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
        InputError: ``name`` is a file or a training run, not a model folder (the message says what to pass).
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
    local = path_fits(path)  # a name too long for a file name is no local folder (and probing it raises)
    hint = _what_to_pass_instead(path) if local else None
    if hint is not None:
        raise InputError(hint)
    if local and path.is_dir():
        if revision is not None:
            raise InputError(f"revision={revision!r} applies to Hub repos, not to the local directory {path}")
        return load_model_dir(path)
    repo = text[len(HUB_PREFIX) :] if text.startswith(HUB_PREFIX) else text
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


def _what_to_pass_instead(path: Path) -> str | None:
    """For a path that exists but is not a model folder: what to pass instead (None: nothing to say)."""
    if path.is_file():
        if path.name in (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME):
            return f"{path} is one file of a model folder: pass the folder, {path.parent}"
        if path.parent.name == _RUN_CHECKPOINTS:
            return (
                f"{path} is a training checkpoint: pass the run's final model, {path.parent.parent / _RUN_FINAL}"
                f" (written when training ends; `adain train --out {path.parent.parent} --resume` continues it)"
            )
        if path.suffix.lower() in (".pth", ".pt", ".t7"):
            kind, loader = (
                ("torch7", "from_torch7") if path.suffix.lower() == ".t7" else ("reference-port", "from_original")
            )
            return (
                f"{path} is a legacy weights file, not a model folder: load the pair with "
                f"AdaINModel.{loader}(VGG, DECODER), or convert it once with `adain convert {kind} VGG DECODER OUT` "
                "and pass OUT"
            )
        return f"{path} is a file: pass a folder written by AdaINModel.save_pretrained ({CONFIG_NAME} + {WEIGHTS_NAME})"
    run_dir = (path / _RUN_FINAL).is_dir() or (path / _RUN_CHECKPOINTS).is_dir()
    if path.is_dir() and run_dir and not (path / CONFIG_NAME).exists():
        final = path / _RUN_FINAL
        if final.is_dir():
            return f"{path} is a training run directory: pass its final model, {final}"
        return (
            f"{path} is a training run directory without a final model yet: {final} is written when training "
            f"ends (`adain train --out {path} --resume` continues the run)"
        )
    return None


def _load_entry(
    entry: PretrainedWeights, revision: str | None, root: Path, hub_cache: Path | None, offline: bool, progress
) -> Loaded:
    cache = CacheEntry(root / entry.name)
    cache.tidy()
    if cache.model.exists():  # the usual case: converted before, loaded without taking the lock
        try:
            return load_model_dir(cache.model)
        except WeightsError:
            pass  # decided under the lock: another process may be replacing it right now
    with entry_lock(cache.folder):
        return _fill_entry(entry, cache, revision, hub_cache, offline, progress)


def _fill_entry(
    entry: PretrainedWeights, cache: CacheEntry, revision: str | None, hub_cache: Path | None, offline: bool, progress
) -> Loaded:
    """Under the entry's lock: the converted folder, else the files already there, else each source in turn."""
    if cache.model.exists():  # perhaps converted by the process this one waited for
        try:
            return load_model_dir(cache.model)
        except WeightsError as exc:
            moved = move_aside(cache.model)
            logger.warning(
                "Cached conversion %s is unusable (%s); moved it to %s, converting again", cache.model, exc, moved
            )
    failures: list[tuple[str, WeightsError]] = []
    if all((cache.files / f.filename).is_file() for f in entry.files):
        try:  # placed by hand, or downloaded by an earlier run that was interrupted before converting
            return _convert_into_cache(entry, cache, downloaded=set())
        except WeightsError as exc:
            failures.append((f"files in {cache.files}", exc))
            logger.warning("Legacy files in %s failed verification: %s", cache.files, exc)
    fetched: set[Path] = set()  # downloaded by this call, from any source: deleted, not moved aside, if refused
    for number, source in enumerate(entry.sources, 1):
        try:
            loaded = _try_source(entry, source, cache, revision, hub_cache, offline, progress, fetched)
        except WeightsError as exc:
            failures.append((source.describe(), exc))
            # Offline, a source not tried is no news (the final error lists it); a real failure is a warning.
            level = logging.INFO if isinstance(exc, WeightsOfflineError) else logging.WARNING
            logger.log(level, "Weights source %d of %d for %r failed: %s", number, len(entry.sources), entry.name, exc)
            continue
        if loaded is not None:
            return loaded
    raise _all_failed(entry, failures, cache.files, cache.model, offline)


def _try_source(
    entry: PretrainedWeights,
    source,
    cache: CacheEntry,
    revision: str | None,
    hub_cache: Path | None,
    offline: bool,
    progress,
    fetched: set[Path],
) -> Loaded | None:
    """One source: the loaded weights, or None when it held only some of the files (the rest left to the next)."""
    if isinstance(source, HubSource):
        if revision is not None:
            source = HubSource(source.repo_id, revision)
        return _from_hub(source, hub_cache, offline, progress)
    if isinstance(source, HubFilesSource):
        fetched |= _download_hub_files(entry, source, cache.files, hub_cache, offline, progress)
        missing = [f.filename for f in entry.files if not (cache.files / f.filename).is_file()]
        if missing:
            logger.info("%s: %s still missing, left for the next source", source.describe(), ", ".join(missing))
            return None
    elif isinstance(source, PackageSource):  # a local file: works offline
        for spec in entry.files:
            target = cache.files / spec.filename
            if not target.is_file():
                _copy_checked(
                    package_file(source.package, source.filename, source.extra), target, spec, source.describe()
                )
                fetched.add(target)
    else:
        if offline:
            raise WeightsOfflineError(f"{source.describe()}: not tried, offline")
        fetched |= _download_files(entry, source, cache.files, progress)
    return _convert_into_cache(entry, cache, fetched)


def _download_files(entry: PretrainedWeights, source: UrlSource, files_dir: Path, progress) -> set[Path]:
    """Download the entry's files that are not there yet; returns the paths downloaded."""
    downloaded = set()
    for spec in entry.files:
        target = files_dir / spec.filename
        if not target.is_file():
            download_url(source.url(spec.filename), target, sha256=spec.sha256, size=spec.size, progress=progress)
            downloaded.add(target)
    return downloaded


def _download_hub_files(
    entry: PretrainedWeights, source: HubFilesSource, files_dir: Path, hub_cache: Path | None, offline: bool, progress
) -> set[Path]:
    """Fetch the missing files ``source`` holds through the Hub cache; each is checked, then copied into
    ``files_dir``."""
    downloaded = set()
    for spec in entry.files:
        target = files_dir / spec.filename
        if target.is_file() or spec.filename not in source.files:
            continue
        blob = download_hub_file(
            source.repo_id,
            spec.filename,
            revision=source.revision,
            cache_dir=hub_cache,
            local_files_only=offline,
            progress=progress,
        )
        _copy_checked(blob, target, spec, f"{source.describe()}: {spec.filename}")
        downloaded.add(target)
    return downloaded


def _copy_checked(blob: Path, target: Path, spec: LegacyFile, where: str) -> None:
    """Copy ``blob`` to ``target`` (atomically) only if its size and sha256 are the registry's."""
    size = blob.stat().st_size
    if spec.size is not None and size != spec.size:
        raise CorruptWeightsError(
            f"{where}: {size} bytes where {spec.size} are expected (not the expected file); "
            "refused, nothing copied into the cache"
        )
    if spec.sha256 is not None and (actual := sha256_of(blob)) != spec.sha256.lower():
        raise CorruptWeightsError(
            f"{where}: sha256 {actual} does not match the expected {spec.sha256.lower()}; "
            "refused, nothing copied into the cache"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, tag="part", durable=True, expected_bytes=size) as tmp:
        shutil.copyfile(blob, tmp)


def _convert_into_cache(entry: PretrainedWeights, cache: CacheEntry, downloaded: set[Path]) -> Loaded:
    """Verify the legacy files (sha256, fingerprint), write the package format once, load it back.

    A file that fails is never left in ``files/``: deleted when ``downloaded`` (just fetched), moved to
    ``files/rejected/`` otherwise (it may be the user's only copy).
    """
    paths = [cache.files / f.filename for f in entry.files]
    try:
        for spec, path in zip(entry.files, paths):
            if spec.sha256 is not None and (actual := sha256_of(path)) != spec.sha256.lower():
                raise CorruptWeightsError(f"{path}: failed the sha256 check: {actual}, expected {spec.sha256.lower()}")
        config, state = _LOADERS[entry.legacy_format](*paths)
    except WeightsError as exc:
        raise _rejected(exc, paths, downloaded) from None
    config = replace(config, description=entry.config.description)
    try:
        with atomic_dir(cache.model) as tmp:  # no other process ever sees a half-written model folder
            save_model_dir(config, state, tmp, card=entry.model_card())
    except OSError:
        if not (cache.model / WEIGHTS_NAME).is_file():
            raise
        logger.info("%s was converted by another process meanwhile; using it", cache.model)  # unlocked file systems
    return load_model_dir(cache.model)


def _rejected(exc: WeightsError, paths: list[Path], downloaded: set[Path]) -> WeightsError:
    """Take the files that failed out of ``files/`` and say where they went, in ``exc``'s type."""
    named = [p for p in paths if str(p) in str(exc)] or paths  # the checks name the file they refuse
    notes = []
    for path in paths:
        if path in downloaded:
            path.unlink(missing_ok=True)  # fetched just now: never the user's
        elif path in named and path.exists():
            notes.append(f"{path.name} was moved to {move_aside(path)} (not deleted)")
    return type(exc)("; ".join([str(exc)] + notes))


def _all_failed(entry, failures, files_dir: Path, model_dir: Path, offline: bool) -> WeightsError:
    """The error when every source failed: a few lines (what failed, each source once, where to put files
    by hand); ``details`` on it holds every source's own error (the command line prints it with ``--debug``)."""
    tried = (
        "\n".join(f"  - {exc}" if str(exc).startswith(where) else f"  - {where}: {exc}" for where, exc in failures)
        or "  (no sources)"
    )
    names = " and ".join(f.filename for f in entry.files)
    urls = next((s for s in entry.sources if isinstance(s, UrlSource)), None)
    origin = f" (from {urls.base_url})" if urls else ""
    by_hand = (
        f"To install them by hand, put {names}{origin} into {files_dir}/ (verified and converted on the next "
        f"load), or a converted folder ({CONFIG_NAME} + {WEIGHTS_NAME}, e.g. from `adain convert reference-port "
        f"VGG DECODER OUT`) at {model_dir}/, or load such a folder directly with adain.load_pretrained('OUT')."
    )
    sources = ", ".join(where for where, _ in failures) or "none"
    if offline and all(isinstance(exc, WeightsOfflineError) for _, exc in failures):
        # Nothing was wrong with any source: none was asked. One line says so, listing each source once.
        message = (
            f"pretrained weights {entry.name!r} are not in the cache and downloads are off (HF_HUB_OFFLINE=1 or "
            f"local_files_only=True); sources not tried: {sources}\n{by_hand}"
        )
    else:
        message = (
            f"could not get pretrained weights {entry.name!r} from any of its {len(entry.sources)} source(s); "
            f"tried, in order:\n{tried}\n{by_hand}\n"
            "Network settings: ADAIN_DOWNLOAD_TIMEOUT (seconds, default 10), HF_ENDPOINT, HF_HUB_OFFLINE."
        )
    error: WeightsError
    if any(isinstance(exc, CorruptWeightsError) for _, exc in failures):
        error = CorruptWeightsError(message)
    elif offline:
        error = WeightsOfflineError(message)
    else:
        error = WeightsNotFoundError(message)
    error.details = f"Tried, in order:\n{tried}"
    return error
